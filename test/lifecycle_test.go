package test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	ctest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

func TestReadyAfterFirstSync(t *testing.T) {
	etcdAddr, readyAddr := "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
	_, udp, _ := startCoreDNS(t, corefile("http://"+etcdAddr, "", "ready "+readyAddr))
	_, fallsThrough, _ := startCoreDNS(t, corefile("http://"+etcdAddr, "fallthrough", "hosts {\n\t\t10.9.9.9 app.example.org\n\t}"))

	ready := func() (int, string) {
		resp, err := http.Get("http://" + readyAddr + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := ready(); code != http.StatusServiceUnavailable || !strings.Contains(body, "bluegreen") {
		t.Errorf("ready before etcd is up: %d %q, want 503 naming bluegreen", code, body)
	}
	if m := query(t, "udp", udp, "app.example.org", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("before the first sync: %s, want SERVFAIL", dns.RcodeToString[m.Rcode])
	}
	if got := answers(query(t, "udp", fallsThrough, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.9.9.9"}) {
		t.Errorf("before the first sync, with fallthrough: %v, want hosts' A 10.9.9.9", got)
	}

	etcd := startEtcdAt(t, etcdAddr)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	took := waitFor(t, "ready once etcd is up", 30*time.Second, func() bool { code, _ := ready(); return code == http.StatusOK })
	t.Logf("ready %v after etcd started", took)
	for _, addr := range []string{udp, fallsThrough} {
		waitFor(t, "the answer once etcd is up", 10*time.Second, func() bool {
			return slices.Equal(answers(query(t, "udp", addr, "app.example.org", dns.TypeA)), []string{"A 10.0.1.100"})
		})
	}
}

func TestReloadLeavesNothingBehind(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	cf := corefile(etcd.endpoint, "")
	inst, udp, _, err := ctest.CoreDNSServerAndPorts(cf)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { stopCoreDNS(inst) }()
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.1.100"}) {
		t.Fatalf("after the first load: %v", got)
	}
	// Count only once the watch delivers: its gRPC stream is set up after
	// the first list, a moment after the first answer. The name is checked,
	// so that each load also runs probes (of a port nobody listens on).
	etcd.putName(t, "watching.example.org", "blue", "127.0.0.1", "127.0.0.2")
	etcd.put(t, "/bluegreen/watching.example.org/check", "tcp://:"+freePort(t))
	waitFor(t, "a name added after the first load", 10*time.Second, func() bool {
		txt := answers(query(t, "udp", udp, "_bluegreen.watching.example.org", dns.TypeTXT))
		return len(txt) == 1 && strings.Contains(txt[0], `"check=tcp://:`)
	})
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(etcd.endpoint, "http://"))
	goroutines, conns := clientGoroutines(), etcdConns(t, port)
	l := startLoad(t, 2, udp, "app.example.org", []string{"A 10.0.1.100"}, []string{"A 10.0.2.100"})

	const reloads = 100
	for i := range reloads {
		if inst, err = inst.Restart(ctest.NewInput(cf)); err != nil {
			t.Fatalf("reload %d: %v", i+1, err)
		}
		// The new instance answers at once: it listed etcd before taking over.
		if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.1.100"}) {
			t.Fatalf("right after reload %d: %v", i+1, got)
		}
	}
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	waitFor(t, "a flip after the reloads", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.2.100"})
	})

	l.stopAndCheck(t, fmt.Sprintf("during %d reloads", reloads))
	var gotGoroutines, gotConns int
	settled := func() bool {
		gotGoroutines, gotConns = clientGoroutines(), etcdConns(t, port)
		// Fewer is no leak: a goroutine of the etcd client or the prober
		// may have been passing through when the first count was taken.
		return gotGoroutines <= goroutines && gotConns == conns
	}
	deadline := time.Now().Add(10 * time.Second)
	for !settled() {
		if time.Now().After(deadline) {
			t.Fatalf("after %d reloads: %d plugin and etcd client goroutines and %d etcd connections, want at most %d and %d as after the first load",
				reloads, gotGoroutines, gotConns, goroutines, conns)
		}
		time.Sleep(time.Millisecond)
	}
	t.Logf("after %d reloads: %d plugin and etcd client goroutines (%d after the first load), %d etcd connections, as after the first load", reloads, gotGoroutines, goroutines, conns)
}

// clientGoroutines counts the goroutines of the plugin and of etcd clients
// (the test's own and the plugin's), gRPC client transports included. The
// process's total also counts the servers' passing goroutines, which come
// and go whatever the plugin does; so do the prober's workers, started as
// probes need them (at most 64), which are left out too.
func clientGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "bluegreen.(*prober).work(") {
			continue
		}
		if strings.Contains(g, "github.com/bluegreen-dns/bluegreen.") ||
			strings.Contains(g, "go.etcd.io/etcd/client/v3") ||
			strings.Contains(g, "grpc/internal/transport.(*http2Client)") {
			count++
		}
	}
	return count
}

// etcdConns counts this machine's established TCP connections to the etcd
// client port: one per etcd client.
func etcdConns(t *testing.T, port string) int {
	t.Helper()
	p, _ := strconv.Atoi(port)
	remote := fmt.Sprintf(":%04X", p)
	n := 0
	for _, file := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) > 3 && strings.HasSuffix(f[2], remote) && f[3] == "01" { // 01: ESTABLISHED
				n++
			}
		}
	}
	return n
}

// TestRestartKeepsLastGoodValues: a name that answers a last good value (a
// bad active value, a deleted active target) keeps answering it across a
// reload, and, with a snapshot file, across a restart.
func TestRestartKeepsLastGoodValues(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "bad.example.org", "green", "10.0.1.100", "10.0.2.100")
	etcd.putName(t, "del.example.org", "blue", "10.0.3.100", "10.0.4.100")
	file := filepath.Join(t.TempDir(), "bluegreen.json")
	cf := corefile(etcd.endpoint, "snapshot "+file)
	inst, udp, _, err := ctest.CoreDNSServerAndPorts(cf)
	if err != nil {
		t.Fatal(err)
	}
	etcd.put(t, "/bluegreen/bad.example.org/active", "GREEN")
	rev := etcd.del(t, "/bluegreen/del.example.org/blue")
	still := func(when string) {
		t.Helper()
		for name, want := range map[string]string{"bad.example.org": "A 10.0.2.100", "del.example.org": "A 10.0.3.100"} {
			if got := answers(query(t, "udp", udp, name, dns.TypeA)); !slices.Equal(got, []string{want}) {
				t.Errorf("%s: %s %v, want its last good %s", when, name, got, want)
			}
		}
	}
	waitFor(t, "the deleted target in the TXT state", 10*time.Second, func() bool {
		return strings.Contains(stateTXT(t, udp, "del.example.org"), "ignored=blue: deleted")
	})
	still("before")
	if inst, err = inst.Restart(ctest.NewInput(cf)); err != nil {
		t.Fatal(err)
	}
	still("after a reload")

	waitFor(t, "the snapshot file at the last revision", 10*time.Second, func() bool {
		var f struct{ Revision int64 }
		data, err := os.ReadFile(file)
		return err == nil && json.Unmarshal(data, &f) == nil && f.Revision == rev
	})
	stopCoreDNS(inst)
	_, udp, _ = startCoreDNS(t, cf)
	still("after a restart")
}

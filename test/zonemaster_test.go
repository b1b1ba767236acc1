package test

// Zonemaster (Debian package zonemaster-cli) run as an undelegated test
// against an in-process CoreDNS, with nothing leaving the machine.
//
// How: the test creates a network namespace that holds only a loopback
// device with the test addresses on it (see zmEnv). CoreDNS opens its
// listeners in it and zonemaster-cli runs in it; the rest of the test process
// stays in the host namespace, whose addresses and routes are never touched.
// The namespace has no route anywhere, so even a query to a real root server
// fails at once ("Error creating socket") instead of leaving the machine or
// waiting for a timeout.
//
// On top of that the helper serves its own root zone ("." with PTR records
// for the name servers' addresses) from a second CoreDNS instance and hands
// zonemaster a root hints file naming it (--hints). Every query zonemaster
// makes then goes to a server of the test: the reverse lookups of ADDRESS02
// and ADDRESS03 succeed, and the ASN lookups of CONNECTIVITY03 get NXDOMAIN.
//
// A profile lowers the resolver timeout to 1 s with one retry, so a server
// that drops queries costs seconds, not minutes (the default is 5 s x 2).
//
// The addresses are from TEST-NET-3 (203.0.113.0/24). Zonemaster reports every
// IANA special-purpose address (documentation, RFC 1918, 100.64/10,
// 198.18/15, 127/8, ...) as ADDRESS01 NAMESERVER_IP_PRIVATE_NETWORK at level
// ERROR, one per name server; zmAddressFinding recognises those.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coredns/caddy"
	ctest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
)

// zmFinding is one message of zonemaster-cli --json-stream --json-translate.
type zmFinding struct {
	Timestamp float64        `json:"timestamp"`
	Module    string         `json:"module"`
	Testcase  string         `json:"testcase"`
	Tag       string         `json:"tag"`
	Level     string         `json:"level"`
	Args      map[string]any `json:"args"`
	Message   string         `json:"message"`
}

func (f zmFinding) String() string {
	return fmt.Sprintf("%s %s/%s %s: %s", f.Level, f.Module, f.Testcase, f.Tag, f.Message)
}

// zmLevels orders zonemaster's severities.
var zmLevels = map[string]int{"DEBUG3": 0, "DEBUG2": 1, "DEBUG": 2, "INFO": 3, "NOTICE": 4, "WARNING": 5, "ERROR": 6, "CRITICAL": 7}

// zmAtLeast returns the findings at level or above.
func zmAtLeast(fs []zmFinding, level string) []zmFinding {
	var out []zmFinding
	for _, f := range fs {
		if zmLevels[f.Level] >= zmLevels[level] {
			out = append(out, f)
		}
	}
	return out
}

// zmAddressFinding tells whether f comes only from the test's choice of a
// special-purpose (documentation) address for the name servers.
func zmAddressFinding(f zmFinding) bool {
	return f.Module == "ADDRESS" && f.Tag == "NAMESERVER_IP_PRIVATE_NETWORK"
}

// zmNameserver is one name server of the zone under test.
type zmNameserver struct {
	Name string // e.g. "ns1.example.org"
	Addr string // IPv4 or IPv6 address, put on the namespace's loopback
}

// zmRootAddr serves the test's own root zone inside the namespace.
const zmRootAddr = "203.0.113.53"

// zmEnv is one network namespace for a zonemaster run. The namespace belongs
// to one OS thread, held by a goroutine for the life of the test: everything
// that must happen inside it (CoreDNS opening its listeners, ip(8) and
// zonemaster-cli, which inherit the thread's namespace when forked from it)
// runs on that thread through inNetns. When the test ends the goroutine
// returns without unlocking, Go ends the thread, and the namespace goes with
// it: nothing is named, mounted or left behind, even if the test dies.
type zmEnv struct {
	do    chan func()
	dir   string
	ns    []zmNameserver
	hints string
	prof  string
}

// newZonemasterEnv skips the test unless it runs as root on Linux with
// zonemaster-cli and ip(8) installed, then creates a network namespace with
// only a loopback device, the name servers' addresses on it and the test's
// own root server.
func newZonemasterEnv(t *testing.T, servers ...zmNameserver) *zmEnv {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("zonemaster test needs Linux network namespaces")
	}
	if os.Geteuid() != 0 {
		t.Skip("zonemaster test needs root to create a network namespace and bind port 53")
	}
	for _, bin := range []string{"zonemaster-cli", "ip"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("zonemaster test needs %s (apt-get install zonemaster-cli iproute2): %v", bin, err)
		}
	}

	e := &zmEnv{do: make(chan func()), dir: t.TempDir(), ns: servers}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see zmEnv
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- nil
		for f := range e.do {
			f()
		}
	}()
	if err := <-errc; err != nil {
		t.Skipf("cannot create a network namespace: %v", err)
	}
	t.Cleanup(func() { close(e.do) })

	if err := e.ip("link", "set", "lo", "up"); err != nil {
		t.Fatal(err)
	}
	for _, a := range append([]string{zmRootAddr}, e.addrs()...) {
		bits := "/32"
		if strings.Contains(a, ":") {
			bits = "/128"
		}
		if err := e.ip("addr", "add", a+bits, "dev", "lo"); err != nil {
			t.Fatal(err)
		}
	}

	// The test's own root: an SOA, one NS, and a PTR for each name server.
	root := fmt.Sprintf(". 86400 IN SOA a.root-servers.test. hostmaster.root-servers.test. 1 1800 900 604800 86400\n"+
		". 86400 IN NS a.root-servers.test.\n"+
		"a.root-servers.test. 86400 IN A %s\n", zmRootAddr)
	for _, s := range servers {
		rev, err := dns.ReverseAddr(s.Addr)
		if err != nil {
			t.Fatalf("reverse of %s: %v", s.Addr, err)
		}
		root += fmt.Sprintf("%s 86400 IN PTR %s\n", rev, dns.Fqdn(s.Name))
	}
	rootFile := e.write(t, "db.root", root)
	e.hints = e.write(t, "root.hints", fmt.Sprintf(". 3600000 NS a.root-servers.test.\na.root-servers.test. 3600000 A %s\n", zmRootAddr))
	e.prof = e.write(t, "profile.json", `{"resolver":{"defaults":{"timeout":1,"retry":1,"retrans":1}}}`+"\n")
	e.startCoreDNS(t, fmt.Sprintf(".:53 {\n\tbind %s\n\tfile %s\n}\n", zmRootAddr, rootFile))
	return e
}

// inNetns runs f on the namespace's thread and waits for it. f must not call
// t.Fatal and the like: it runs on another goroutine.
func (e *zmEnv) inNetns(f func()) {
	done := make(chan struct{})
	e.do <- func() { defer close(done); f() }
	<-done
}

func (e *zmEnv) addrs() []string {
	var out []string
	for _, s := range e.ns {
		out = append(out, s.Addr)
	}
	return out
}

// bind returns the name servers' addresses for a Corefile's bind directive.
func (e *zmEnv) bind() string { return strings.Join(e.addrs(), " ") }

// ip runs ip(8) inside the namespace.
func (e *zmEnv) ip(args ...string) error {
	var out []byte
	var err error
	e.inNetns(func() { out, err = exec.Command("ip", args...).CombinedOutput() })
	if err != nil {
		return fmt.Errorf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func (e *zmEnv) write(t *testing.T, name, data string) string {
	t.Helper()
	p := filepath.Join(e.dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// startCoreDNS starts a CoreDNS instance whose listeners are in the
// namespace, and stops it at cleanup. The Corefile must bind the addresses
// on port 53: zonemaster only queries port 53. caddy opens every listener in
// the calling goroutine before it returns; the serving goroutines, on other
// threads, only use the open sockets.
func (e *zmEnv) startCoreDNS(t *testing.T, corefile string) *caddy.Instance {
	t.Helper()
	var inst *caddy.Instance
	var err error
	e.inNetns(func() { inst, err = ctest.CoreDNSServer(corefile) })
	if err != nil {
		t.Fatalf("starting CoreDNS in the namespace: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { stopCoreDNS(inst) })
	return inst
}

// zonemaster runs zonemaster-cli as an undelegated test of zone against the
// environment's name servers, extraArgs (e.g. "--test", "Zone") before the
// zone, and returns its findings at level INFO and above. It fails the test
// if zonemaster-cli fails or runs over a minute.
func (e *zmEnv) zonemaster(t *testing.T, zone string, extraArgs ...string) []zmFinding {
	t.Helper()
	args := []string{"--json-stream", "--json-translate", "--no-progress", "--level", "DEBUG",
		"--profile", e.prof, "--hints", e.hints}
	for _, s := range e.ns {
		args = append(args, "--ns", strings.TrimSuffix(s.Name, ".")+"/"+s.Addr)
	}
	args = append(args, extraArgs...)
	args = append(args, zone)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "zonemaster-cli", args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "LANGUAGE=")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	var err error
	e.inNetns(func() { err = cmd.Run() })
	t.Logf("zonemaster-cli %s: %v", strings.Join(args, " "), time.Since(start).Round(time.Millisecond))
	if err != nil {
		t.Fatalf("zonemaster-cli: %v\nstderr: %s\nstdout: %s", err, stderr.String(), stdout.String())
	}

	// Queries go only to the test's servers; the namespace would stop any
	// other at once, but one would mean the run is not what it seems.
	ours := map[string]bool{zmRootAddr: true}
	for _, a := range e.addrs() {
		ours[a] = true
	}
	var fs []zmFinding
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(nil, 1<<22)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var f zmFinding
		if err := json.Unmarshal(line, &f); err != nil {
			t.Fatalf("zonemaster-cli output line %q: %v", line, err)
		}
		if f.Tag == "EXTERNAL_QUERY" || f.Tag == "LOOKUP_ERROR" {
			if ip, _ := f.Args["ip"].(string); ip != "" && !ours[ip] {
				t.Logf("zonemaster queried %s, which is not a server of the test: %s", ip, f.Message)
			}
		}
		if zmLevels[f.Level] >= zmLevels["INFO"] {
			fs = append(fs, f)
		}
	}
	if len(fs) == 0 {
		t.Fatalf("zonemaster-cli printed no findings\nstderr: %s", stderr.String())
	}
	return fs
}

// zmFindings checks that zonemaster reached the name servers and returns
// its findings at WARNING or above that the test's documentation addresses
// do not explain; it logs every finding at WARNING or above.
func zmFindings(t *testing.T, fs []zmFinding) []zmFinding {
	t.Helper()
	reached := slices.ContainsFunc(fs, func(f zmFinding) bool { return f.Tag == "ARE_AUTHORITATIVE" })
	if !reached {
		for _, f := range fs {
			t.Log(f)
		}
		t.Fatal("zonemaster did not find the name servers authoritative: the run says nothing of them")
	}
	var left []zmFinding
	for _, f := range zmAtLeast(fs, "WARNING") {
		if zmAddressFinding(f) {
			t.Logf("%s (from the documentation address, expected)", f)
			continue
		}
		t.Logf("%s", f)
		left = append(left, f)
	}
	return left
}

// The yardstick: the zone served from a zone file by CoreDNS's file plugin
// has no finding at WARNING or above but those of the addresses.
func TestZonemasterFileBaseline(t *testing.T) {
	env := newZonemasterEnv(t,
		zmNameserver{"ns1.example.org", "203.0.113.1"},
		zmNameserver{"ns2.example.org", "203.0.113.2"})

	zoneFile := filepath.Join(t.TempDir(), "db.example.org")
	zone := `$ORIGIN example.org.
$TTL 3600
@    IN SOA ns1.example.org. hostmaster.example.org. 2024010101 14400 3600 1209600 3600
@    IN NS  ns1.example.org.
@    IN NS  ns2.example.org.
ns1  IN A   203.0.113.1
ns2  IN A   203.0.113.2
app  IN A   203.0.113.10
`
	if err := os.WriteFile(zoneFile, []byte(zone), 0o644); err != nil {
		t.Fatal(err)
	}
	env.startCoreDNS(t, fmt.Sprintf("example.org:53 {\n\tbind %s\n\tfile %s\n}\n", env.bind(), zoneFile))
	if left := zmFindings(t, env.zonemaster(t, "example.org")); len(left) > 0 {
		t.Errorf("%d findings at WARNING or above beyond the addresses'", len(left))
	}
}

// A zone served by bluegreen alone, from etcd, passes as the file plugin's
// does: SOA and NS at the apex, the name servers of the ns option answered,
// a managed name below an empty non-terminal.
func TestZonemasterBluegreen(t *testing.T) {
	env := newZonemasterEnv(t,
		zmNameserver{"ns1.example.org", "203.0.113.1"},
		zmNameserver{"ns2.example.org", "203.0.113.2"})
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "203.0.113.10", "203.0.113.11")
	etcd.putName(t, "api.eu.example.org", "green", "203.0.113.20", "203.0.113.21")
	env.startCoreDNS(t, fmt.Sprintf("example.org:53 {\n\tbind %s\n\tbluegreen {\n\t\tendpoint %s\n\t\tns ns1.example.org 203.0.113.1\n\t\tns ns2.example.org 203.0.113.2\n\t}\n}\n", env.bind(), etcd.endpoint))
	if left := zmFindings(t, env.zonemaster(t, "example.org")); len(left) > 0 {
		t.Errorf("%d findings at WARNING or above beyond the addresses'", len(left))
	}
}

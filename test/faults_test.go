package test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ctest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// load sends queries for one name from several clients until stopped, and
// counts those that fail: an error, a time-out, or an answer that is not one
// of the allowed ones.
type load struct {
	sent, failed atomic.Int64
	firstFailure atomic.Value // string
	stopc        chan struct{}
	wg           sync.WaitGroup
}

// startLoad starts clients querying name at addr over UDP; they stop at stop,
// at the test's end, or after a minute, whichever comes first.
func startLoad(t *testing.T, clients int, addr, name string, allowed ...[]string) *load {
	l := &load{stopc: make(chan struct{})}
	deadline := time.Now().Add(time.Minute)
	for range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for time.Now().Before(deadline) {
				select {
				case <-l.stopc:
					return
				default:
				}
				l.sent.Add(1)
				m, err := exchange("udp", addr, name, dns.TypeA)
				if err == nil && m.Rcode == dns.RcodeSuccess && slices.ContainsFunc(allowed, func(a []string) bool { return slices.Equal(a, answers(m)) }) {
					continue
				}
				l.failed.Add(1)
				l.firstFailure.CompareAndSwap(nil, fmt.Sprintf("%v %v", err, m))
			}
		}()
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) stop() {
	select {
	case <-l.stopc:
	default:
		close(l.stopc)
	}
	l.wg.Wait()
}

// stopAndCheck stops the load and fails the test if any query failed
// during what it names.
func (l *load) stopAndCheck(t *testing.T, during string) {
	t.Helper()
	l.stop()
	t.Logf("%d queries sent %s, %d failed", l.sent.Load(), during, l.failed.Load())
	if l.failed.Load() != 0 {
		t.Errorf("%d of %d queries failed %s; first: %v", l.failed.Load(), l.sent.Load(), during, l.firstFailure.Load())
	}
}

func httpStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestEtcdOutage(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	logs := captureLog(t)
	readyAddr := "127.0.0.1:" + freePort(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "", "ready "+readyAddr))
	blueA, greenA := []string{"A 10.0.1.100"}, []string{"A 10.0.2.100"}
	l := startLoad(t, 4, udp, "app.example.org", blueA, greenA)

	down := time.Now()
	etcd.stop()
	waitFor(t, "the stale log line", 30*time.Second, func() bool { return strings.Contains(logs.String(), "no word from etcd") })
	t.Logf("stale reported %v after etcd began to stop", time.Since(down).Round(time.Millisecond))
	if since := metricValue(t, "coredns_bluegreen_stale_since_timestamp_seconds", "prefix", "/bluegreen/"); since <= 0 || since > float64(down.UnixNano())/1e9 {
		t.Errorf("stale since %v, want a time before etcd stopped at %v", since, float64(down.UnixNano())/1e9)
	}
	if code := httpStatus(t, "http://"+readyAddr+"/ready"); code != http.StatusOK {
		t.Errorf("ready answered %d during the outage, want 200", code)
	}
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, blueA) {
		t.Errorf("during the outage: %v, want the last known %v", got, blueA)
	}
	if txt := stateTXT(t, udp, "app.example.org"); !strings.Contains(txt, `"stale_since=`) || !strings.Contains(txt, `"stale_reason=no word from etcd at [`) {
		t.Errorf("TXT state during the outage: %s, want stale_since and why", txt)
	}

	etcd.start(t)
	up := time.Now()
	t.Logf("etcd was down %v", up.Sub(down).Round(time.Millisecond))
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	took := waitFor(t, "a flip made as etcd came back", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), greenA)
	})
	t.Logf("flip made as etcd came back answered %v after the put returned, %v after etcd was up", took, time.Since(up).Round(time.Millisecond))
	waitFor(t, "the log line saying the answers are current again", 10*time.Second, func() bool { return strings.Contains(logs.String(), "are current again") })
	if since := metricValue(t, "coredns_bluegreen_stale_since_timestamp_seconds", "prefix", "/bluegreen/"); since != 0 {
		t.Errorf("stale since %v after recovery, want 0", since)
	}
	if txt := stateTXT(t, udp, "app.example.org"); strings.Contains(txt, "stale") {
		t.Errorf("TXT state after recovery: %s", txt)
	}
	if strings.Contains(logs.String(), "listing again") {
		t.Error("the plugin listed etcd again instead of resuming its watch")
	}

	l.stopAndCheck(t, "during the outage")
}

func TestCompactedWhileCutOff(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	etcd.putName(t, "gone.example.org", "blue", "10.0.3.100", "10.0.4.100")
	p := startProxy(t, etcd.addr)
	logs := captureLog(t)
	_, udp, _ := startCoreDNS(t, corefile("http://"+p.addr, ""))
	relists := metricValue(t, "coredns_bluegreen_relists_total", "reason", "compacted")

	p.cut()
	waitFor(t, "the stale log line", 30*time.Second, func() bool { return strings.Contains(logs.String(), "no word from etcd") })
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	etcd.del(t, "/bluegreen/gone.example.org/", clientv3.WithPrefix())
	etcd.putName(t, "new.example.org", "green", "10.0.5.100", "10.0.6.100")
	rev := etcd.put(t, "/bluegreen/new.example.org/ttl", "10")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := etcd.client.Compact(ctx, rev, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if got := answers(query(t, "udp", udp, "gone.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.3.100"}) {
		t.Errorf("while cut off: gone.example.org %v, want the last known A 10.0.3.100", got)
	}

	p.restore(t)
	back := time.Now()
	waitFor(t, "the state after the outage", 30*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.2.100"})
	})
	t.Logf("state after the outage answered %v after the partition healed", time.Since(back).Round(time.Millisecond))
	// One list swapped in everything at once: the deleted name is gone and
	// the new one is there as soon as the flip shows.
	if m := query(t, "udp", udp, "gone.example.org", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("a name deleted during the outage: %s %v, want NXDOMAIN", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if got := answers(query(t, "udp", udp, "new.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.6.100"}) {
		t.Errorf("a name added during the outage: %v", got)
	}
	if !strings.Contains(logs.String(), "etcd compacted its history up to revision") {
		t.Error("no log line about the compaction")
	}
	if got := metricValue(t, "coredns_bluegreen_relists_total", "reason", "compacted") - relists; got != 1 {
		t.Errorf("lists for a compaction counted %v, want 1", got)
	}
}

// TestStartFromSnapshotWithoutEtcd starts CoreDNS while etcd is down, with a
// snapshot file and credentials (which need etcd to log in): it answers from
// the file, says the answers are stale since the file was written, and
// catches up once etcd answers.
func TestStartFromSnapshotWithoutEtcd(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	rev := etcd.put(t, "/bluegreen/app.example.org/ttl", "7")
	const password = "Read0nly-Passw0rd"
	root := enableAuth(t, etcd, password, "r00t-Passw0rd")
	file := filepath.Join(t.TempDir(), "bluegreen.json")
	readyAddr := "127.0.0.1:" + freePort(t)
	cf := corefile(etcd.endpoint, "credentials coredns "+password+"\n\t\tsnapshot "+file, "ready "+readyAddr)

	first, _, _, err := ctest.CoreDNSServerAndPorts(cf)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the snapshot file at the last revision", 10*time.Second, func() bool {
		var f struct{ Revision int64 }
		data, err := os.ReadFile(file)
		return err == nil && json.Unmarshal(data, &f) == nil && f.Revision == rev
	})
	stopCoreDNS(first)
	info, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}

	// While CoreDNS is down, a flip; then etcd goes down too.
	mustPut(t, root, "/bluegreen/app.example.org/active", "green")
	etcd.stop()

	logs := captureLog(t)
	start := time.Now()
	_, udp, _ := startCoreDNS(t, cf)
	t.Logf("CoreDNS started in %v with etcd down and a snapshot", time.Since(start).Round(time.Millisecond))
	m := query(t, "udp", udp, "app.example.org", dns.TypeA)
	if got := answers(m); !slices.Equal(got, []string{"A 10.0.1.100"}) || m.Answer[0].Header().Ttl != 7 {
		t.Errorf("from the snapshot: %v, want A 10.0.1.100 with TTL 7", m.Answer)
	}
	if code := httpStatus(t, "http://"+readyAddr+"/ready"); code != http.StatusOK {
		t.Errorf("ready answered %d while serving the snapshot, want 200", code)
	}
	// It says the answers are stale, since the file was written.
	want := fmt.Sprintf(`"stale_since=%s" "stale_reason=answering %s of revision %d: etcd not listed yet"`, info.ModTime().UTC().Format(time.RFC3339), file, rev)
	if txt := stateTXT(t, udp, "app.example.org"); !strings.Contains(txt, want) {
		t.Errorf("TXT state %s, want %s", txt, want)
	}
	if since := metricValue(t, "coredns_bluegreen_stale_since_timestamp_seconds", "prefix", "/bluegreen/"); math.Abs(since-float64(info.ModTime().UnixNano())/1e9) > 1e-3 {
		t.Errorf("stale since %v, want the file's time %v", since, info.ModTime())
	}
	if names, revision := metricValue(t, "coredns_bluegreen_names", "prefix", "/bluegreen/"), metricValue(t, "coredns_bluegreen_revision", "prefix", "/bluegreen/"); names != 1 || revision != float64(rev) {
		t.Errorf("names %v, revision %v from the snapshot; want 1 and %d", names, revision, rev)
	}
	if !strings.Contains(logs.String(), "answers for /bluegreen/ are stale since") {
		t.Error("no log line saying the answers are stale")
	}

	etcd.start(t)
	took := waitFor(t, "the flip made while CoreDNS was down", 30*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.2.100"})
	})
	t.Logf("caught up %v after etcd came back", took)
	if txt := stateTXT(t, udp, "app.example.org"); strings.Contains(txt, "stale") {
		t.Errorf("TXT state once etcd answers: %s", txt)
	}
	if since := metricValue(t, "coredns_bluegreen_stale_since_timestamp_seconds", "prefix", "/bluegreen/"); since != 0 {
		t.Errorf("stale since %v once etcd answers, want 0", since)
	}
}

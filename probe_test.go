package bluegreen

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

func TestWithoutDown(t *testing.T) {
	tg, _ := schema.ParseTarget("10.0.1.1,10.0.1.2,2001:db8::1")
	got, allDown, oneUp := withoutDown(tg, healthMap{"10.0.1.2": stateDown, "2001:db8::1": stateDown})
	if allDown || oneUp || got.Raw != tg.Raw || len(got.A) != 1 || got.A[0].String() != "10.0.1.1" || len(got.AAAA) != 0 {
		t.Errorf("without 10.0.1.2 and 2001:db8::1: %+v, all down %v, one up %v", got, allDown, oneUp)
	}
	got, allDown, _ = withoutDown(tg, healthMap{"10.0.1.1": stateDown, "10.0.1.2": stateDown, "2001:db8::1": stateDown})
	if !allDown || len(got.A) != 2 || len(got.AAAA) != 1 {
		t.Errorf("all down: %+v, all down %v; want the whole target", got, allDown)
	}
	if _, _, oneUp := withoutDown(tg, healthMap{"10.0.1.1": stateUp}); !oneUp {
		t.Error("an address found up: not reported")
	}
}

// recorder records each state its probes report, in order.
type recorder struct {
	pr      *prober
	mu      sync.Mutex
	changes []addrState
	changed chan struct{}
}

func newRecorder(pr *prober) *recorder { return &recorder{pr: pr, changed: make(chan struct{}, 100)} }

func (w *recorder) probed(k probeKey, _ addrState) {
	w.mu.Lock()
	w.changes = append(w.changes, w.pr.state(k))
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default: // await reads changes, not signals
	}
}

// await waits for the n-th change.
func (w *recorder) await(t *testing.T, n int) []addrState {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		w.mu.Lock()
		got := slices.Clone(w.changes)
		w.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-w.changed:
		case <-deadline:
			t.Fatalf("%d state changes within 10s, want %d", len(got), n)
		}
	}
}

// watchNow makes w watch the probe of addr by how in a prober with no other
// probe, its first run now, not at a random point of its interval.
func watchNow(pr *prober, addr string, how probeHow, w probeWatcher) probeKey {
	k, _ := pr.watch(netip.MustParseAddr(addr), how, w, false)
	pr.mu.Lock()
	now := sinceBegun()
	p := pr.probes[k]
	p.due = now
	pr.probes[k], pr.queue[0].due = p, now
	pr.mu.Unlock()
	pr.signal()
	return k
}

// stop unwatches k and waits for its run in flight, if any.
func stop(pr *prober, k probeKey, w probeWatcher) {
	if done := pr.unwatch(k, w); done != nil {
		<-done
	}
}

// A probe takes its address down after fall failures in a row and up again
// after rise successes in a row; shorter runs change nothing.
func TestProbeRiseAndFall(t *testing.T) {
	// The health endpoint answers the script, one status per probe, then 200.
	// Each request also notes what the probes before it found: the prober
	// records a result before it queues the next run, so a change first
	// seen by request n+1 came from probe n. The test's own reads of the
	// count would race the probes, one every millisecond.
	script := []int{200, 500, 500, 200, 500, 500, 500, 200, 500, 200, 302, 200}
	pr := newProber()
	var mu sync.Mutex
	var n int
	var k probeKey
	known := make(chan struct{}) // k is set
	seen := stateUnknown
	var states []addrState // each change, as the requests saw it
	var when []int         // the probe after which each change was seen
	changed := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-known
		mu.Lock()
		defer mu.Unlock()
		if s := pr.state(k); s != seen {
			seen, states, when = s, append(states, s), append(when, n)
			select {
			case changed <- struct{}{}:
			default:
			}
		}
		if n < len(script) {
			w.WriteHeader(script[n])
		}
		n++
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c, err := schema.ParseCheck("http://:" + u.Port() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	w := newRecorder(pr)
	// A timeout well beyond the machine's pauses: a probe timed out would
	// be a failure the script did not ask for.
	k, _ = pr.watch(netip.MustParseAddr(u.Hostname()), newProbeHow("app.example.org.", c, probeConfig{interval: time.Millisecond, timeout: time.Minute, rise: 3, fall: 3}), w, false)
	close(known)
	deadline := time.After(10 * time.Second)
	for {
		mu.Lock()
		got := slices.Clone(when)
		mu.Unlock()
		if len(got) >= 2 {
			break
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("state changes seen after probes %v within 10s, want 2", got)
		}
	}
	// The watcher is told of each change, from the worker of its probe,
	// which may come later than the next probe: it reads the state then,
	// so what it read is not checked, only that it was told twice.
	if told := w.await(t, 2); len(told) != 2 {
		t.Errorf("watcher told of %d changes, want 2", len(told))
	}
	stop(pr, k, w)
	// Unknown until then: down after the third failure in a row (probe 7),
	// not after two (3); up after the third success in a row (probe 12):
	// 200 then 302 count. (A request cut short by stop may see the probe
	// gone: only the first two changes are the script's.)
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(states[:2], []addrState{stateDown, stateUp}) || !slices.Equal(when[:2], []int{7, 12}) {
		t.Errorf("state changes %v after probes %v, want down after 7, up after 12", states, when)
	}
}

// An https check probes the address with the name in SNI and Host, and does
// not verify the certificate: backends are probed by address.
func TestProbeHTTPS(t *testing.T) {
	var mu sync.Mutex
	var sni, host string
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		sni, host = r.TLS.ServerName, r.Host
		if r.URL.Path != "/ready" {
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	pr := newProber()
	for path, want := range map[string]bool{"/ready": true, "/missing": false} {
		c, err := schema.ParseCheck("https://:" + u.Port() + path)
		if err != nil {
			t.Fatal(err)
		}
		if got := pr.try(context.Background(), netip.MustParseAddr(u.Hostname()), newProbeHow("app.example.org.", c, defaultProbes)); got != want {
			t.Errorf("https check of %s: up %v, want %v", path, got, want)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if sni != "app.example.org" || host != "app.example.org" {
		t.Errorf("SNI %q, Host %q; want the name in both", sni, host)
	}
	// Nothing listening: down, within the timeout.
	srv.Close()
	c, _ := schema.ParseCheck("https://:" + u.Port() + "/ready")
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if pr.try(ctx, netip.MustParseAddr(u.Hostname()), newProbeHow("app.example.org.", c, defaultProbes)) {
		t.Error("a closed port probed up")
	}
}

// A probe that takes over a down address (its check was edited) starts from
// down, so that it reports the address once it is healthy again.
func TestProbeStartsFromKnownDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	c, _ := schema.ParseCheck("http://:" + u.Port() + "/")
	pr := newProber()
	w := newRecorder(pr)
	k, s := pr.watch(netip.MustParseAddr(u.Hostname()), newProbeHow("app.example.org.", c, probeConfig{interval: time.Millisecond, timeout: time.Second, rise: 2, fall: 2}), w, true)
	if s != stateDown {
		t.Errorf("a new probe of a down address starts %d, want down", s)
	}
	if got := w.await(t, 1); got[0] != stateUp {
		t.Errorf("reported %v; want up", got)
	}
	stop(pr, k, w)
}

// Names with the same address and check share one probe; a name's own
// Host makes an http check its own. Thousands of probes run on a few
// goroutines, and none is left once no one watches.
func TestProbesShared(t *testing.T) {
	base := runtime.NumGoroutine()
	pr := newProber()
	w1, w2 := newRecorder(pr), newRecorder(pr)
	tcp, _ := schema.ParseCheck("tcp://:1")
	// A probe timing out starts goroutines of its own for a moment (the
	// context's timer, the dial's cancel): with a timeout of 50ms, a busy
	// machine timed out the probes in flight together, and the count below
	// reached 127. A closed port refuses at once: the timeout is only for a
	// machine stalled for a minute.
	cfg := probeConfig{interval: 50 * time.Millisecond, timeout: time.Minute, rise: 1, fall: 1}
	lo := netip.MustParseAddr("127.0.0.1")
	a, _ := pr.watch(lo, newProbeHow("a.example.org.", tcp, cfg), w1, false)
	b, _ := pr.watch(lo, newProbeHow("b.example.org.", tcp, cfg), w2, false)
	if a != b {
		t.Fatal("two names with one address and tcp check have different probes")
	}
	w1.await(t, 1)
	w2.await(t, 1)
	pr.mu.Lock()
	n := len(pr.probes)
	pr.mu.Unlock()
	if st := pr.state(a); n != 1 || st != stateDown {
		t.Errorf("%d probes, state %d; want one probe, down", n, st)
	}
	web, _ := schema.ParseCheck("http://:1/")
	if newProbeHow("a.example.org.", web, cfg) == newProbeHow("b.example.org.", web, cfg) {
		t.Error("http checks of two names share a probe, though each sends its own Host")
	}

	before := runtime.NumGoroutine()
	var keys []probeKey
	for i := range 5000 {
		k, _ := pr.watch(netip.MustParseAddr(fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)), newProbeHow("n.example.org.", tcp, cfg), w1, false)
		keys = append(keys, k)
	}
	w1.await(t, 1000)
	if extra := runtime.NumGoroutine() - before; extra > maxInFlight+2 {
		t.Errorf("%d goroutines more for 5,000 probes, want at most %d", extra, maxInFlight+2)
	}
	for _, k := range append(keys, a, b) {
		stop(pr, k, w1)
		stop(pr, k, w2)
	}
	if pr.mu.Lock(); len(pr.howIDs) != 0 {
		t.Errorf("%d checks kept with no probe left", len(pr.howIDs))
	}
	pr.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for {
		pr.mu.Lock()
		idle := !pr.scheduling && len(pr.probes) == 0
		pr.mu.Unlock()
		if idle && runtime.NumGoroutine() <= base {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10s after the last probe went: scheduler running %v, %d goroutines more than before", !idle, runtime.NumGoroutine()-base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// An address whose state is in question is probed again within
// confirmEvery, not an interval later: an interval of an hour still takes
// a dead backend out in seconds. Once its state is settled, its next probe
// is an interval away.
func TestProbeConfirmsQuickly(t *testing.T) {
	pr := newProber()
	w := newRecorder(pr)
	closed, _ := schema.ParseCheck("tcp://:1")
	k := watchNow(pr, "127.0.0.1", newProbeHow("app.example.org.", closed, probeConfig{interval: time.Hour, timeout: time.Second, rise: 1, fall: 2}), w)
	defer stop(pr, k, w)
	start := time.Now()
	if got := w.await(t, 1); got[0] != stateDown {
		t.Fatalf("reported %v; want down", got)
	}
	t.Logf("down after %v", time.Since(start))
	pr.mu.Lock()
	next := pr.queue[0].due
	pr.mu.Unlock()
	if wait := next - sinceBegun(); wait < 59*time.Minute {
		t.Errorf("a settled address is probed again in %v, want an interval, 1h", wait)
	}
}

// A tcp probe closes its connection with a reset: probes to thousands of
// addresses leave no sockets behind in TIME_WAIT.
func TestTCPProbeLeavesNoTimeWait(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.Copy(io.Discard, c) // until the probe closes
			c.Close()
			closed <- struct{}{}
		}
	}()
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, _ := schema.ParseCheck(fmt.Sprintf("tcp://:%d", port))
	pr := newProber()
	how := newProbeHow("app.example.org.", c, defaultProbes)
	for range 5 {
		if !pr.try(context.Background(), netip.MustParseAddr("127.0.0.1"), how) {
			t.Fatal("a listening port probed down")
		}
		<-closed
	}
	if n := timeWaits(t, port); n != 0 {
		t.Errorf("%d sockets to the probed port in TIME_WAIT after 5 probes, want 0", n)
	}
}

// timeWaits counts the IPv4 TCP sockets in TIME_WAIT to or from port.
func timeWaits(t *testing.T, port int) int {
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Skip("no /proc/net/tcp:", err)
	}
	n := 0
	hex := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(data), "\n")[1:] {
		// sl local_address rem_address st ...; st 06 is TIME_WAIT.
		if f := strings.Fields(line); len(f) > 3 && f[3] == "06" && (strings.HasSuffix(f[1], hex) || strings.HasSuffix(f[2], hex)) {
			n++
		}
	}
	return n
}

// New probes start at random points of their first interval, so that a
// thousand names loaded together are not probed together.
func TestProbeStartsSpread(t *testing.T) {
	pr := newProber()
	w := newRecorder(pr)
	closed, _ := schema.ParseCheck("tcp://:1")
	cfg := probeConfig{interval: time.Hour, timeout: time.Second, rise: 1, fall: 1}
	var keys []probeKey
	for i := range 1000 {
		k, _ := pr.watch(netip.MustParseAddr(fmt.Sprintf("127.1.%d.%d", i/250, i%250+1)), newProbeHow("n.example.org.", closed, cfg), w, false)
		keys = append(keys, k)
	}
	defer func() {
		for _, k := range keys {
			stop(pr, k, w)
		}
	}()
	start := sinceBegun()
	pr.mu.Lock()
	perTenth := make([]int, 10) // first runs in each tenth of the hour
	for _, q := range pr.queue {
		perTenth[min(int((q.due-start)*10/time.Hour), 9)]++
	}
	pr.mu.Unlock()
	for i, n := range perTenth {
		if n < 50 || n > 150 { // 100 expected in each
			t.Errorf("%d of 1,000 first runs in tenth %d of the interval, want about 100: %v", n, i, perTenth)
			break
		}
	}
}

// A probe that missed runs (CoreDNS stopped, the host paused) keeps its
// phase: late probes must not all come due together afterwards.
func TestNextDueKeepsPhase(t *testing.T) {
	s := time.Second
	for _, c := range []struct {
		due, now, want time.Duration
	}{
		{0, 0, 30 * s},                       // on time
		{0, 31 * s, 60 * s},                  // started an interval late: the missed run is skipped
		{10 * s, 95 * s, 100 * s},            // three runs missed: back to its phase, 10 s past each half minute
		{20 * s, 95 * s, 110 * s},            // another phase stays another
		{0, 30 * s, 30 * s},                  // due just now
		{0, 30*s + time.Millisecond, 60 * s}, // just missed
	} {
		got := nextDue(c.due, 30*s, c.now)
		if got != c.want {
			t.Errorf("due %v, now %v: next due %v, want %v", c.due, c.now, got, c.want)
		}
	}
}

// An address found down is probed again at once when hurried (a name has
// switched to it), not an interval later.
func TestProbeHurried(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close() // down until it listens again
	pr := newProber()
	w := newRecorder(pr)
	c, _ := schema.ParseCheck("tcp://:" + port)
	k := watchNow(pr, "127.0.0.1", newProbeHow("app.example.org.", c, probeConfig{interval: time.Hour, timeout: time.Second, rise: 1, fall: 1}), w)
	defer stop(pr, k, w)
	if got := w.await(t, 1); got[0] != stateDown {
		t.Fatalf("reported %v; want down", got)
	}
	l, err = net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	pr.hurry(k)
	if got := w.await(t, 2); got[1] != stateUp {
		t.Fatalf("reported %v; want up once hurried", got)
	}
}

package bluegreen

import (
	"container/heap"
	"context"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// probeConfig is the Corefile's settings for health checks.
type probeConfig struct {
	interval time.Duration
	timeout  time.Duration
	rise     int // successes in a row that make an address up
	fall     int // failures in a row that make an address down
}

var defaultProbes = probeConfig{interval: 30 * time.Second, timeout: time.Second, rise: 2, fall: 3}

// confirmEvery is how soon an address is probed again while its state is in
// question, as HAProxy's fastinter: a settled address costs one probe an
// interval, yet one that stops answering is taken out within an interval
// and fall-1 quick probes more.
const confirmEvery = 2 * time.Second

// maxInFlight bounds the probes running at once, in the whole process: the
// goroutines and sockets that checks take do not grow with the addresses
// checked. When they are all busy, the next probe waits its turn.
const maxInFlight = 64

// A probeKey is what one probe checks. Every name with the same address and
// check, in any server block with the same settings, shares one probe.
// The check and settings, the same for thousands of addresses, are kept
// once, in the prober: a key holds no pointer, so the maps and the queue
// of twenty thousand probes are nothing for a garbage collection to scan,
// and a longer GC mark is slower queries.
type probeKey struct {
	addr [16]byte // an IPv4 address mapped
	how  howID
}

// A howID is the index of a probeHow in the prober's hows.
type howID uint32

// probeHow is how an address is probed.
type probeHow struct {
	check schema.Check
	host  string // the Host and SNI of an http or https check: the name; "" for tcp
	cfg   probeConfig
}

func newProbeHow(name string, c schema.Check, cfg probeConfig) probeHow {
	how := probeHow{check: c, cfg: cfg}
	if c.Scheme != "tcp" {
		how.host = strings.TrimSuffix(name, ".")
	}
	return how
}

func (k probeKey) ip() netip.Addr { return netip.AddrFrom16(k.addr).Unmap() }

// A usedHow is a probeHow and how many probes use it: it goes with the
// last of them.
type usedHow struct {
	how    probeHow
	probes int
}

// A probeWatcher is told when the state of a probe changes, and what it
// was; it reads the state with prober.state, and ignores probes it does
// not watch.
type probeWatcher interface {
	probed(k probeKey, was addrState)
}

// A probe is one address under one check, probed every interval for as long
// as a name watches it. Probes are small values in the prober's map, with
// no pointer: twenty thousand of them add no object and little memory for
// every garbage collection to mark, and a longer mark is slower queries.
type probe struct {
	state      addrState
	oks, fails int32 // successes and failures in a row
	watches    int32 // by names, in any store
	due        time.Duration
	gen        uint64 // which probe of its key it is: the key may be watched again after it went
}

// Times in the prober are durations since it began, on the monotonic
// clock: a time.Time holds a pointer.
var begun = time.Now()

func sinceBegun() time.Duration { return time.Since(begun) }

// A flight is a run of the probe of key, generation gen: done is closed
// when it ends, cancel ends it once it has started.
type flight struct {
	key    probeKey
	gen    uint64
	done   chan struct{}
	cancel context.CancelFunc
}

// prober runs every probe: one goroutine hands out due probes to at most
// maxInFlight workers, and each probe starts at a random point of its first
// interval, so that a thousand names loaded together are not probed
// together. It runs only while some probe is watched.
type prober struct {
	mu         sync.Mutex
	probes     map[probeKey]probe
	flights    map[probeKey]*flight
	watchers   map[probeWatcher]int // how many watches each has
	hows       []usedHow            // by howID; a free one has no probes
	howIDs     map[probeHow]howID
	freeHows   []howID
	gens       uint64
	queue      probeQueue
	scheduling bool
	wake       chan struct{}
	client     *http.Client
}

// probes is the process's prober, shared by every server block.
var probes = newProber()

func newProber() *prober {
	return &prober{probes: map[probeKey]probe{}, flights: map[probeKey]*flight{}, watchers: map[probeWatcher]int{},
		howIDs: map[probeHow]howID{}, wake: make(chan struct{}, 1), client: probeClient()}
}

// watch makes w a watcher of the probe of addr by how, and returns its key
// and what is known of the address. A new probe of an address known to be
// down starts from down (its check was edited, say), so that it puts no
// dead backend back in the answers.
func (pr *prober) watch(addr netip.Addr, how probeHow, w probeWatcher, down bool) (probeKey, addrState) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	id, ok := pr.howIDs[how]
	if !ok {
		id = pr.intern(how)
	}
	k := probeKey{addr: addr.As16(), how: id}
	p, ok := pr.probes[k]
	if !ok {
		pr.hows[id].probes++
		pr.gens++
		p = probe{due: sinceBegun() + rand.N(how.cfg.interval), gen: pr.gens}
		if down {
			p.state = stateDown
		}
		pr.enqueue(k, p)
		if !pr.scheduling {
			pr.scheduling = true
			go pr.schedule()
		}
	}
	p.watches++
	pr.probes[k] = p
	pr.watchers[w]++
	return k, p.state
}

// intern keeps how, for the probes that will use it.
func (pr *prober) intern(how probeHow) howID {
	var id howID
	if n := len(pr.freeHows); n > 0 {
		id, pr.freeHows = pr.freeHows[n-1], pr.freeHows[:n-1]
		pr.hows[id] = usedHow{how: how}
	} else {
		id = howID(len(pr.hows))
		pr.hows = append(pr.hows, usedHow{how: how})
	}
	pr.howIDs[how] = id
	return id
}

// how is how k's address is probed; k must be probed.
func (pr *prober) how(k probeKey) probeHow {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.hows[k.how].how
}

// unwatch ends one watch of k by w. The last one stops the probe, and
// returns a channel closed once its run in flight, cancelled, has ended.
func (pr *prober) unwatch(k probeKey, w probeWatcher) <-chan struct{} {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	p, ok := pr.probes[k]
	if !ok {
		return nil
	}
	if pr.watchers[w]--; pr.watchers[w] <= 0 {
		delete(pr.watchers, w)
	}
	if p.watches--; p.watches > 0 {
		pr.probes[k] = p
		return nil
	}
	delete(pr.probes, k) // its place in the queue is dropped when it comes up
	if h := &pr.hows[k.how]; h.probes == 1 {
		delete(pr.howIDs, h.how)
		*h = usedHow{}
		pr.freeHows = append(pr.freeHows, k.how)
	} else {
		h.probes--
	}
	pr.signal()
	f := pr.flights[k]
	if f == nil || f.gen != p.gen {
		return nil
	}
	if f.cancel != nil {
		f.cancel()
	}
	return f.done
}

// state is what probes found of k's address so far.
func (pr *prober) state(k probeKey) addrState {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	return pr.probes[k].state // stateUnknown when k is not probed
}

// hurry probes k's address at once if it was found down and is not due for
// a probe soon anyway: a name has just switched to it, and a backend that
// has come back since should be answered in seconds, not an interval later.
// Its old place in the queue is dropped when it comes up.
func (pr *prober) hurry(k probeKey) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	p, ok := pr.probes[k]
	if !ok || p.state != stateDown || pr.flights[k] != nil || p.due-sinceBegun() <= confirmEvery {
		return
	}
	p.due = sinceBegun()
	pr.probes[k] = p
	pr.enqueue(k, p)
}

// enqueue queues k's probe p at p.due, and wakes the scheduler only if that
// is now the first due: otherwise it is waiting for an earlier one already.
// Most probes are queued by the end of their run, an interval ahead: waking
// the scheduler for each would double its wakes.
func (pr *prober) enqueue(k probeKey, p probe) {
	heap.Push(&pr.queue, queued{p.due, k, p.gen})
	if pr.queue[0].due >= p.due {
		pr.signal()
	}
}

func (pr *prober) signal() {
	select {
	case pr.wake <- struct{}{}:
	default:
	}
}

// schedule hands each probe to a worker when it is due, while there are
// probes. Workers are started as they are needed, up to maxInFlight, and
// end with it: a worker keeps its grown stack from one probe to the next.
func (pr *prober) schedule() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	work, workers := make(chan *flight), 0
	defer close(work)
	pace := newPacer()
	for {
		pr.mu.Lock()
		if len(pr.probes) == 0 {
			pr.scheduling, pr.queue = false, nil
			pr.mu.Unlock()
			return
		}
		wait := time.Hour // every probe is running: one will be queued again
		if len(pr.queue) > 0 {
			wait = pr.queue[0].due - sinceBegun()
		}
		if wait > pace.window() {
			pr.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-pr.wake:
				timer.Stop()
			}
			continue
		}
		q := heap.Pop(&pr.queue).(queued)
		if p, ok := pr.probes[q.key]; !ok || p.gen != q.gen || p.due != q.due {
			pr.mu.Unlock()
			continue // no longer watched, or hurried
		}
		f := &flight{key: q.key, gen: q.gen, done: make(chan struct{})}
		pr.flights[q.key] = f
		pr.mu.Unlock()
		select {
		case work <- f:
		default:
			if workers < maxInFlight {
				workers++
				go pr.work(work)
			}
			work <- f // waits for a worker when all are busy
		}
	}
}

// work runs the probes it is handed until the scheduler ends.
func (pr *prober) work(flights <-chan *flight) {
	for f := range flights {
		pr.run(f)
	}
}

// run probes f's address once, unless it was unwatched while it waited for
// a worker, and records the result.
func (pr *prober) run(f *flight) {
	k, gen := f.key, f.gen
	pr.mu.Lock()
	if pr.probes[k].gen != gen {
		pr.land(f)
		pr.mu.Unlock()
		return
	}
	how := pr.hows[k.how].how
	// The timeout starts now, not while the probe waited for a worker.
	ctx, cancel := context.WithTimeout(context.Background(), how.cfg.timeout)
	f.cancel = cancel
	pr.mu.Unlock()

	start := time.Now()
	ok := pr.try(ctx, k.ip(), how)
	cancelled := ctx.Err() == context.Canceled
	cancel()

	pr.mu.Lock()
	pr.land(f)
	p, watched := pr.probes[k]
	if cancelled || !watched || p.gen != gen {
		pr.mu.Unlock()
		return // no longer watched
	}
	probeSeconds.WithLabelValues(how.check.Scheme, result(ok)).Observe(time.Since(start).Seconds())
	was := p.state
	p = pr.record(k, p, how.cfg, ok)
	var tell []probeWatcher
	if p.state != was {
		for w := range pr.watchers {
			tell = append(tell, w)
		}
	}
	pr.mu.Unlock()
	for _, w := range tell {
		w.probed(k, was)
	}
}

// land ends the run in flight f.
func (pr *prober) land(f *flight) {
	close(f.done)
	if pr.flights[f.key] == f {
		delete(pr.flights, f.key)
	}
}

// record counts the result of the run of k's probe p, with settings cfg,
// and queues it for its next.
func (pr *prober) record(k probeKey, p probe, cfg probeConfig, ok bool) probe {
	if ok {
		p.oks, p.fails = p.oks+1, 0
	} else {
		p.oks, p.fails = 0, p.fails+1
	}
	switch {
	case p.state != stateUp && int(p.oks) >= cfg.rise:
		p.state = stateUp
	case p.state != stateDown && int(p.fails) >= cfg.fall:
		p.state = stateDown
	}
	p.due = nextDue(p.due, p.next(cfg.interval), sinceBegun())
	pr.probes[k] = p
	pr.enqueue(k, p)
	return p
}

// nextDue is when a probe due at due and run every every is due next, after
// now. It keeps to the probe's phase even when runs were missed (CoreDNS
// stopped, the host paused, more probes due than workers): late probes then
// resume their places, spread over the interval, instead of all coming due
// together from then on.
func nextDue(due, every, now time.Duration) time.Duration {
	due += every
	if late := now - due; late > 0 {
		due += late.Truncate(every) + every
	}
	return due
}

// next is the time from this run of p to the next: the interval, or
// confirmEvery while the address's state is in question: unknown yet, or
// with a probe that disagrees with it.
func (p probe) next(interval time.Duration) time.Duration {
	if p.state == stateUnknown || p.state == stateUp && p.fails > 0 || p.state == stateDown && p.oks > 0 {
		return min(interval, confirmEvery)
	}
	return interval
}

func result(ok bool) string {
	if ok {
		return "up"
	}
	return "down"
}

// try probes addr once, by how: a TCP connect, or an HTTP GET that must
// answer 2xx or 3xx.
func (pr *prober) try(ctx context.Context, addr netip.Addr, how probeHow) bool {
	hostport := net.JoinHostPort(addr.String(), how.check.Port)
	if how.check.Scheme == "tcp" {
		conn, err := dialProbe(ctx, hostport)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, sniKey{}, how.host), http.MethodGet, how.check.Scheme+"://"+hostport+how.check.Path, nil)
	if err != nil {
		return false
	}
	req.Host = how.host
	req.Header.Set("User-Agent", "coredns-bluegreen-check")
	resp, err := pr.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// dialProbe makes a probe's connection to an address and port. It lives for
// a moment: it needs no keep-alive, and it is closed with a reset, as
// HAProxy closes its checks, since a probe an interval to each of thousands
// of addresses would keep thousands of sockets in TIME_WAIT.
func dialProbe(ctx context.Context, hostport string) (net.Conn, error) {
	conn, err := probeDialer.DialContext(ctx, "tcp", hostport)
	if err != nil {
		return nil, err
	}
	conn.(*net.TCPConn).SetLinger(0)
	return conn, nil
}

var probeDialer = net.Dialer{KeepAlive: -1}

// sniKey carries the server name of an https probe to its TLS dial.
type sniKey struct{}

// probeClient is the HTTP client of every probe: a fresh connection per
// probe, as a new client would make, and no proxy from the environment.
// Backends are probed by address, which their certificates seldom name: the
// probe asks whether the service answers, not who it is; it sends the name
// in SNI all the same.
func probeClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return dialProbe(ctx, addr)
			},
			DialTLSContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				conn, err := dialProbe(ctx, addr)
				if err != nil {
					return nil, err
				}
				name, _ := ctx.Value(sniKey{}).(string)
				tc := tls.Client(conn, &tls.Config{ServerName: name, InsecureSkipVerify: true})
				if err := tc.HandshakeContext(ctx); err != nil {
					conn.Close()
					return nil, err
				}
				return tc, nil
			},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// probeQueue is a heap of probes by due time.
type probeQueue []queued

// queued is the run of the probe of key, generation gen, due at due.
type queued struct {
	due time.Duration
	key probeKey
	gen uint64
}

func (q probeQueue) Len() int           { return len(q) }
func (q probeQueue) Less(i, j int) bool { return q[i].due < q[j].due }
func (q probeQueue) Swap(i, j int)      { q[i], q[j] = q[j], q[i] }
func (q *probeQueue) Push(x any)        { *q = append(*q, x.(queued)) }
func (q *probeQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	old[len(old)-1] = queued{}
	*q = old[:len(old)-1]
	return x
}

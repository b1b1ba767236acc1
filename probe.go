package bluegreen

import (
	"container/heap"
	"context"
	"crypto/tls"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
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

var defaultProbes = probeConfig{interval: 2 * time.Second, timeout: time.Second, rise: 2, fall: 3}

// maxInFlight bounds the probes running at once, in the whole process: the
// goroutines and sockets that checks take do not grow with the addresses
// checked. When they are all busy, the next probe waits its turn.
const maxInFlight = 64

// A probeKey is what one probe checks. Every name with the same address and
// check, in any server block with the same settings, shares one probe.
type probeKey struct {
	addr  string
	check schema.Check
	host  string // the Host and SNI of an http or https check: the name; "" for tcp
	cfg   probeConfig
}

func keyOf(name, addr string, c schema.Check, cfg probeConfig) probeKey {
	k := probeKey{addr: addr, check: c, cfg: cfg}
	if c.Scheme != "tcp" {
		k.host = strings.TrimSuffix(name, ".")
	}
	return k
}

// A probeWatcher is told when the state of a probe it watches changes; it
// reads the state with prober.state.
type probeWatcher interface{ probed(probeKey) }

// A probe is one address under one check, probed every interval for as long
// as a name watches it.
type probe struct {
	key        probeKey
	state      addrState
	oks, fails int // successes and failures in a row
	watchers   map[probeWatcher]int
	due        time.Time
	index      int           // in the queue; -1 while it runs
	running    chan struct{} // closed when the run in flight ends
	cancel     context.CancelFunc
}

// prober runs every probe: one goroutine hands out due probes, at most
// maxInFlight run at once, and each starts at a random point of its first
// interval, so that a thousand names loaded together are not probed
// together. It runs only while some probe is watched.
type prober struct {
	mu         sync.Mutex
	probes     map[probeKey]*probe
	queue      probeQueue
	scheduling bool
	wake       chan struct{}
	slots      chan struct{}
	client     *http.Client
}

// probes is the process's prober, shared by every server block.
var probes = newProber()

func newProber() *prober {
	return &prober{probes: map[probeKey]*probe{}, wake: make(chan struct{}, 1), slots: make(chan struct{}, maxInFlight), client: probeClient()}
}

// watch makes w a watcher of k, and returns what is known of k's address.
// A new probe of an address known to be down starts from down (its check
// was edited, say), so that it puts no dead backend back in the answers.
func (pr *prober) watch(k probeKey, w probeWatcher, down bool) addrState {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	p := pr.probes[k]
	if p == nil {
		p = &probe{key: k, watchers: map[probeWatcher]int{}, due: time.Now().Add(rand.N(k.cfg.interval))}
		if down {
			p.state = stateDown
		}
		pr.probes[k] = p
		heap.Push(&pr.queue, p)
		pr.signal()
		if !pr.scheduling {
			pr.scheduling = true
			go pr.schedule()
		}
	}
	p.watchers[w]++
	return p.state
}

// unwatch ends one watch of k by w. The last one stops the probe, and
// returns a channel closed once its run in flight, cancelled, has ended.
func (pr *prober) unwatch(k probeKey, w probeWatcher) <-chan struct{} {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	p := pr.probes[k]
	if p == nil {
		return nil
	}
	if p.watchers[w]--; p.watchers[w] <= 0 {
		delete(p.watchers, w)
	}
	if len(p.watchers) > 0 {
		return nil
	}
	delete(pr.probes, k)
	pr.signal()
	if p.index >= 0 {
		heap.Remove(&pr.queue, p.index)
		return nil
	}
	p.cancel()
	return p.running
}

// state is what probes found of k's address so far.
func (pr *prober) state(k probeKey) addrState {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if p := pr.probes[k]; p != nil {
		return p.state
	}
	return stateUnknown
}

func (pr *prober) signal() {
	select {
	case pr.wake <- struct{}{}:
	default:
	}
}

// schedule starts each probe when it is due, while there are probes.
func (pr *prober) schedule() {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		pr.mu.Lock()
		if len(pr.probes) == 0 {
			pr.scheduling = false
			pr.mu.Unlock()
			return
		}
		wait := time.Hour // every probe is running: one will be queued again
		if len(pr.queue) > 0 {
			wait = time.Until(pr.queue[0].due)
		}
		if wait > 0 {
			pr.mu.Unlock()
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-pr.wake:
				timer.Stop()
			}
			continue
		}
		p := heap.Pop(&pr.queue).(*probe)
		ctx, cancel := context.WithTimeout(context.Background(), p.key.cfg.timeout)
		p.running, p.cancel = make(chan struct{}), cancel
		pr.mu.Unlock()
		pr.slots <- struct{}{} // wait for a slot
		go pr.run(ctx, p)
	}
}

// run probes p once, counts the result, queues p for its next interval,
// and tells its watchers if the address changed state.
func (pr *prober) run(ctx context.Context, p *probe) {
	start := time.Now()
	ok := pr.try(ctx, p.key)
	cancelled := ctx.Err() == context.Canceled
	p.cancel()
	defer func() { <-pr.slots }() // after telling the watchers: a slot is a goroutine

	pr.mu.Lock()
	close(p.running)
	if cancelled || pr.probes[p.key] != p {
		pr.mu.Unlock()
		return // no longer watched
	}
	probeSeconds.WithLabelValues(p.key.check.Scheme, result(ok)).Observe(time.Since(start).Seconds())
	if ok {
		p.oks, p.fails = p.oks+1, 0
	} else {
		p.oks, p.fails = 0, p.fails+1
	}
	was := p.state
	switch {
	case p.state != stateUp && p.oks >= p.key.cfg.rise:
		p.state = stateUp
	case p.state != stateDown && p.fails >= p.key.cfg.fall:
		p.state = stateDown
	}
	// The next run keeps to the probe's phase, unless it is late already.
	if p.due = p.due.Add(p.key.cfg.interval); p.due.Before(start) {
		p.due = time.Now()
	}
	heap.Push(&pr.queue, p)
	pr.signal()
	var tell []probeWatcher
	if p.state != was {
		for w := range p.watchers {
			tell = append(tell, w)
		}
	}
	pr.mu.Unlock()
	for _, w := range tell {
		w.probed(p.key)
	}
}

func result(ok bool) string {
	if ok {
		return "up"
	}
	return "down"
}

// try probes k's address once: a TCP connect, or an HTTP GET that must
// answer 2xx or 3xx.
func (pr *prober) try(ctx context.Context, k probeKey) bool {
	hostport := net.JoinHostPort(k.addr, k.check.Port)
	if k.check.Scheme == "tcp" {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", hostport)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	req, err := http.NewRequestWithContext(context.WithValue(ctx, sniKey{}, k.host), http.MethodGet, k.check.Scheme+"://"+hostport+k.check.Path, nil)
	if err != nil {
		return false
	}
	req.Host = k.host
	req.Header.Set("User-Agent", "coredns-bluegreen-check")
	resp, err := pr.client.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode >= 200 && resp.StatusCode < 400
}

// sniKey carries the server name of an https probe to its TLS dial.
type sniKey struct{}

// probeClient is the HTTP client of every probe: a fresh connection per
// probe, as a new client would make, and no proxy from the environment.
// Backends are probed by address, which their certificates seldom name: the
// probe asks whether the service answers, not who it is; it sends the name
// in SNI all the same.
func probeClient() *http.Client {
	var d net.Dialer
	return &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				conn, err := d.DialContext(ctx, network, addr)
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
type probeQueue []*probe

func (q probeQueue) Len() int           { return len(q) }
func (q probeQueue) Less(i, j int) bool { return q[i].due.Before(q[j].due) }
func (q probeQueue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *probeQueue) Push(x any) {
	p := x.(*probe)
	p.index = len(*q)
	*q = append(*q, p)
}
func (q *probeQueue) Pop() any {
	old := *q
	p := old[len(old)-1]
	old[len(old)-1] = nil
	p.index = -1
	*q = old[:len(old)-1]
	return p
}

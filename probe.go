package bluegreen

import (
	"context"
	"crypto/tls"
	"io"
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

// A probe checks one address of one name, from when the name is loaded
// until the address or the check goes away.
type probe struct {
	name, addr string
	check      schema.Check
	start      addrState // down if the address was down under the check before, else unknown
	cancel     context.CancelFunc
}

// prober runs the probes. The store starts and stops them under its lock;
// each probe reports a change of its address's state through report.
type prober struct {
	cfg     probeConfig
	ctx     context.Context
	running sync.WaitGroup
	probes  map[string]map[string]*probe // name -> address -> probe
	report  func(p *probe, s addrState)
}

func newProber(ctx context.Context, cfg probeConfig, report func(p *probe, s addrState)) *prober {
	return &prober{cfg: cfg, ctx: ctx, probes: map[string]map[string]*probe{}, report: report}
}

// sync makes the probes of name those of addrs under c (none when c is nil)
// and returns the addresses no longer probed, whose state goes with them.
// An address whose check changed stays down until the new check finds it
// up: editing a check puts no dead backend back. It does not wait for
// stopped probes: one may be waiting for the lock its caller holds.
func (pr *prober) sync(name string, c *schema.Check, addrs []string, states map[string]addrState) (gone []string) {
	have := pr.probes[name]
	want := map[string]bool{}
	if c != nil {
		for _, a := range addrs {
			want[a] = true
		}
	}
	for addr, p := range have {
		if !want[addr] || p.check != *c {
			p.cancel()
			delete(have, addr)
		}
		if !want[addr] {
			gone = append(gone, addr)
		}
	}
	for addr := range want {
		if have[addr] != nil {
			continue
		}
		if have == nil {
			have = map[string]*probe{}
			pr.probes[name] = have
		}
		ctx, cancel := context.WithCancel(pr.ctx)
		p := &probe{name: name, addr: addr, check: *c, cancel: cancel}
		if states[addr] == stateDown {
			p.start = stateDown
		}
		have[addr] = p
		pr.running.Go(func() { pr.run(ctx, p) })
	}
	if len(have) == 0 {
		delete(pr.probes, name)
	}
	return gone
}

// current reports whether p is still the probe of its address.
func (pr *prober) current(p *probe) bool { return pr.probes[p.name][p.addr] == p }

// wait waits for every probe to end, once the context they run in is done.
func (pr *prober) wait() { pr.running.Wait() }

// run probes p's address every interval. The address is up after rise
// successes in a row, down after fall failures in a row, and unknown until
// either; each change is reported.
func (pr *prober) run(ctx context.Context, p *probe) {
	try := probeFunc(p, pr.cfg.timeout)
	t := time.NewTicker(pr.cfg.interval)
	defer t.Stop()
	state := p.start
	var oks, fails int
	for {
		start := time.Now()
		ok := try(ctx)
		if ctx.Err() != nil {
			return
		}
		probeSeconds.WithLabelValues(p.check.Scheme, result(ok)).Observe(time.Since(start).Seconds())
		if ok {
			oks, fails = oks+1, 0
		} else {
			oks, fails = 0, fails+1
		}
		switch {
		case state != stateUp && oks >= pr.cfg.rise:
			state = stateUp
			pr.report(p, state)
		case state != stateDown && fails >= pr.cfg.fall:
			state = stateDown
			pr.report(p, state)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func result(ok bool) string {
	if ok {
		return "up"
	}
	return "down"
}

// probeFunc returns the function that probes p's address once: a TCP connect,
// or an HTTP GET that must answer 2xx or 3xx.
func probeFunc(p *probe, timeout time.Duration) func(context.Context) bool {
	hostport := net.JoinHostPort(p.addr, p.check.Port)
	if p.check.Scheme == "tcp" {
		return func(ctx context.Context) bool {
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			var d net.Dialer
			conn, err := d.DialContext(ctx, "tcp", hostport)
			if err != nil {
				return false
			}
			conn.Close()
			return true
		}
	}
	host := strings.TrimSuffix(p.name, ".")
	client := &http.Client{
		Transport: &http.Transport{
			// A fresh connection per probe, as a new client would make; no
			// proxy from the environment.
			DisableKeepAlives: true,
			// Backends are probed by address, which their certificates
			// seldom name: the probe asks whether the service answers, not
			// who it is.
			TLSClientConfig: &tls.Config{ServerName: host, InsecureSkipVerify: true},
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	u := p.check.Scheme + "://" + hostport + p.check.Path
	return func(ctx context.Context) bool {
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return false
		}
		req.Host = host
		req.Header.Set("User-Agent", "coredns-bluegreen-check")
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	}
}

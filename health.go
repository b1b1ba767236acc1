package bluegreen

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// check is how to probe each address of a name: the value of its check key,
// tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH.
type check struct {
	raw    string
	scheme string
	port   string
	path   string // with the query, for http and https
}

func parseCheck(s string) (check, error) {
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" || u.User != nil || u.Fragment != "" {
		return check{}, fmt.Errorf("%q is not a check, want tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH", s)
	}
	if u.Scheme != "tcp" && u.Scheme != "http" && u.Scheme != "https" {
		return check{}, fmt.Errorf("check %q: scheme %q is not tcp, http or https", s, u.Scheme)
	}
	if u.Hostname() != "" {
		return check{}, fmt.Errorf("check %q names a host; leave it out (%s://:%s), each address of the name is probed", s, u.Scheme, u.Port())
	}
	if p, err := strconv.Atoi(u.Port()); err != nil || p < 1 || p > 65535 {
		return check{}, fmt.Errorf("check %q: want a port from 1 to 65535", s)
	}
	c := check{raw: s, scheme: u.Scheme, port: u.Port()}
	if u.Scheme == "tcp" {
		if u.Path != "" || u.RawQuery != "" {
			return check{}, fmt.Errorf("check %q: a tcp check takes no path", s)
		}
		return c, nil
	}
	c.path = u.RequestURI()
	return c, nil
}

// checkConfig is the Corefile's settings for checks.
type checkConfig struct {
	interval time.Duration
	timeout  time.Duration
	rise     int // consecutive successes that bring a down address up
	fall     int // consecutive failures that take an up address down
	failover bool
}

var defaultChecks = checkConfig{interval: 2 * time.Second, timeout: time.Second, rise: 2, fall: 3, failover: true}

// without returns t without the addresses in down, and whether any address
// is left. When none is, it returns t whole: checks never empty an answer.
func (t target) without(down map[string]bool) (target, bool) {
	if len(down) == 0 || t.cname != "" {
		return t, true
	}
	keep := func(ips []net.IP) []net.IP {
		var up []net.IP
		for _, ip := range ips {
			if !down[ip.String()] {
				up = append(up, ip)
			}
		}
		return up
	}
	f := target{raw: t.raw, a: keep(t.a), aaaa: keep(t.aaaa)}
	if len(f.a)+len(f.aaaa) == 0 {
		return t, false
	}
	return f, true
}

// addresses lists t's addresses as strings, the form checks key them by.
func (t target) addresses() []string {
	out := make([]string, 0, len(t.a)+len(t.aaaa))
	for _, ip := range t.a {
		out = append(out, ip.String())
	}
	for _, ip := range t.aaaa {
		out = append(out, ip.String())
	}
	return out
}

// A probe checks one address of one name, from when the name is loaded
// until the address or the check goes away.
type probe struct {
	name, addr string
	check      check
	wasDown    bool // the address's state when the probe started
	cancel     context.CancelFunc
}

// checker runs the probes. The watcher starts and stops them under its lock;
// each probe reports a change of its address's state through report.
type checker struct {
	cfg     checkConfig
	ctx     context.Context
	running sync.WaitGroup
	probes  map[string]map[string]*probe // name -> address -> probe
	report  func(p *probe, up bool)
}

func newChecker(ctx context.Context, cfg checkConfig, report func(p *probe, up bool)) *checker {
	return &checker{cfg: cfg, ctx: ctx, probes: map[string]map[string]*probe{}, report: report}
}

// sync makes the probes of name those of addrs under c (none when c is
// unset) and returns the addresses no longer probed, whose state is gone
// with them. An address whose check changed keeps its state (down) until
// the new check finds otherwise: editing a check puts no dead backend back.
// It does not wait for stopped probes: one may be waiting for the lock its
// caller holds.
func (ch *checker) sync(name string, c check, addrs []string, down map[string]bool) (gone []string) {
	have := ch.probes[name]
	want := map[string]bool{}
	if c.raw != "" {
		for _, a := range addrs {
			want[a] = true
		}
	}
	for addr, p := range have {
		if !want[addr] || p.check != c {
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
			ch.probes[name] = have
		}
		ctx, cancel := context.WithCancel(ch.ctx)
		p := &probe{name: name, addr: addr, check: c, wasDown: down[addr], cancel: cancel}
		have[addr] = p
		ch.running.Go(func() { ch.run(ctx, p) })
	}
	if len(have) == 0 {
		delete(ch.probes, name)
	}
	return gone
}

// current reports whether p is still the probe of its address.
func (ch *checker) current(p *probe) bool { return ch.probes[p.name][p.addr] == p }

// wait waits for every probe to end, once the context they run in is done.
func (ch *checker) wait() { ch.running.Wait() }

// run probes p's address every interval. An address starts up (or down, if
// it was down under the check before), goes down after fall failures in a
// row and comes back after rise successes.
func (ch *checker) run(ctx context.Context, p *probe) {
	try := prober(p, ch.cfg.timeout)
	t := time.NewTicker(ch.cfg.interval)
	defer t.Stop()
	up, streak := !p.wasDown, 0
	for {
		start := time.Now()
		ok := try(ctx)
		if ctx.Err() != nil {
			return
		}
		probeSeconds.WithLabelValues(p.check.scheme, result(ok)).Observe(time.Since(start).Seconds())
		if ok == up {
			streak = 0
		} else if streak++; (up && streak >= ch.cfg.fall) || (!up && streak >= ch.cfg.rise) {
			up, streak = ok, 0
			ch.report(p, up)
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

// prober returns the function that probes p's address once: a TCP connect,
// or an HTTP GET that must answer 2xx or 3xx.
func prober(p *probe, timeout time.Duration) func(context.Context) bool {
	hostport := net.JoinHostPort(p.addr, p.check.port)
	if p.check.scheme == "tcp" {
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
	u := p.check.scheme + "://" + hostport + p.check.path
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

package ctl

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// A smokeTarget is one address of the colour a release brings in, of one
// of its names: smoke tests go there directly, never through DNS, so that
// the colour is tested before any client is sent to it.
type smokeTarget struct{ name, address string }

// smokeTargets lists every address of colour c of every name; a hostname
// target is one address, the hostname.
func smokeTargets(ns map[string]*name, names []string, c schema.Colour) []smokeTarget {
	var out []smokeTarget
	for _, n := range names {
		t := ns[n].view(schema.DefaultMaxTTL).targets[c]
		addrs := t.Addresses()
		if t.CNAME != "" {
			addrs = []string{strings.TrimSuffix(t.CNAME, ".")}
		}
		for _, a := range addrs {
			out = append(out, smokeTarget{name: n, address: a})
		}
	}
	return out
}

// expand is the test's URL for one address of a name: {address} (an IPv6
// one in brackets) and {name} replaced.
func (t *smokeTest) expand(address, name string) string {
	if strings.Contains(address, ":") {
		address = "[" + address + "]"
	}
	return strings.NewReplacer("{address}", address, "{name}", name).Replace(t.URL)
}

// smokeParallel bounds the smoke tests run at once.
const smokeParallel = 8

// runSmoke runs every test against every target, and returns how many
// passed and what failed, in the plan's order.
func runSmoke(ctx context.Context, tests []smokeTest, targets []smokeTarget) (passed int, failures []string) {
	results := make([]error, len(tests)*len(targets))
	sem := make(chan struct{}, smokeParallel)
	var wg sync.WaitGroup
	for i := range tests {
		for j, tg := range targets {
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				results[i*len(targets)+j] = tests[i].run(ctx, tg)
			})
		}
	}
	wg.Wait()
	for k, err := range results {
		if err == nil {
			passed++
			continue
		}
		t, tg := tests[k/len(targets)], targets[k%len(targets)]
		failures = append(failures, fmt.Sprintf("smoke test %q against %s (%s): %v", t.Name, tg.address, tg.name, err))
	}
	return passed, failures
}

// smokeTimeout is how long a smoke test may take without a
// max_response_time_ms of its own.
const smokeTimeout = 10 * time.Second

// run runs the test once against one address: the request goes to the
// address, with the name as Host header and as TLS server name, as a
// client of the name would send it.
func (t *smokeTest) run(ctx context.Context, tg smokeTarget) error {
	timeout := smokeTimeout
	if t.MaxResponseTimeMS > 0 {
		timeout = time.Duration(t.MaxResponseTimeMS)*time.Millisecond + time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := t.expand(tg.address, tg.name)
	var body io.Reader
	if t.Body != "" {
		body = strings.NewReader(t.Body)
	}
	req, err := http.NewRequestWithContext(ctx, t.Method, u, body)
	if err != nil {
		return err
	}
	req.Host = tg.name
	for k, v := range t.Headers {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{ServerName: tg.name, MinVersion: tls.VersionTLS12},
		DisableKeepAlives: true,
		Proxy:             nil, // the address given, never a proxy
		DialContext:       (&net.Dialer{}).DialContext,
	}
	defer tr.CloseIdleConnections()
	start := time.Now()
	resp, err := (&http.Client{Transport: tr, CheckRedirect: noRedirects}).Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %s", t.Method, u, shortNetError(err))
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	took := time.Since(start)
	switch {
	case err != nil:
		return fmt.Errorf("%s %s: reading the body: %s", t.Method, u, shortNetError(err))
	case resp.StatusCode != t.ExpectStatus:
		return fmt.Errorf("%s %s: status %d, want %d", t.Method, u, resp.StatusCode, t.ExpectStatus)
	case t.ExpectBodyContains != "" && !strings.Contains(string(got), t.ExpectBodyContains):
		return fmt.Errorf("%s %s: the body does not contain %q", t.Method, u, t.ExpectBodyContains)
	case t.MaxResponseTimeMS > 0 && took > time.Duration(t.MaxResponseTimeMS)*time.Millisecond:
		return fmt.Errorf("%s %s: took %d ms, over max_response_time_ms %d", t.Method, u, took.Milliseconds(), t.MaxResponseTimeMS)
	}
	return nil
}

// noRedirects makes a redirect the answer tested: a smoke test that
// expects 200 and gets 302 fails, as the client would not get the page.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

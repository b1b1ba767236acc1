package bluegreen

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestParseCheck(t *testing.T) {
	good := map[string]check{
		"tcp://:5432":              {raw: "tcp://:5432", scheme: "tcp", port: "5432"},
		"http://:8080/healthz":     {raw: "http://:8080/healthz", scheme: "http", port: "8080", path: "/healthz"},
		"https://:8443/ready?deep": {raw: "https://:8443/ready?deep", scheme: "https", port: "8443", path: "/ready?deep"},
		"http://:80":               {raw: "http://:80", scheme: "http", port: "80", path: "/"},
	}
	for s, want := range good {
		if got, err := parseCheck(s); err != nil || got != want {
			t.Errorf("parseCheck(%q) = %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", "tcp://10.0.0.1:80", "udp://:53", "tcp://:0", "tcp://:65536", "tcp://:80/x", "http://:http/", "http://", ":8080", "http://u:p@:80/"} {
		if c, err := parseCheck(s); err == nil {
			t.Errorf("parseCheck(%q) = %+v, want an error", s, c)
		}
	}
}

func TestWithoutDownAddresses(t *testing.T) {
	tg, _ := parseTarget("10.0.1.1,10.0.1.2,2001:db8::1")
	got, up := tg.without(map[string]bool{"10.0.1.2": true, "2001:db8::1": true})
	if !up || got.raw != tg.raw || len(got.a) != 1 || got.a[0].String() != "10.0.1.1" || len(got.aaaa) != 0 {
		t.Errorf("without 10.0.1.2 and 2001:db8::1: %+v, %v", got, up)
	}
	got, up = tg.without(map[string]bool{"10.0.1.1": true, "10.0.1.2": true, "2001:db8::1": true})
	if up || len(got.a) != 2 || len(got.aaaa) != 1 {
		t.Errorf("all down: %+v, %v; want the whole target, not up", got, up)
	}
}

// A probe takes its address down after fall failures in a row and up again
// after rise successes in a row; shorter runs change nothing.
func TestProbeRiseAndFall(t *testing.T) {
	// The health endpoint answers the script, one status per probe, then 200.
	script := []int{200, 500, 500, 200, 500, 500, 500, 200, 500, 200, 302, 200}
	var mu sync.Mutex
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if n < len(script) {
			w.WriteHeader(script[n])
		}
		n++
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	type change struct {
		probe int // the probe, counted from 1, after which the state changed
		up    bool
	}
	var changes []change
	done := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	ch := newChecker(ctx, checkConfig{interval: time.Millisecond, timeout: time.Second, rise: 3, fall: 3}, func(p *probe, up bool) {
		mu.Lock()
		changes = append(changes, change{n, up})
		mu.Unlock()
		if !up {
			return
		}
		close(done)
	})
	c, err := parseCheck("http://:" + u.Port() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	ch.sync("app.example.org.", c, []string{u.Hostname()}, nil)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no state change back up within 10s")
	}
	cancel()
	ch.wait()
	// Down after the third failure in a row (probe 7), not after two (3);
	// up after the third success in a row (probe 12): 200 then 302 count.
	if want := []change{{7, false}, {12, true}}; !slices.Equal(changes, want) {
		t.Errorf("state changes %+v, want %+v", changes, want)
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
	for path, want := range map[string]bool{"/ready": true, "/missing": false} {
		c, err := parseCheck("https://:" + u.Port() + path)
		if err != nil {
			t.Fatal(err)
		}
		try := prober(&probe{name: "app.example.org.", addr: u.Hostname(), check: c}, time.Second)
		if got := try(context.Background()); got != want {
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
	c, _ := parseCheck("https://:" + u.Port() + "/ready")
	if prober(&probe{name: "app.example.org.", addr: u.Hostname(), check: c}, time.Second)(context.Background()) {
		t.Error("a closed port probed up")
	}
}

// A probe that takes over a down address (its check was edited) starts from
// down, so that it reports the address once it is healthy again.
func TestProbeStartsFromKnownDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	up := make(chan bool, 10)
	ctx, cancel := context.WithCancel(context.Background())
	ch := newChecker(ctx, checkConfig{interval: time.Millisecond, timeout: time.Second, rise: 2, fall: 2}, func(_ *probe, ok bool) { up <- ok })
	c, _ := parseCheck("http://:" + u.Port() + "/")
	ch.sync("app.example.org.", c, []string{u.Hostname()}, map[string]bool{u.Hostname(): true})
	select {
	case ok := <-up:
		if !ok {
			t.Error("reported down; want up")
		}
	case <-time.After(10 * time.Second):
		t.Error("a healthy address that was down was not reported up within 10s")
	}
	cancel()
	ch.wait()
}

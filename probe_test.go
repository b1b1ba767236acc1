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

	"github.com/bluegreen-dns/bluegreen/schema"
)

func TestWithoutDown(t *testing.T) {
	tg, _ := schema.ParseTarget("10.0.1.1,10.0.1.2,2001:db8::1")
	got, allDown, oneUp := withoutDown(tg, map[string]addrState{"10.0.1.2": stateDown, "2001:db8::1": stateDown})
	if allDown || oneUp || got.Raw != tg.Raw || len(got.A) != 1 || got.A[0].String() != "10.0.1.1" || len(got.AAAA) != 0 {
		t.Errorf("without 10.0.1.2 and 2001:db8::1: %+v, all down %v, one up %v", got, allDown, oneUp)
	}
	got, allDown, _ = withoutDown(tg, map[string]addrState{"10.0.1.1": stateDown, "10.0.1.2": stateDown, "2001:db8::1": stateDown})
	if !allDown || len(got.A) != 2 || len(got.AAAA) != 1 {
		t.Errorf("all down: %+v, all down %v; want the whole target", got, allDown)
	}
	if _, _, oneUp := withoutDown(tg, map[string]addrState{"10.0.1.1": stateUp}); !oneUp {
		t.Error("an address found up: not reported")
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
	pr := newProber(ctx, probeConfig{interval: time.Millisecond, timeout: time.Second, rise: 3, fall: 3}, func(p *probe, s addrState) {
		mu.Lock()
		changes = append(changes, change{n, s == stateUp})
		mu.Unlock()
		if s == stateUp {
			close(done)
		}
	})
	c, err := schema.ParseCheck("http://:" + u.Port() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	pr.sync("app.example.org.", &c, []string{u.Hostname()}, nil)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no state change back up within 10s")
	}
	cancel()
	pr.wait()
	// Unknown until then: down after the third failure in a row (probe 7),
	// not after two (3); up after the third success in a row (probe 12):
	// 200 then 302 count.
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
		c, err := schema.ParseCheck("https://:" + u.Port() + path)
		if err != nil {
			t.Fatal(err)
		}
		try := probeFunc(&probe{name: "app.example.org.", addr: u.Hostname(), check: c}, time.Second)
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
	c, _ := schema.ParseCheck("https://:" + u.Port() + "/ready")
	if probeFunc(&probe{name: "app.example.org.", addr: u.Hostname(), check: c}, time.Second)(context.Background()) {
		t.Error("a closed port probed up")
	}
}

// A probe that takes over a down address (its check was edited) starts from
// down, so that it reports the address once it is healthy again.
func TestProbeStartsFromKnownDown(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	up := make(chan addrState, 10)
	ctx, cancel := context.WithCancel(context.Background())
	pr := newProber(ctx, probeConfig{interval: time.Millisecond, timeout: time.Second, rise: 2, fall: 2}, func(_ *probe, s addrState) { up <- s })
	c, _ := schema.ParseCheck("http://:" + u.Port() + "/")
	pr.sync("app.example.org.", &c, []string{u.Hostname()}, map[string]addrState{u.Hostname(): stateDown})
	select {
	case s := <-up:
		if s != stateUp {
			t.Errorf("reported %d; want up", s)
		}
	case <-time.After(10 * time.Second):
		t.Error("a healthy address that was down was not reported up within 10s")
	}
	cancel()
	pr.wait()
}

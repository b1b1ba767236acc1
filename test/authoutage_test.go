package test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// TestAuthEtcdRestart stops etcd with authentication on, long enough for
// the plugin's etcd client to give up its watch and read with the token it
// had, and starts it again on the same data: a restart forgets every simple
// token. The plugin must say its answers are stale while etcd is gone, name
// why it makes a new client, and answer a flip made once etcd is back
// within seconds, not keep the old answers with a dead token.
func TestAuthEtcdRestart(t *testing.T) {
	outage := 10 * time.Second // longer than replaceAfter, the plugin's 5s
	if d, err := time.ParseDuration(os.Getenv("AUTH_OUTAGE")); err == nil {
		outage = d
	}
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	const password, rootPassword = "Read0nly-Passw0rd", "r00t-Passw0rd"
	enableAuth(t, etcd, password, rootPassword)
	logs := captureLog(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "credentials coredns "+password))
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.1.100"}) {
		t.Fatalf("before the outage: %v", got)
	}

	down := time.Now()
	etcd.stop()
	waitFor(t, "the TXT state saying the answers are stale", 30*time.Second, func() bool {
		return strings.Contains(stateTXT(t, udp, "app.example.org"), `"stale_reason=no word from etcd at [`)
	})
	// The outage itself: how long etcd stays down is the fault under test.
	time.Sleep(time.Until(down.Add(outage)))
	if txt := stateTXT(t, udp, "app.example.org"); !strings.Contains(txt, `"stale_reason=no word from etcd at [`) {
		t.Errorf("TXT state at the end of the outage: %s, want stale", txt)
	}

	etcd.start(t)
	up := time.Now()
	// A new root client: logging in (bcrypt) takes seconds under -race on a
	// busy machine.
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.endpoint}, Username: "root", Password: rootPassword, DialTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := root.Put(ctx, "/bluegreen/app.example.org/active", "green"); err != nil {
		t.Fatal(err)
	}
	put := time.Now()
	took := waitFor(t, "the flip made once etcd was back", 15*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.2.100"})
	})
	t.Logf("etcd down %v; the flip was answered %v after the put returned (%v after etcd was up; the put took %v)",
		up.Sub(down).Round(time.Millisecond), took.Round(time.Millisecond), time.Since(up).Round(time.Millisecond), put.Sub(up).Round(time.Millisecond))
	waitFor(t, "the answers current again", 10*time.Second, func() bool {
		return !strings.Contains(stateTXT(t, udp, "app.example.org"), "stale")
	})
	if !strings.Contains(logs.String(), "making a new etcd client for /bluegreen/") {
		t.Errorf("no log line saying why the plugin made a new etcd client:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "heartbeat of /bluegreen/: reading etcd at [") {
		t.Errorf("no log line saying why the heartbeat failed:\n%s", logs.String())
	}
}

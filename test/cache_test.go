package test

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/miekg/dns"
)

// TestCacheInFront serves managed names from a server block with cache, as
// a resolver's Corefile has it: bluegreen sits before cache, so a flip is
// answered at once and the canary split holds per client network, while
// cache keeps serving what bluegreen passes on.
func TestCacheInFront(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "fallthrough", "cache 30", "hosts {\n\t\t10.9.9.9 other.example.org\n\t}"))
	blueA, greenA := []string{"A 10.0.1.100"}, []string{"A 10.0.2.100"}
	for range 2 { // the second time from cache, were it in front
		if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, blueA) {
			t.Fatalf("before the flip: %v", got)
		}
	}
	// What bluegreen passes on is cached: the TTL counts down.
	first := query(t, "udp", udp, "other.example.org", dns.TypeA)
	waitFor(t, "a cached answer from hosts", 5*time.Second, func() bool {
		m := query(t, "udp", udp, "other.example.org", dns.TypeA)
		return len(m.Answer) == 1 && m.Answer[0].Header().Ttl < first.Answer[0].Header().Ttl
	})

	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	took := waitFor(t, "the flip, with cache 30 in the block", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), greenA)
	})
	t.Logf("with cache 30 in the block, the flip answered %v after the put returned", took)

	etcd.put(t, "/bluegreen/app.example.org/active", "blue")
	etcd.put(t, "/bluegreen/app.example.org/canary", "30")
	waitFor(t, "canary=30 in the TXT state", 10*time.Second, func() bool {
		return strings.Contains(stateTXT(t, udp, "app.example.org"), `"active=blue"`) && strings.Contains(stateTXT(t, udp, "app.example.org"), `"canary=30"`)
	})
	const clients = 200
	greens := 0
	for i := range clients {
		n := netip.AddrFrom4([4]byte{198, 18, byte(i), 0})
		var got []string
		for range 2 {
			m := queryFrom(t, udp, "app.example.org", n)
			if again := answers(m); got != nil && !slices.Equal(again, got) {
				t.Fatalf("client %s got %v, then %v", n, got, again)
			}
			got = answers(m)
		}
		if slices.Equal(got, greenA) {
			greens++
		}
	}
	t.Logf("canary 30 with cache 30 in the block: %d of %d client networks answered green", greens, clients)
	if share := 100 * greens / clients; share < 25 || share > 35 {
		t.Errorf("canary 30: %d%% of client networks got green, want 30 ± 5", share)
	}
}

// TestCacheBeforeBluegreenWarns builds the plugin order with cache in front
// of bluegreen, as a plugin.cfg that lists bluegreen too late does: the
// plugin says so at startup.
func TestCacheBeforeBluegreenWarns(t *testing.T) {
	saved := dnsserver.Directives
	t.Cleanup(func() { dnsserver.Directives = saved })
	order := slices.DeleteFunc(slices.Clone(saved), func(d string) bool { return d == "bluegreen" })
	dnsserver.Directives = slices.Insert(slices.Clone(order), slices.Index(order, "hosts"), "bluegreen")

	etcd := startEtcd(t)
	logs := captureLog(t)
	startCoreDNS(t, corefile(etcd.endpoint, ""))
	if strings.Contains(logs.String(), "cache sits before bluegreen") {
		t.Error("warned without cache in the block")
	}
	startCoreDNS(t, corefile(etcd.endpoint, "", "cache 30"))
	if !strings.Contains(logs.String(), "cache sits before bluegreen in this build's plugin order") {
		t.Errorf("no warning with cache in front:\n%s", logs)
	}
	dnsserver.Directives = bluegreen.InsertDirective(order)
	before := strings.Count(logs.String(), "cache sits before bluegreen")
	startCoreDNS(t, corefile(etcd.endpoint, "", "cache 30"))
	if strings.Count(logs.String(), "cache sits before bluegreen") != before {
		t.Error("warned with bluegreen before cache")
	}
}

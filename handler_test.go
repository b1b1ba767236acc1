package bluegreen

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/pkg/upstream"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// testPlugin serves example.org with the given keys (PATH=VALUE, under
// /bluegreen/) as if a list of etcd found them at revision 7. Its next
// plugin answers REFUSED, so that a test sees when a query was passed on.
func testPlugin(t testing.TB, kvs ...string) *BlueGreen {
	t.Helper()
	bg := &BlueGreen{Zones: []string{"example.org."}, ttl: 30, preview: defaultPreview, Next: test.NextHandler(dns.RcodeRefused, nil),
		upstream: upstream.New(), canaryV4: defaultCanaryV4, canaryV6: defaultCanaryV6}
	bg.nameServers = nameServersByZone(bg.Zones, nil, nil)
	bg.store = testStore(t, &bg.snap)
	bg.store.replace(keyValues(7, kvs...), 7)
	return bg
}

// testStore is a store of /bluegreen/ for example.org, with failover on and
// no answer series of each name's own (name_metrics 0).
// Its probes reach no verdict of their own (tests report probe results
// themselves) and stop at the end of the test.
func testStore(t testing.TB, snap *atomic.Pointer[snapshot]) *store {
	s := newStore("/bluegreen/", []string{"example.org."}, policy{ttl: 30, maxTTL: schema.DefaultMaxTTL, failover: true}, newProber(),
		probeConfig{interval: time.Hour, timeout: 100 * time.Millisecond, rise: 100, fall: 100}, 0, snap)
	t.Cleanup(s.stopProbes)
	return s
}

// report has the store learn that addr of name is in state st, as if its
// probe found it.
func report(s *store, name, addr string, st addrState) {
	s.mu.Lock()
	i := slices.IndexFunc(s.names[name].probes, func(k probeKey) bool { return k.ip().String() == addr })
	k := s.names[name].probes[i]
	s.mu.Unlock()
	s.probes.mu.Lock()
	p := s.probes.probes[k]
	was := p.state
	p.state = st
	s.probes.probes[k] = p
	s.probes.mu.Unlock()
	s.probed(k, was)
}

// keyValues turns PATH=VALUE pairs under /bluegreen/ into keys at revision rev.
func keyValues(rev int64, kvs ...string) []keyValue {
	out := make([]keyValue, 0, len(kvs))
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		out = append(out, keyValue{key: "/bluegreen/" + k, value: v, rev: rev})
	}
	return out
}

var testKeys = []string{
	"app.example.org/active=blue",
	"app.example.org/blue=10.0.1.100,10.0.1.101,2001:db8::100",
	"app.example.org/green=app-v2.example.net",
	"app.example.org/ttl=60",
	"v6.example.org/active=green",
	"v6.example.org/green=2001:db8::2",
	"example.org/active=blue", // a name at the zone apex
	"example.org/blue=10.0.0.1",
	"idle.example.org/blue=10.0.3.1", // not served: no active key
	"half.example.org/active=green",  // not served: green has no target
	"half.example.org/blue=10.0.4.1",
}

const soa = "example.org.	30	IN	SOA	ns.dns.example.org. hostmaster.example.org. 7 86400 7200 3600000 300"

func TestServeDNS(t *testing.T) {
	bg := testPlugin(t, testKeys...)
	bg.Zones = append(bg.Zones, "empty.test.")
	bg.nameServers = nameServersByZone(bg.Zones, nil, nil)
	tests := []test.Case{
		{Qname: "app.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("app.example.org.	60	IN	A	10.0.1.100"),
			test.A("app.example.org.	60	IN	A	10.0.1.101"),
		}},
		{Qname: "app.example.org.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("app.example.org.	60	IN	AAAA	2001:db8::100"),
		}},
		// NOERROR without data: the name exists, but not with this type.
		{Qname: "app.example.org.", Qtype: dns.TypeMX, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "v6.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "v6.example.org.", Qtype: dns.TypeAAAA, Answer: []dns.RR{
			test.AAAA("v6.example.org.	30	IN	AAAA	2001:db8::2"),
		}},
		// The name's case as asked.
		{Qname: "App.Example.ORG.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("App.Example.ORG.	60	IN	A	10.0.1.100"),
			test.A("App.Example.ORG.	60	IN	A	10.0.1.101"),
		}},
		// Previews answer that colour whatever is active; a hostname is a
		// CNAME for any type.
		{Qname: "green.app.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.CNAME("green.app.example.org.	60	IN	CNAME	app-v2.example.net."),
		}},
		{Qname: "green.app.example.org.", Qtype: dns.TypeTXT, Answer: []dns.RR{
			test.CNAME("green.app.example.org.	60	IN	CNAME	app-v2.example.net."),
		}},
		{Qname: "blue.app.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("blue.app.example.org.	60	IN	A	10.0.1.100"),
			test.A("blue.app.example.org.	60	IN	A	10.0.1.101"),
		}},
		// blue.v6 has no target: the name exists, with no data.
		{Qname: "blue.v6.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "_bluegreen.app.example.org.", Qtype: dns.TypeTXT, Answer: []dns.RR{
			test.TXT(`_bluegreen.app.example.org.	0	IN	TXT	"active=blue" "blue=10.0.1.100,10.0.1.101,2001:db8::100" "green=app-v2.example.net" "ttl=60" "canary=0" "revision=7" "synced=7"`),
		}},
		{Qname: "_bluegreen.app.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("example.org.	30	IN	A	10.0.0.1"),
		}},
		// A name at the apex still has the zone's SOA.
		{Qname: "example.org.", Qtype: dns.TypeSOA, Answer: []dns.RR{test.SOA(soa)}},
		// A name that is not served exists, without data, and tells why in
		// its TXT state.
		{Qname: "idle.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "blue.idle.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "_bluegreen.idle.example.org.", Qtype: dns.TypeTXT, Answer: []dns.RR{
			test.TXT(`_bluegreen.idle.example.org.	0	IN	TXT	"active=" "blue=10.0.3.1" "green=" "ttl=30" "canary=0" "revision=7" "synced=7" "not_served=no active key"`),
		}},
		{Qname: "_bluegreen.half.example.org.", Qtype: dns.TypeTXT, Answer: []dns.RR{
			test.TXT(`_bluegreen.half.example.org.	0	IN	TXT	"active=green" "blue=10.0.4.1" "green=" "ttl=30" "canary=0" "revision=7" "synced=7" "not_served=active: green has no target" "ignored=active: green has no target"`),
		}},
		{Qname: "other.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "red.app.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
		// The apex of a zone with no name there exists, with an SOA.
		{Qname: "empty.test.", Qtype: dns.TypeSOA, Answer: []dns.RR{
			test.SOA("empty.test.	30	IN	SOA	ns.dns.empty.test. hostmaster.empty.test. 7 86400 7200 3600000 300"),
		}},
		{Qname: "empty.test.", Qtype: dns.TypeA, Ns: []dns.RR{
			test.SOA("empty.test.	30	IN	SOA	ns.dns.empty.test. hostmaster.empty.test. 7 86400 7200 3600000 300"),
		}},
		// Outside the zones: passed on.
		{Qname: "app.example.net.", Qtype: dns.TypeA, Rcode: dns.RcodeRefused},
	}
	for _, tc := range tests {
		t.Run(dns.TypeToString[tc.Qtype]+" "+tc.Qname, func(t *testing.T) {
			rec := dnstest.NewRecorder(&test.ResponseWriter{})
			code, err := bg.ServeDNS(context.Background(), rec, tc.Msg())
			if err != nil {
				t.Fatal(err)
			}
			if tc.Rcode == dns.RcodeRefused {
				if code != dns.RcodeRefused {
					t.Fatalf("rcode %d, want the query passed on to the next plugin", code)
				}
				return
			}
			if rec.Msg == nil {
				t.Fatalf("no response written (rcode %d)", code)
			}
			if !rec.Msg.Authoritative {
				t.Error("answer is not authoritative")
			}
			if err := test.SortAndCheck(rec.Msg, tc); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestServeDNSFallthrough(t *testing.T) {
	bg := testPlugin(t, testKeys...)
	bg.Fall = fall.Root
	for _, tc := range []struct {
		qname    string
		qtype    uint16
		passedOn bool
	}{
		{"app.example.org.", dns.TypeA, false},
		{"blue.app.example.org.", dns.TypeA, false},
		{"other.example.org.", dns.TypeA, true},
		{"example.net.", dns.TypeA, true},
		{"idle.example.org.", dns.TypeA, true},               // not served
		{"_bluegreen.idle.example.org.", dns.TypeTXT, false}, // but its state is
		{"example.org.", dns.TypeA, false},                   // a managed name at the apex
		{"example.org.", dns.TypeSOA, true},                  // but the zone's own records are the next plugin's
		{"example.org.", dns.TypeNS, true},
	} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		code, _ := bg.ServeDNS(context.Background(), rec, test.Case{Qname: tc.qname, Qtype: tc.qtype}.Msg())
		if got := code == dns.RcodeRefused; got != tc.passedOn {
			t.Errorf("%s %s: passed on = %v, want %v", tc.qname, dns.TypeToString[tc.qtype], got, tc.passedOn)
		}
	}
}

func TestServeDNSBeforeFirstSync(t *testing.T) {
	bg := &BlueGreen{Zones: []string{"example.org."}, ttl: 30, Next: test.NextHandler(dns.RcodeRefused, nil),
		upstream: upstream.New(), canaryV4: defaultCanaryV4, canaryV6: defaultCanaryV6}
	if bg.Ready() {
		t.Error("Ready before the first list")
	}
	q := test.Case{Qname: "app.example.org.", Qtype: dns.TypeA}.Msg()
	if code, _ := bg.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), q); code != dns.RcodeServerFailure {
		t.Errorf("rcode %d before the first list, want SERVFAIL", code)
	}
	bg.Fall = fall.Root
	if code, _ := bg.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), q); code != dns.RcodeRefused {
		t.Errorf("rcode %d before the first list with fallthrough, want passed on", code)
	}
}

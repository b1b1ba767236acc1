package bluegreen

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/pkg/upstream"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// testPlugin serves example.org with the given keys (PATH=VALUE, under
// /bluegreen/) as if etcd held them at revision 7. Its next plugin answers
// REFUSED, so that a test sees when a query was passed on.
func testPlugin(t testing.TB, kvs ...string) *BlueGreen {
	t.Helper()
	bg := &BlueGreen{Zones: []string{"example.org."}, ttl: 30, Next: test.NextHandler(dns.RcodeRefused, nil),
		upstream: upstream.New(), canaryV4: defaultCanaryV4, canaryV6: defaultCanaryV6}
	m := newModel("/bluegreen/", bg.Zones, bg.ttl)
	changes := map[string]*entry{}
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		if name := m.put("/bluegreen/"+k, v, 7); name != "" {
			changes[name] = nil
		}
	}
	for name := range changes {
		changes[name] = m.entry(name)
	}
	bg.snap.Store((&snapshot{}).with(7, changes))
	return bg
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
}

const soa = "example.org.	30	IN	SOA	ns.dns.example.org. hostmaster.example.org. 7 7200 1800 86400 30"

func TestServeDNS(t *testing.T) {
	bg := testPlugin(t, testKeys...)
	bg.Zones = append(bg.Zones, "empty.test.")
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
			test.TXT(`_bluegreen.app.example.org.	0	IN	TXT	"active=blue" "blue=10.0.1.100,10.0.1.101,2001:db8::100" "green=app-v2.example.net" "ttl=60" "canary=0" "revision=7"`),
		}},
		{Qname: "_bluegreen.app.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "example.org.", Qtype: dns.TypeA, Answer: []dns.RR{
			test.A("example.org.	30	IN	A	10.0.0.1"),
		}},
		{Qname: "other.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "red.app.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
		// The apex of a zone with no name there exists, with an SOA.
		{Qname: "empty.test.", Qtype: dns.TypeSOA, Answer: []dns.RR{
			test.SOA("empty.test.	30	IN	SOA	ns.dns.empty.test. hostmaster.empty.test. 7 7200 1800 86400 30"),
		}},
		{Qname: "empty.test.", Qtype: dns.TypeA, Ns: []dns.RR{
			test.SOA("empty.test.	30	IN	SOA	ns.dns.empty.test. hostmaster.empty.test. 7 7200 1800 86400 30"),
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
		passedOn bool
	}{
		{"app.example.org.", false},
		{"blue.app.example.org.", false},
		{"other.example.org.", true},
		{"example.net.", true},
	} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		code, _ := bg.ServeDNS(context.Background(), rec, test.Case{Qname: tc.qname, Qtype: dns.TypeA}.Msg())
		if got := code == dns.RcodeRefused; got != tc.passedOn {
			t.Errorf("%s: passed on = %v, want %v", tc.qname, got, tc.passedOn)
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

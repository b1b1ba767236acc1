package bluegreen

import (
	"context"
	"net"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// The zone is one DNS checkers accept: SOA and NS at the apex, the name
// server's addresses, empty non-terminals, and no transfers.
func TestServeDNSZone(t *testing.T) {
	bg := testPlugin(t, append(testKeys, "app.deep.sub.example.org/active=blue", "app.deep.sub.example.org/blue=10.0.9.1")...)
	bg.nameServers = nameServersByZone(bg.Zones, nil, []net.IP{net.ParseIP("192.0.2.53"), net.ParseIP("2001:db8::53")})
	tests := []test.Case{
		{Qname: "example.org.", Qtype: dns.TypeNS,
			Answer: []dns.RR{test.NS("example.org.	30	IN	NS	ns.dns.example.org.")},
			Extra: []dns.RR{
				test.A("ns.dns.example.org.	30	IN	A	192.0.2.53"),
				test.AAAA("ns.dns.example.org.	30	IN	AAAA	2001:db8::53"),
			}},
		{Qname: "ns.dns.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("ns.dns.example.org.	30	IN	A	192.0.2.53")}},
		{Qname: "ns.dns.example.org.", Qtype: dns.TypeAAAA, Answer: []dns.RR{test.AAAA("ns.dns.example.org.	30	IN	AAAA	2001:db8::53")}},
		{Qname: "ns.dns.example.org.", Qtype: dns.TypeMX, Ns: []dns.RR{test.SOA(soa)}},
		// Names between a managed name, or a name server, and the apex
		// exist, with no data.
		{Qname: "dns.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "sub.example.org.", Qtype: dns.TypeA, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "deep.sub.example.org.", Qtype: dns.TypeTXT, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "blue.sub.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "_bluegreen.deep.sub.example.org.", Qtype: dns.TypeTXT, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
		{Qname: "other.sub.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA(soa)}},
		// ANY gets one record (RFC 8482), not every one.
		{Qname: "app.example.org.", Qtype: dns.TypeANY, Answer: []dns.RR{test.HINFO(`app.example.org.	60	IN	HINFO	"RFC8482" ""`)}},
		{Qname: "green.app.example.org.", Qtype: dns.TypeANY, Answer: []dns.RR{test.CNAME("green.app.example.org.	60	IN	CNAME	app-v2.example.net.")}},
		{Qname: "example.org.", Qtype: dns.TypeANY, Answer: []dns.RR{test.HINFO(`example.org.	30	IN	HINFO	"RFC8482" ""`)}},
	}
	for _, tc := range tests {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if _, err := bg.ServeDNS(context.Background(), rec, tc.Msg()); err != nil || rec.Msg == nil {
			t.Fatalf("%s %s: %v, reply %v", tc.Qname, dns.TypeToString[tc.Qtype], err, rec.Msg)
		}
		if err := test.SortAndCheck(rec.Msg, tc); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
	}

	// The empty non-terminals go with the last name below them.
	bg.store.apply([]keyValue{{key: "/bluegreen/app.deep.sub.example.org/active", rev: 9, deleted: true}, {key: "/bluegreen/app.deep.sub.example.org/blue", rev: 9, deleted: true}})
	for _, qname := range []string{"sub.example.org.", "deep.sub.example.org.", "app.deep.sub.example.org."} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		bg.ServeDNS(context.Background(), rec, test.Case{Qname: qname, Qtype: dns.TypeA}.Msg())
		if rec.Msg.Rcode != dns.RcodeNameError {
			t.Errorf("%s after its last name went: %s, want NXDOMAIN", qname, dns.RcodeToString[rec.Msg.Rcode])
		}
	}
}

// Transfers and NOTIFY are not answered like queries; with fallthrough a
// plugin after this one, which may hold the zone, gets them.
func TestServeDNSTransferAndNotify(t *testing.T) {
	bg := testPlugin(t, testKeys...)
	axfr := test.Case{Qname: "example.org.", Qtype: dns.TypeAXFR}.Msg()
	ixfr := test.Case{Qname: "example.org.", Qtype: dns.TypeIXFR}.Msg()
	notify := test.Case{Qname: "example.org.", Qtype: dns.TypeSOA}.Msg()
	notify.Opcode = dns.OpcodeNotify
	for _, tc := range []struct {
		q    *dns.Msg
		want int
	}{{axfr, dns.RcodeRefused}, {ixfr, dns.RcodeRefused}, {notify, dns.RcodeNotImplemented}} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		if code, _ := bg.ServeDNS(context.Background(), rec, tc.q); code != tc.want || rec.Msg != nil {
			t.Errorf("%s opcode %d: rcode %d, written %v; want %s for the server to write", dns.TypeToString[tc.q.Question[0].Qtype], tc.q.Opcode, code, rec.Msg, dns.RcodeToString[tc.want])
		}
	}
	bg.Fall = fall.Root
	if code, _ := bg.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), axfr); code != dns.RcodeRefused {
		t.Errorf("AXFR with fallthrough: rcode %d, want it passed on (the next plugin answers REFUSED)", code)
	}
}

// The ns option names the zones' name servers, answered with their
// addresses when they lie in a zone.
func TestServeDNSNameServers(t *testing.T) {
	bg := testPlugin(t, testKeys...)
	bg.nameServers = nameServersByZone(bg.Zones, []nameServer{
		{name: "ns1.example.org.", addrs: []net.IP{net.ParseIP("192.0.2.1")}},
		{name: "ns.example.net.", addrs: []net.IP{net.ParseIP("192.0.2.2")}},
	}, nil)
	for _, tc := range []test.Case{
		{Qname: "example.org.", Qtype: dns.TypeNS,
			Answer: []dns.RR{test.NS("example.org.	30	IN	NS	ns.example.net."), test.NS("example.org.	30	IN	NS	ns1.example.org.")},
			Extra:  []dns.RR{test.A("ns1.example.org.	30	IN	A	192.0.2.1")}},
		{Qname: "ns1.example.org.", Qtype: dns.TypeA, Answer: []dns.RR{test.A("ns1.example.org.	30	IN	A	192.0.2.1")}},
		{Qname: "ns.dns.example.org.", Qtype: dns.TypeA, Rcode: dns.RcodeNameError, Ns: []dns.RR{test.SOA("example.org.	30	IN	SOA	ns1.example.org. hostmaster.example.org. 7 86400 7200 3600000 300")}},
	} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		bg.ServeDNS(context.Background(), rec, tc.Msg())
		if err := test.SortAndCheck(rec.Msg, tc); err != nil {
			t.Errorf("%s %s: %v", tc.Qname, dns.TypeToString[tc.Qtype], err)
		}
	}
}

// Previews and states answer only the preview networks; the name itself
// answers everyone.
func TestServeDNSPreviewNetworks(t *testing.T) {
	bg := testPlugin(t, testKeys...)
	bg.preview = mustNetworks("127.0.0.1")
	for _, tc := range []struct {
		from, qname string
		want        int
	}{
		{"127.0.0.1", "blue.app.example.org.", dns.RcodeSuccess},
		{"127.0.0.2", "blue.app.example.org.", dns.RcodeRefused},
		{"127.0.0.2", "green.app.example.org.", dns.RcodeRefused},
		{"127.0.0.2", "_bluegreen.app.example.org.", dns.RcodeRefused},
		{"127.0.0.2", "app.example.org.", dns.RcodeSuccess},
		{"127.0.0.2", "blue.other.example.org.", dns.RcodeNameError}, // no managed name, no preview
	} {
		w := &test.ResponseWriter{RemoteIP: tc.from}
		rec := dnstest.NewRecorder(w)
		code, _ := bg.ServeDNS(context.Background(), rec, test.Case{Qname: tc.qname, Qtype: dns.TypeTXT}.Msg())
		if rec.Msg != nil {
			code = rec.Msg.Rcode
		}
		if code != tc.want {
			t.Errorf("%s from %s: %s, want %s", tc.qname, tc.from, dns.RcodeToString[code], dns.RcodeToString[tc.want])
		}
	}
}

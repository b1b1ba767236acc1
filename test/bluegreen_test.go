package test

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var networks = []string{"udp", "tcp"}

func TestFlipAndRollback(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100,10.0.1.101", "10.0.2.100")
	logs := captureLog(t)
	_, udp, tcp := startCoreDNS(t, corefile(etcd.endpoint, ""))
	addrs := map[string]string{"udp": udp, "tcp": tcp}
	switches := metricValue(t, "coredns_bluegreen_switches_total")
	greenAnswers := metricValue(t, "coredns_bluegreen_answers_total", "colour", "green")

	blueA := []string{"A 10.0.1.100", "A 10.0.1.101"}
	greenA := []string{"A 10.0.2.100"}
	for _, net := range networks {
		if got := answers(query(t, net, addrs[net], "app.example.org", dns.TypeA)); !slices.Equal(got, blueA) {
			t.Fatalf("%s before the flip: %v, want %v", net, got, blueA)
		}
	}

	for _, step := range []struct {
		colour string
		want   []string
	}{{"green", greenA}, {"blue", blueA}, {"green", greenA}} {
		rev := etcd.put(t, "/bluegreen/app.example.org/active", step.colour)
		took := waitFor(t, "flip to "+step.colour, 10*time.Second, func() bool {
			return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), step.want)
		})
		t.Logf("flip to %s at revision %d answered after %v", step.colour, rev, took)
		for _, net := range networks {
			if got := answers(query(t, net, addrs[net], "app.example.org", dns.TypeA)); !slices.Equal(got, step.want) {
				t.Errorf("%s after the flip to %s: %v, want %v", net, step.colour, got, step.want)
			}
		}
		txt := answers(query(t, "tcp", tcp, "_bluegreen.app.example.org", dns.TypeTXT))
		if len(txt) != 1 || !strings.Contains(txt[0], `"active=`+step.colour+`"`) || !strings.Contains(txt[0], `"revision=`+strconv.FormatInt(rev, 10)+`"`) {
			t.Errorf("TXT state after the flip to %s at revision %d: %v", step.colour, rev, txt)
		}
		if got := metricValue(t, "coredns_bluegreen_revision", "prefix", "/bluegreen/"); got != float64(rev) {
			t.Errorf("revision metric %v, want %d", got, rev)
		}
		want := fmt.Sprintf("plugin/bluegreen: app.example.org: %s -> %s (revision %d)", map[string]string{"green": "blue", "blue": "green"}[step.colour], step.colour, rev)
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}
	if got := metricValue(t, "coredns_bluegreen_switches_total") - switches; got != 3 {
		t.Errorf("switches counted %v, want 3", got)
	}
	if got := metricValue(t, "coredns_bluegreen_names", "prefix", "/bluegreen/"); got != 1 {
		t.Errorf("names metric %v, want 1", got)
	}
	if got := metricValue(t, "coredns_bluegreen_answers_total", "colour", "green") - greenAnswers; got < 6 {
		t.Errorf("green answers counted %v, want at least the 6 checked after the flips to green", got)
	}
}

func TestAnswers(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "multi.example.org", "blue", "10.0.1.100,10.0.1.101,10.0.1.102", "10.0.2.100")
	etcd.putName(t, "v6.example.org", "green", "10.0.1.1", "2001:db8::2,2001:db8::3")
	etcd.putName(t, "cname.example.org", "green", "app-v1.example.net", "app-v2.example.net")
	etcd.put(t, "/bluegreen/cname.example.org/ttl", "5")
	_, udp, tcp := startCoreDNS(t, corefile(etcd.endpoint, "ttl 45"))

	tests := []struct {
		name  string
		qtype uint16
		want  []string
		rcode int
		ttl   uint32
	}{
		{name: "multi.example.org", qtype: dns.TypeA, want: []string{"A 10.0.1.100", "A 10.0.1.101", "A 10.0.1.102"}, ttl: 45},
		{name: "multi.example.org", qtype: dns.TypeAAAA},
		{name: "v6.example.org", qtype: dns.TypeAAAA, want: []string{"AAAA 2001:db8::2", "AAAA 2001:db8::3"}, ttl: 45},
		{name: "v6.example.org", qtype: dns.TypeA},
		{name: "cname.example.org", qtype: dns.TypeA, want: []string{"CNAME app-v2.example.net."}, ttl: 5},
		{name: "cname.example.org", qtype: dns.TypeMX, want: []string{"CNAME app-v2.example.net."}, ttl: 5},
		{name: "blue.cname.example.org", qtype: dns.TypeAAAA, want: []string{"CNAME app-v1.example.net."}, ttl: 5},
		{name: "blue.v6.example.org", qtype: dns.TypeA, want: []string{"A 10.0.1.1"}, ttl: 45},
		{name: "green.multi.example.org", qtype: dns.TypeA, want: []string{"A 10.0.2.100"}, ttl: 45},
		{name: "MULTI.Example.Org", qtype: dns.TypeA, want: []string{"A 10.0.1.100", "A 10.0.1.101", "A 10.0.1.102"}, ttl: 45},
		{name: "nothing.example.org", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	}
	for _, net := range networks {
		addr := map[string]string{"udp": udp, "tcp": tcp}[net]
		for _, tc := range tests {
			m := query(t, net, addr, tc.name, tc.qtype)
			what := net + " " + tc.name + " " + dns.TypeToString[tc.qtype]
			if m.Rcode != tc.rcode || !m.Authoritative {
				t.Errorf("%s: rcode %s, authoritative %v; want %s, authoritative", what, dns.RcodeToString[m.Rcode], m.Authoritative, dns.RcodeToString[tc.rcode])
			}
			if got := answers(m); !slices.Equal(got, tc.want) {
				t.Errorf("%s: %v, want %v", what, got, tc.want)
			}
			for _, rr := range m.Answer {
				if rr.Header().Ttl != tc.ttl || rr.Header().Name != dns.Fqdn(tc.name) {
					t.Errorf("%s: %s, want owner %s and TTL %d", what, rr, dns.Fqdn(tc.name), tc.ttl)
				}
			}
			if len(m.Answer) == 0 {
				// A negative answer carries the zone's SOA with the default
				// TTL: no resolver caches it longer (RFC 2308).
				if len(m.Ns) != 1 || m.Ns[0].Header().Ttl != 45 || m.Ns[0].(*dns.SOA).Minttl < 45 || m.Ns[0].Header().Name != "example.org." {
					t.Errorf("%s: authority %v, want the example.org SOA with TTL 45", what, m.Ns)
				}
			}
		}
	}

	txt := answers(query(t, "udp", udp, "_bluegreen.cname.example.org", dns.TypeTXT))
	want := `TXT "active=green" "blue=app-v1.example.net" "green=app-v2.example.net" "ttl=5" "canary=0" "revision=`
	if len(txt) != 1 || !strings.HasPrefix(txt[0], want) {
		t.Errorf("TXT state %v, want %s…", txt, want)
	}
}

func TestFallthrough(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	hosts := "hosts {\n\t\t10.9.9.9 other.example.org\n\t\t10.9.9.8 app.example.org\n\t}"

	_, on, _ := startCoreDNS(t, corefile(etcd.endpoint, "fallthrough", hosts))
	_, off, _ := startCoreDNS(t, corefile(etcd.endpoint, "", hosts))

	// bluegreen sits before hosts: a managed name is its answer either way.
	for _, addr := range []string{on, off} {
		if got := answers(query(t, "udp", addr, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.1.100"}) {
			t.Errorf("app.example.org: %v, want bluegreen's A 10.0.1.100", got)
		}
	}
	if got := answers(query(t, "udp", on, "other.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.9.9.9"}) {
		t.Errorf("with fallthrough, other.example.org: %v, want hosts' A 10.9.9.9", got)
	}
	if m := query(t, "udp", off, "other.example.org", dns.TypeA); m.Rcode != dns.RcodeNameError || len(m.Ns) != 1 {
		t.Errorf("without fallthrough, other.example.org: %s with %v, want NXDOMAIN with an SOA", dns.RcodeToString[m.Rcode], m.Ns)
	}
}

func TestInvalidValueKeepsLastGoodState(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, ""))
	invalid := metricValue(t, "coredns_bluegreen_invalid_values_total")

	for _, kv := range [][2]string{
		{"/bluegreen/app.example.org/active", "purple"},
		{"/bluegreen/app.example.org/blue", "10.0.1.999"},
		{"/bluegreen/app.example.org/ttl", "thirty"},
	} {
		etcd.put(t, kv[0], kv[1])
	}
	waitFor(t, "TXT state saying the ttl key is ignored", 10*time.Second, func() bool {
		txt := answers(query(t, "udp", udp, "_bluegreen.app.example.org", dns.TypeTXT))
		return len(txt) == 1 && strings.Contains(txt[0], `ignored=ttl: \"thirty\" is not a TTL`)
	})
	txt := answers(query(t, "udp", udp, "_bluegreen.app.example.org", dns.TypeTXT))[0]
	for _, want := range []string{`"active=blue"`, `"blue=10.0.1.100"`, `ignored=active: \"purple\"`, `ignored=blue: \"10.0.1.999\"`} {
		if !strings.Contains(txt, want) {
			t.Errorf("TXT state %s lacks %s", txt, want)
		}
	}
	m := query(t, "udp", udp, "app.example.org", dns.TypeA)
	if got := answers(m); !slices.Equal(got, []string{"A 10.0.1.100"}) || m.Answer[0].Header().Ttl != 30 {
		t.Errorf("with bad values in etcd: %v, want the last good A 10.0.1.100 with TTL 30", m.Answer)
	}
	if got := metricValue(t, "coredns_bluegreen_invalid_values_total") - invalid; got != 3 {
		t.Errorf("invalid values counted %v times, want 3", got)
	}

	// A good value after a bad one is taken.
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	waitFor(t, "the flip after a bad value", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.2.100"})
	})
}

func TestDeletedKeys(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	etcd.put(t, "/bluegreen/app.example.org/ttl", "5")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, ""))

	ttl := func() uint32 {
		m := query(t, "udp", udp, "app.example.org", dns.TypeA)
		if len(m.Answer) == 0 {
			return 0
		}
		return m.Answer[0].Header().Ttl
	}
	if got := ttl(); got != 5 {
		t.Fatalf("TTL %d, want 5 from the ttl key", got)
	}
	etcd.del(t, "/bluegreen/app.example.org/ttl")
	waitFor(t, "the default TTL after deleting the ttl key", 10*time.Second, func() bool { return ttl() == 30 })

	etcd.del(t, "/bluegreen/app.example.org/green")
	waitFor(t, "no data for green. after deleting the green key", 10*time.Second, func() bool {
		m := query(t, "udp", udp, "green.app.example.org", dns.TypeA)
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0
	})

	// Deleting the active colour's target by mistake keeps the name up.
	etcd.del(t, "/bluegreen/app.example.org/blue")
	waitFor(t, "the TXT state saying the active target was deleted", 10*time.Second, func() bool {
		return strings.Contains(stateTXT(t, udp, "app.example.org"), `"ignored=blue: deleted, but it is the active colour's target`)
	})
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.1.100"}) {
		t.Errorf("after deleting the active target: %v, want its last value", got)
	}

	// Deleting active retires the name: no data, and the TXT state of its
	// keys left says why.
	etcd.put(t, "/bluegreen/app.example.org/green", "10.0.2.100")
	etcd.del(t, "/bluegreen/app.example.org/active")
	waitFor(t, "no data after deleting active", 10*time.Second, func() bool {
		m := query(t, "udp", udp, "app.example.org", dns.TypeA)
		return m.Rcode == dns.RcodeSuccess && len(m.Answer) == 0
	})
	if txt := stateTXT(t, udp, "app.example.org"); !strings.Contains(txt, `"not_served=no active key"`) {
		t.Errorf("TXT state of a retired name: %s", txt)
	}

	etcd.del(t, "/bluegreen/app.example.org/", clientv3.WithPrefix())
	waitFor(t, "NXDOMAIN after deleting the name", 10*time.Second, func() bool {
		return query(t, "udp", udp, "app.example.org", dns.TypeA).Rcode == dns.RcodeNameError
	})
}

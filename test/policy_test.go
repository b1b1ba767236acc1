package test

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// queryFrom asks for name's A records as a client in network would through a
// resolver that sends its /24 as the client subnet.
func queryFrom(t *testing.T, addr, name string, network netip.Addr) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeA)
	m.SetEdns0(1232, false)
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IP(network.AsSlice())})
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s from %s: %v", name, network, err)
	}
	return r
}

func TestCanaryThroughEtcd(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, ""))
	blueA, greenA := []string{"A 10.0.1.100"}, []string{"A 10.0.2.100"}

	etcd.put(t, "/bluegreen/app.example.org/canary", "30")
	waitFor(t, "canary=30 in the TXT state", 10*time.Second, func() bool {
		txt := answers(query(t, "udp", udp, "_bluegreen.app.example.org", dns.TypeTXT))
		return len(txt) == 1 && strings.Contains(txt[0], `"canary=30"`)
	})
	greenBefore := metricValue(t, "coredns_bluegreen_answers_total", "colour", "green")
	const clients = 1000
	colourOf := map[netip.Addr]string{}
	greens := 0
	for i := range clients {
		n := netip.AddrFrom4([4]byte{192, byte(i / 256), byte(i % 256), 0})
		got := answers(queryFrom(t, udp, "app.example.org", n))
		switch {
		case slices.Equal(got, greenA):
			greens++
			colourOf[n] = "green"
		case slices.Equal(got, blueA):
			colourOf[n] = "blue"
		default:
			t.Fatalf("client %s got %v", n, got)
		}
	}
	t.Logf("canary 30: %d of %d client networks answered green", greens, clients)
	if greens < clients*25/100 || greens > clients*35/100 {
		t.Errorf("canary 30: %d of %d clients answered green, want about 300", greens, clients)
	}
	if got := metricValue(t, "coredns_bluegreen_answers_total", "colour", "green") - greenBefore; got != float64(greens) {
		t.Errorf("answers_total{colour=green} grew by %v, want %d", got, greens)
	}

	// Each client keeps its colour as the canary grows.
	etcd.put(t, "/bluegreen/app.example.org/canary", "60")
	waitFor(t, "canary=60 in the TXT state", 10*time.Second, func() bool {
		txt := answers(query(t, "udp", udp, "_bluegreen.app.example.org", dns.TypeTXT))
		return len(txt) == 1 && strings.Contains(txt[0], `"canary=60"`)
	})
	for n, was := range colourOf {
		if got := answers(queryFrom(t, udp, "app.example.org", n)); was == "green" && !slices.Equal(got, greenA) {
			t.Fatalf("client %s was green at canary 30, got %v at 60", n, got)
		}
	}

	etcd.put(t, "/bluegreen/app.example.org/canary", "0")
	waitFor(t, "everyone on blue at canary 0", 10*time.Second, func() bool {
		return slices.Equal(answers(queryFrom(t, udp, "app.example.org", netip.MustParseAddr("192.0.7.0"))), blueA) &&
			slices.Equal(answers(queryFrom(t, udp, "app.example.org", netip.MustParseAddr("192.0.8.0"))), blueA)
	})
	for n := range colourOf {
		if got := answers(queryFrom(t, udp, "app.example.org", n)); !slices.Equal(got, blueA) {
			t.Fatalf("client %s got %v at canary 0", n, got)
		}
	}
}

// A hostname target is answered with its records, resolved through the
// server: here by the hosts plugin, as the kubernetes plugin would for an
// in-cluster service.
func TestCNAMETargetResolved(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "green", "10.0.1.100", "app-v2.prod.svc.cluster.local")
	etcd.putName(t, "gone.example.org", "green", "10.0.1.100", "missing.prod.svc.cluster.local")
	etcd.putName(t, "chain.example.org", "blue", "app.example.org", "10.0.2.1")
	etcd.putName(t, "loop1.example.org", "blue", "loop2.example.org", "10.0.2.1")
	etcd.putName(t, "loop2.example.org", "blue", "loop1.example.org", "10.0.2.1")
	_, udp, tcp := startCoreDNS(t, fmt.Sprintf(`.:0 {
	bluegreen example.org {
		endpoint %s
	}
	hosts {
		10.9.0.1 app-v2.prod.svc.cluster.local
		2001:db8::9 app-v2.prod.svc.cluster.local
	}
}
`, etcd.endpoint))

	const cname = "CNAME app-v2.prod.svc.cluster.local."
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{"app.example.org", dns.TypeA, []string{"A 10.9.0.1", cname}},
		{"app.example.org", dns.TypeAAAA, []string{"AAAA 2001:db8::9", cname}},
		{"App.Example.Org", dns.TypeA, []string{"A 10.9.0.1", cname}},
		{"green.app.example.org", dns.TypeA, []string{"A 10.9.0.1", cname}},
		{"app.example.org", dns.TypeTXT, []string{cname}}, // only A and AAAA are chased
		{"gone.example.org", dns.TypeA, []string{"CNAME missing.prod.svc.cluster.local."}},
		{"chain.example.org", dns.TypeA, []string{"A 10.9.0.1", cname, "CNAME app.example.org."}},
	} {
		for _, network := range []string{"udp", "tcp"} {
			addr := map[string]string{"udp": udp, "tcp": tcp}[network]
			m := query(t, network, addr, tc.name, tc.qtype)
			if got := answers(m); m.Rcode != dns.RcodeSuccess || !slices.Equal(got, tc.want) {
				t.Errorf("%s %s over %s: %s %v, want NOERROR %v", tc.name, dns.TypeToString[tc.qtype], network, dns.RcodeToString[m.Rcode], got, tc.want)
			}
		}
	}

	// Names that point at each other end in CNAMEs, not in a loop.
	m := query(t, "udp", udp, "loop1.example.org", dns.TypeA)
	want := []string{"CNAME loop1.example.org.", "CNAME loop2.example.org."}
	if got := answers(m); m.Rcode != dns.RcodeSuccess || !slices.Equal(got, want) {
		t.Errorf("loop1 → loop2 → loop1: %s %v, want NOERROR %v, each CNAME once", dns.RcodeToString[m.Rcode], got, want)
	}
}

// backend is an HTTP server on one loopback address whose health check
// answers 200 or 503 as the test says.
type backend struct {
	addr    string
	healthy atomic.Bool
	srv     *http.Server
}

// startBackends starts an HTTP server on port of each address.
func startBackends(t *testing.T, port string, addrs ...string) map[string]*backend {
	t.Helper()
	out := map[string]*backend{}
	for _, a := range addrs {
		l, err := net.Listen("tcp", net.JoinHostPort(a, port))
		if err != nil {
			t.Fatal(err)
		}
		b := &backend{addr: a}
		b.healthy.Store(true)
		b.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/healthz" || r.Host != "app.example.org" || !b.healthy.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
			}
		})}
		go b.srv.Serve(l)
		t.Cleanup(func() { b.srv.Close() })
		out[a] = b
	}
	return out
}

func TestHealthCheckedFailover(t *testing.T) {
	logs := captureLog(t)
	port := freePort(t)
	b := startBackends(t, port, "127.0.0.2", "127.0.0.3", "127.0.0.4")
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "127.0.0.2,127.0.0.3", "127.0.0.4")
	etcd.put(t, "/bluegreen/app.example.org/check", "http://:"+port+"/healthz")
	const checks = "check_interval 20ms\n\t\tcheck_timeout 20ms\n\t\tcheck_rise 2\n\t\tcheck_fall 2"
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, checks))
	_, noFailover, _ := startCoreDNS(t, corefile(etcd.endpoint, checks+"\n\t\tfailover off"))

	expect := func(what, addr string, want ...string) {
		t.Helper()
		took := waitFor(t, what, 10*time.Second, func() bool {
			return slices.Equal(answers(query(t, "udp", addr, "app.example.org", dns.TypeA)), want)
		})
		t.Logf("%s: %v after the change", what, took)
	}
	both := []string{"A 127.0.0.2", "A 127.0.0.3"}
	expect("all up: both blue addresses", udp, both...)
	healthy := func(colour string) float64 {
		return metricValue(t, "coredns_bluegreen_healthy_addresses", "name", "app.example.org", "colour", colour)
	}
	waitFor(t, "healthy_addresses 2 blue and 1 green", 10*time.Second, func() bool {
		return healthy("blue") == 2 && healthy("green") == 1
	})

	b["127.0.0.3"].healthy.Store(false)
	expect("one blue address down: left out", udp, "A 127.0.0.2")
	expect("one blue address down, failover off: left out too", noFailover, "A 127.0.0.2")
	txt := answers(query(t, "udp", udp, "_bluegreen.app.example.org", dns.TypeTXT))
	if len(txt) != 1 || !strings.Contains(txt[0], `"down=127.0.0.3"`) || !strings.Contains(txt[0], `"check=http://:`+port+`/healthz"`) {
		t.Errorf("TXT state %v: want check= and down=127.0.0.3", txt)
	}
	// Editing the check keeps a down address out until the new check
	// finds it up. Its query string, which may hold a token, is not shown.
	etcd.put(t, "/bluegreen/app.example.org/check", "http://:"+port+"/healthz?token=s3cret")
	waitFor(t, "the edited check in the TXT state", 10*time.Second, func() bool {
		txt := answers(query(t, "udp", udp, "_bluegreen.app.example.org", dns.TypeTXT))
		return len(txt) == 1 && strings.Contains(txt[0], `"check=http://:`+port+`/healthz?REDACTED"`)
	})
	if strings.Contains(logs.String(), "s3cret") {
		t.Error("the check's token is in the log")
	}
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 127.0.0.2"}) {
		t.Errorf("right after the check was edited: %v, want the down address still left out", got)
	}

	failovers := metricValue(t, "coredns_bluegreen_failovers_total", "name", "app.example.org")
	b["127.0.0.2"].healthy.Store(false)
	expect("every blue address down: failover to green", udp, "A 127.0.0.4")
	expect("every blue address down, failover off: still blue, all of it", noFailover, both...)
	txt = answers(query(t, "udp", udp, "_bluegreen.app.example.org", dns.TypeTXT))
	if len(txt) != 1 || !strings.Contains(txt[0], `"active=blue"`) || !strings.Contains(txt[0], `"failover=blue is down, answering green"`) {
		t.Errorf("TXT state %v: want active=blue and the failover", txt)
	}
	if got := metricValue(t, "coredns_bluegreen_failovers_total", "name", "app.example.org") - failovers; got != 1 {
		t.Errorf("failovers_total grew by %v, want 1 (failover off never fails over)", got)
	}
	if !strings.Contains(logs.String(), "app.example.org: failover to green: every blue address is down") {
		t.Errorf("no failover log line")
	}
	// Previews show the colour as checked.
	if got := answers(query(t, "udp", udp, "green.app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 127.0.0.4"}) {
		t.Errorf("green preview during the failover: %v", got)
	}

	b["127.0.0.3"].healthy.Store(true)
	expect("a blue address up again (after rise): back to blue", udp, "A 127.0.0.3")
	if !strings.Contains(logs.String(), "app.example.org: failover ended: blue is up again") {
		t.Errorf("no log line for the end of the failover")
	}

	b["127.0.0.3"].healthy.Store(false)
	b["127.0.0.4"].healthy.Store(false)
	expect("everything down: the active colour's full set", udp, both...)

	b["127.0.0.2"].healthy.Store(true)
	b["127.0.0.3"].healthy.Store(true)
	waitFor(t, "blue up again", 10*time.Second, func() bool { return healthy("blue") == 2 })

	// Removing the check puts every address back at once and drops the series.
	etcd.del(t, "/bluegreen/app.example.org/check")
	b["127.0.0.2"].healthy.Store(false)
	b["127.0.0.3"].healthy.Store(false)
	waitFor(t, "healthy_addresses gone with the check", 10*time.Second, func() bool {
		return healthy("blue") == 0 && healthy("green") == 0
	})
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, both) {
		t.Errorf("without a check: %v, want every blue address", got)
	}
}

// tcpBackend listens on addr:port, accepting and closing connections, as
// a backend a tcp:// check finds up; closing it takes the backend down.
func tcpBackend(t *testing.T, addr, port string) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(addr, port))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return l
}

func TestTCPCheck(t *testing.T) {
	port := freePort(t)
	listen := func(addr string) net.Listener { return tcpBackend(t, addr, port) }
	up := listen("127.0.0.5")
	defer func() { up.Close() }()
	listen("127.0.0.6").Close() // down from the start: nothing listens

	etcd := startEtcd(t)
	etcd.putName(t, "db.example.org", "green", "127.0.0.9", "127.0.0.5,127.0.0.6")
	etcd.put(t, "/bluegreen/db.example.org/check", "tcp://:"+port)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "check_interval 20ms\n\t\tcheck_timeout 20ms"))
	waitFor(t, "the closed port left out", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "db.example.org", dns.TypeA)), []string{"A 127.0.0.5"})
	})
	up.Close()
	up = listen("127.0.0.6")
	waitFor(t, "the other address once its port opens and the first one's closes", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "db.example.org", dns.TypeA)), []string{"A 127.0.0.6"})
	})
}

// A CNAME to a managed name with a canary split depends on the client's
// network as much as the split does: the answer's client subnet scope says
// so, or resolvers would give one network's colour to every other.
func TestCNAMEChaseKeepsClientSubnetScope(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "split.example.org", "blue", "10.0.1.1", "10.0.2.1")
	etcd.put(t, "/bluegreen/split.example.org/canary", "50")
	etcd.putName(t, "chain.example.org", "blue", "split.example.org", "10.0.9.9")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, ""))
	waitFor(t, "the canary in the TXT state", 10*time.Second, func() bool {
		return strings.Contains(stateTXT(t, udp, "split.example.org"), `"canary=50"`)
	})
	colours := map[string]int{}
	for i := range 20 {
		m := queryFrom(t, udp, "chain.example.org", netip.AddrFrom4([4]byte{192, 0, byte(i), 0}))
		got := answers(m)
		if len(got) != 2 || got[1] != "CNAME split.example.org." {
			t.Fatalf("chain.example.org: %v, want the CNAME and split's A record", got)
		}
		colours[got[0]]++
		if scope := subnetScope(m); scope != 24 {
			t.Errorf("chain.example.org from 192.0.%d.0/24: client subnet scope %d, want 24", i, scope)
		}
	}
	if len(colours) != 2 {
		t.Errorf("20 client networks got %v, want both colours", colours)
	}
}

// subnetScope is the scope of the client subnet option in m, -1 without one.
func subnetScope(m *dns.Msg) int {
	if o := m.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if s, ok := opt.(*dns.EDNS0_SUBNET); ok {
				return int(s.SourceScope)
			}
		}
	}
	return -1
}

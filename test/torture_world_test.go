package test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/ctl"
	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The torture test's world: one embedded etcd (with auth in some runs),
// several CoreDNS servers with bluegreen reading it, the HTTP sites of the
// names' colours, and a DNS client that asks from 100 client networks.

// tortureNetworks is how many client networks each check asks from.
const tortureNetworks = 100

const (
	tortureReadPW = "Read0nly-T0rture"
	tortureRootPW = "R00t-T0rture"
)

// tortureName is a name the test drives, with the addresses of its colours.
type tortureName struct {
	name        string
	blue, green []string
}

// app has a health check and is the one releases run on (the sites answer
// only for app.example.org); api has neither.
var tortureNames = []tortureName{
	{"app.example.org", []string{"127.0.0.51"}, []string{"127.0.0.52", "127.0.0.53"}},
	{"api.example.org", []string{"127.0.0.54"}, []string{"127.0.0.55"}},
}

// world is everything one seed's run talks to.
type world struct {
	t       *testing.T
	etcd    *etcdServer
	client  *clientv3.Client // reads and writes as root when auth is on
	auth    bool
	servers []string // UDP addresses of the CoreDNS servers
	port    string   // the sites' port
	sites   map[string]*site
	undoYes bool // bgctl undo takes --yes (it asks, once the fix is in)
}

// newWorld starts etcd, the sites and servers CoreDNS servers, writes the
// names, and waits until every server answers them.
func newWorld(t *testing.T, auth bool, servers int) *world {
	t.Helper()
	w := &world{t: t, etcd: startEtcd(t), auth: auth, port: freePort(t)}
	var addrs []string
	for _, n := range tortureNames {
		addrs = append(append(addrs, n.blue...), n.green...)
	}
	w.sites = startSites(t, w.port, addrs...)
	w.client = w.etcd.client
	options := "check_interval 100ms\n\t\tcheck_timeout 50ms\n\t\tcheck_rise 1"
	if auth {
		w.client = enableAuth(t, w.etcd, tortureReadPW, tortureRootPW)
		options += "\n\t\tcredentials coredns " + tortureReadPW
	}
	for _, n := range tortureNames {
		w.put("/bluegreen/"+n.name+"/blue", strings.Join(n.blue, ","))
		w.put("/bluegreen/"+n.name+"/green", strings.Join(n.green, ","))
		w.put("/bluegreen/"+n.name+"/ttl", "2")
		w.put("/bluegreen/"+n.name+"/active", "blue")
	}
	w.put("/bluegreen/app.example.org/check", "http://:"+w.port+"/health")
	for range servers {
		_, udp, _ := startCoreDNS(t, corefile(w.etcd.endpoint, options))
		w.servers = append(w.servers, udp)
	}
	w.undoYes = strings.Contains(w.bgctl("undo", "--help").stdout.String(), "--yes")
	return w
}

// put writes key=value as root, failing the test if etcd refuses.
func (w *world) put(key, value string, opts ...clientv3.OpOption) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := w.client.Put(ctx, key, value, opts...); err != nil {
		w.t.Fatalf("put %s=%s: %v", key, value, err)
	}
}

// bgctlArgs are the global flags every bgctl the test runs gets: with
// authentication, etcd checks the password with bcrypt, which takes more
// than the 2s default on a busy machine with the race detector.
func (w *world) bgctlArgs(args ...string) []string {
	args = append(args, "--dial-timeout", "10s", "--command-timeout", "10s")
	if w.auth {
		args = append(args, "--user", "root:"+tortureRootPW)
	}
	return append(args, "--endpoints", w.etcd.endpoint)
}

// bgctl runs bgctl in the test's process.
func (w *world) bgctl(args ...string) ran {
	w.t.Helper()
	return bgctlWith(w.t, ctl.IO{}, w.bgctlArgs(args...)...)
}

// colourOf is the colour whose target holds addr, for name.
func colourOf(n tortureName, addr string) (schema.Colour, bool) {
	for c, addrs := range [2][]string{n.blue, n.green} {
		for _, a := range addrs {
			if a == addr {
				return schema.Colour(c), true
			}
		}
	}
	return 0, false
}

// seen is what one server answered one name across the client networks:
// how many got each colour, and what the others got.
type seen struct {
	colours [2]int
	odd     []string // answers of no colour, and errors
}

func (s seen) String() string {
	out := fmt.Sprintf("blue %d, green %d", s.colours[0], s.colours[1])
	if len(s.odd) > 0 {
		out += fmt.Sprintf(", %d others (first: %s)", len(s.odd), s.odd[0])
	}
	return out
}

// ask asks server for n from each client network, as a resolver that
// sends the client's /24 would.
func ask(server string, n tortureName) seen {
	var s seen
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	for i := range tortureNetworks {
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(n.name), dns.TypeA)
		m.SetEdns0(1232, false)
		opt := m.IsEdns0()
		opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 18, byte(i), 0)})
		r, _, err := c.Exchange(m, server)
		if err != nil { // UDP: one lost on a busy machine is asked again, two are an error
			r, _, err = c.Exchange(m, server)
		}
		s.add(n, r, err)
	}
	return s
}

// add counts one answer by the colour its addresses belong to.
func (s *seen) add(n tortureName, r *dns.Msg, err error) {
	if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
		s.odd = append(s.odd, fmt.Sprintf("%v %v", err, r))
		return
	}
	a, ok := r.Answer[0].(*dns.A)
	if !ok {
		s.odd = append(s.odd, r.Answer[0].String())
		return
	}
	c, ok := colourOf(n, a.A.String())
	if !ok {
		s.odd = append(s.odd, a.A.String())
		return
	}
	s.colours[c]++
}

// askAll asks every server for every name, the servers at once.
func (w *world) askAll() map[string]map[string]seen {
	out := map[string]map[string]seen{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, server := range w.servers {
		wg.Go(func() {
			got := map[string]seen{}
			for _, n := range tortureNames {
				got[n.name] = ask(server, n)
			}
			mu.Lock()
			out[server] = got
			mu.Unlock()
		})
	}
	wg.Wait()
	return out
}

// stale is whether server's TXT state for name says its answers are stale.
func stale(server, name string) bool {
	m, err := exchange("udp", server, "_bluegreen."+name, dns.TypeTXT)
	return err == nil && strings.Contains(strings.Join(answers(m), " "), "stale")
}

// lookupName finds a name's addresses.
func lookupName(name string) tortureName {
	for _, n := range tortureNames {
		if n.name == name {
			return n
		}
	}
	panic("not a torture name: " + name)
}

package bluegreen

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// discard is a ResponseWriter that drops the reply, so that benchmarks
// measure the plugin and not a recorder.
type discard struct{ test.ResponseWriter }

func (*discard) WriteMsg(*dns.Msg) error { return nil }

func BenchmarkServeDNS(b *testing.B) {
	bg := testPlugin(b, append(testKeys, "split.example.org/active=blue", "split.example.org/blue=10.0.1.1",
		"split.example.org/green=10.0.2.1", "split.example.org/canary=50")...)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"app.example.org.", dns.TypeA},
		{"v6.example.org.", dns.TypeAAAA},
		{"green.app.example.org.", dns.TypeA}, // a preview, answered with a CNAME
		{"blue.app.example.org.", dns.TypeA},
		{"other.example.org.", dns.TypeA}, // a miss: NXDOMAIN with the SOA
		{"split.example.org.", dns.TypeA}, // a canary split: the colour from the source network
	} {
		b.Run(fmt.Sprintf("%s/%s", dns.TypeToString[q.qtype], q.name), func(b *testing.B) {
			r := new(dns.Msg)
			r.SetQuestion(q.name, q.qtype)
			ctx, w := context.Background(), &discard{}
			b.ReportAllocs()
			for b.Loop() {
				bg.ServeDNS(ctx, w, r)
			}
		})
	}
}

// snapshotOf serves n names, n0.example.org. and on.
func snapshotOf(n int) *snapshot {
	changes := map[string]*entry{}
	for i := range n {
		changes[fmt.Sprintf("n%d.example.org.", i)] = &entry{}
	}
	return (&snapshot{}).with(1, changes)
}

func BenchmarkLookup(b *testing.B) {
	s := snapshotOf(100000)
	b.ReportAllocs()
	for b.Loop() {
		s.lookup("green.n4242.example.org.")
	}
}

// BenchmarkFlip is the cost of publishing one changed name among 100,000:
// what a flip costs the watcher, and the garbage it leaves.
func BenchmarkFlip(b *testing.B) {
	s := snapshotOf(100000)
	change := map[string]*entry{"n4242.example.org.": {active: schema.Green}}
	b.ReportAllocs()
	for b.Loop() {
		s.with(2, change)
	}
}

// TestLookupDoesNotAllocate: finding a name, preview or not, costs no
// allocation; only building the reply does.
func TestLookupDoesNotAllocate(t *testing.T) {
	s := testPlugin(t, testKeys...).snap.Load()
	for _, qname := range []string{"app.example.org.", "green.app.example.org.", "_bluegreen.app.example.org.", "nothing.example.org."} {
		if n := testing.AllocsPerRun(100, func() { s.lookup(qname) }); n != 0 {
			t.Errorf("lookup(%q) allocates %v times", qname, n)
		}
	}
}

// remoteAt is a ResponseWriter whose client address is kept, as the DNS
// server's own are; test.ResponseWriter makes a new one on each call.
type remoteAt struct {
	test.ResponseWriter
	addr net.Addr
}

func (w *remoteAt) RemoteAddr() net.Addr { return w.addr }

// TestSplitDoesNotAllocate: placing a client in the canary split costs no
// allocation either.
func TestSplitDoesNotAllocate(t *testing.T) {
	w := &remoteAt{addr: &net.UDPAddr{IP: net.ParseIP("192.0.2.7"), Port: 53000}}
	if n := testing.AllocsPerRun(100, func() {
		addr, _ := network(w, nil, defaultCanaryV4, defaultCanaryV6)
		canaryColour(schema.Blue, 50, slot("app.example.org.", addr))
	}); n != 0 {
		t.Errorf("the split allocates %v times", n)
	}
}

// BenchmarkList is the cost of the first list of 100,000 names (three keys
// each) to the store, etcd aside: what the initial sync costs CoreDNS.
func BenchmarkList(b *testing.B) {
	var kvs []keyValue
	for i := range 100000 {
		kvs = append(kvs, keyValues(int64(i+1), fmt.Sprintf("n%d.example.org/blue=10.0.1.1", i), fmt.Sprintf("n%d.example.org/green=10.0.2.1", i),
			fmt.Sprintf("n%d.example.org/active=blue", i))...)
	}
	b.ReportAllocs()
	for b.Loop() {
		testStore(b, new(atomic.Pointer[snapshot])).replace(kvs, 100001)
	}
}

// BenchmarkApplyFlip is the cost of one flip among 100,000 names from a
// watch event to the published snapshot, logs included: what churn costs.
func BenchmarkApplyFlip(b *testing.B) {
	var kvs []keyValue
	for i := range 100000 {
		kvs = append(kvs, keyValues(1, fmt.Sprintf("n%d.example.org/blue=10.0.1.1", i), fmt.Sprintf("n%d.example.org/green=10.0.2.1", i),
			fmt.Sprintf("n%d.example.org/active=blue", i))...)
	}
	s := testStore(b, new(atomic.Pointer[snapshot]))
	s.replace(kvs, 1)
	flip := []keyValue{{key: "/bluegreen/n4242.example.org/active"}}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		flip[0].value, flip[0].rev = schema.Colours[i%2].String(), int64(i+2)
		s.apply(flip)
	}
}

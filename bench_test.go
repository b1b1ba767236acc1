package bluegreen

import (
	"context"
	"fmt"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// discard is a ResponseWriter that drops the reply, so that benchmarks
// measure the plugin and not a recorder.
type discard struct{ test.ResponseWriter }

func (*discard) WriteMsg(*dns.Msg) error { return nil }

func BenchmarkServeDNS(b *testing.B) {
	bg := testPlugin(b, testKeys...)
	for _, q := range []struct {
		name  string
		qtype uint16
	}{
		{"app.example.org.", dns.TypeA},
		{"v6.example.org.", dns.TypeAAAA},
		{"green.app.example.org.", dns.TypeA}, // a preview, answered with a CNAME
		{"blue.app.example.org.", dns.TypeA},
		{"other.example.org.", dns.TypeA}, // a miss: NXDOMAIN with the SOA
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
	change := map[string]*entry{"n4242.example.org.": {active: green}}
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

package bluegreen

import (
	"context"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// The first name_metrics names have answer series of their own; the others
// do not, and the log says so once. A name's series go with it, and free
// its place for another.
func TestNameSeries(t *testing.T) {
	bg := testPlugin(t)
	bg.store.nameMetrics = 1
	logs := captureLog(t)
	// a is listed first and b put after it: of two names listed together,
	// either may get the one series (the store resolves them in map order).
	bg.store.replace(keyValues(7, "a.example.org/active=blue", "a.example.org/blue=10.0.1.1", "a.example.org/green=10.0.2.1"), 7)
	bg.store.apply(keyValues(8, "b.example.org/active=blue", "b.example.org/blue=10.0.1.2", "b.example.org/green=10.0.2.2", "b.example.org/canary=100"))
	series := newNameCollector()
	series.add(&bg.snap)
	ask := func(name string) {
		if code, err := bg.ServeDNS(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), test.Case{Qname: name, Qtype: dns.TypeA}.Msg()); code != dns.RcodeSuccess || err != nil {
			t.Fatalf("%s: rcode %d, %v", name, code, err)
		}
	}
	for range 3 {
		ask("a.example.org.")
		ask("b.example.org.")
	}
	ask("green.a.example.org.") // a preview counts as an answer of its colour
	got := collected(t, series)
	want := map[string]float64{
		"name_answers_total a.example.org blue": 3, "name_answers_total a.example.org green": 1, "answering a.example.org blue": 1,
		// b has no answer series, but its canary share gives it the others.
		"canary_percent b.example.org green": 100, "answering b.example.org blue": 1,
	}
	if len(got) != len(want) {
		t.Errorf("series %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if n := strings.Count(logs.String(), "name_metrics 1 reached: b.example.org and the names after it have no answer series of their own"); n != 1 {
		t.Errorf("logged the limit %d times, want once:\n%s", n, logs)
	}

	// a goes: its series with it, and b, at its next change, takes its place.
	bg.store.apply([]keyValue{{key: "/bluegreen/a.example.org/active", rev: 9, deleted: true}, {key: "/bluegreen/a.example.org/blue", rev: 9, deleted: true},
		{key: "/bluegreen/a.example.org/green", rev: 9, deleted: true}})
	bg.store.apply([]keyValue{{key: "/bluegreen/b.example.org/canary", value: "0", rev: 10}})
	ask("b.example.org.")
	got = collected(t, series)
	if len(got) != 3 || got["name_answers_total b.example.org blue"] != 1 || got["name_answers_total b.example.org green"] != 0 || got["answering b.example.org blue"] != 1 {
		t.Errorf("after a went: %v, want b's answer series and no more", got)
	}
}

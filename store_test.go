package bluegreen

import (
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
)

// A list swaps in what etcd holds in one step: names deleted meanwhile go,
// new ones come, changed ones change, and only what changed is logged.
func TestStoreRelistSwap(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1", "app.example.org/green=10.0.2.1",
		"gone.example.org/active=blue", "gone.example.org/blue=10.0.3.1", "app.example.org/ttl=x"), 5)
	first := snap.Load()
	if first.served != 2 || first.rev != 5 || s.upTo != 5 {
		t.Fatalf("first list: %d served at revision %d (store up to %d), want 2 at 5", first.served, first.rev, s.upTo)
	}
	if got := testutil.ToFloat64(namesManaged.WithLabelValues("/bluegreen/")); got != 2 {
		t.Errorf("names gauge %v after the first list, want 2", got)
	}

	logs := captureLog(t)
	invalid := testutil.ToFloat64(invalidValuesTotal)
	s.replace(append(keyValues(5, "app.example.org/blue=10.0.1.1", "app.example.org/green=10.0.2.1", "app.example.org/ttl=x"),
		keyValues(9, "app.example.org/active=green", "new.example.org/active=green", "new.example.org/green=10.0.4.1")...), 12)
	next := snap.Load()
	if e := next.get(app); e == nil || e.active != schema.Green || next.get("gone.example.org.") != nil || next.get("new.example.org.") == nil || next.rev != 12 {
		t.Fatalf("after the list: app %+v, gone %v, new %v, revision %d", e, next.get("gone.example.org."), next.get("new.example.org."), next.rev)
	}
	if first.get(app).active != schema.Blue || first.get("gone.example.org.") == nil {
		t.Error("the list changed the snapshot it replaced")
	}
	for _, want := range []string{"app.example.org: blue -> green (revision 12)", "gone.example.org: no longer served: its keys are gone (revision 12)",
		"new.example.org: now served, green (revision 12)", "listed /bluegreen/ again at revision 12: names served: 2"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	// The ttl key was ignored before the list and still is: no news.
	if got := testutil.ToFloat64(invalidValuesTotal) - invalid; got != 0 || strings.Contains(logs.String(), "ignoring") {
		t.Errorf("a problem known before the list was reported again: counted %v\n%s", got, logs)
	}
}

// Across a list, a name keeps the colour it answered and the last good
// value of each key.
func TestStoreRelistCarriesOver(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	if since := testutil.ToFloat64(staleSinceSeconds.WithLabelValues("/bluegreen/")); since == 0 {
		t.Error("stale_since_timestamp_seconds is 0 before the first list, with nothing answered")
	}
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1", "app.example.org/ttl=60"), 5)
	s.apply([]keyValue{{key: "/bluegreen/app.example.org/active", value: "green", rev: 6}, {key: "/bluegreen/app.example.org/ttl", value: "soon", rev: 6}})
	s.replace(append(keyValues(5, "app.example.org/blue=10.0.1.1"), keyValues(6, "app.example.org/active=green", "app.example.org/ttl=soon")...), 9)
	e := snap.Load().get(app)
	if e == nil || !e.serving() || e.active != schema.Blue || e.ttl != 60 {
		t.Fatalf("after the list: %+v, want blue with ttl 60 still answered", e)
	}
	txt := txtOf(e)
	for _, want := range []string{"ignored=active: green has no target", `ignored=ttl: "soon" is not a TTL`} {
		if !strings.Contains(txt, want) {
			t.Errorf("TXT state %s lacks %s", txt, want)
		}
	}
	if since := testutil.ToFloat64(staleSinceSeconds.WithLabelValues("/bluegreen/")); since != 0 {
		t.Errorf("stale_since_timestamp_seconds %v once listed, want 0", since)
	}
	s.apply(keyValues(10, "stray=1")) // outside the layout
	if got := testutil.ToFloat64(ignoredKeys.WithLabelValues("/bluegreen/")); got != 3 {
		t.Errorf("ignored_keys %v, want 3: active, ttl and the stray", got)
	}
	s.apply([]keyValue{{key: "/bluegreen/app.example.org/ttl", value: "60", rev: 11}, {key: "/bluegreen/stray", rev: 11, deleted: true}})
	if got := testutil.ToFloat64(ignoredKeys.WithLabelValues("/bluegreen/")); got != 1 {
		t.Errorf("ignored_keys %v after the ttl was fixed and the stray deleted, want 1", got)
	}
	// A target deleted while answered is kept across a list, too.
	s.replace(keyValues(6, "app.example.org/active=green", "app.example.org/green=10.0.2.1"), 12)
	s.apply([]keyValue{{key: "/bluegreen/app.example.org/green", rev: 13, deleted: true}})
	s.replace(keyValues(6, "app.example.org/active=green"), 14)
	if e := snap.Load().get(app); e == nil || !e.serving() || e.targets[schema.Green].Raw != "10.0.2.1" {
		t.Errorf("green deleted while answered, then a list: %+v, want green's last target", e)
	}
}

// A problem that goes and comes back is reported again, though the key
// that has it did not change.
func TestStoreRepeatedProblemReportedAgain(t *testing.T) {
	s := testStore(t, new(atomic.Pointer[snapshot]))
	s.replace(keyValues(5, "app.example.org/active=green", "app.example.org/blue=10.0.1.1", "app.example.org/green=10.0.2.1"), 5)
	logs := captureLog(t)
	invalid := testutil.ToFloat64(invalidValuesTotal)
	for i, step := range []keyValue{
		{key: "/bluegreen/app.example.org/green", rev: 6, deleted: true}, // kept: green is answered
		{key: "/bluegreen/app.example.org/active", value: "blue", rev: 7},
		{key: "/bluegreen/app.example.org/active", value: "green", rev: 8}, // green has no target
		{key: "/bluegreen/app.example.org/green", value: "10.0.2.2", rev: 9},
		{key: "/bluegreen/app.example.org/active", value: "blue", rev: 10},
		{key: "/bluegreen/app.example.org/green", rev: 11, deleted: true},
		{key: "/bluegreen/app.example.org/green", value: "10.0.2.3", rev: 12},
		{key: "/bluegreen/app.example.org/green", rev: 13, deleted: true}, // green has no target again, active unchanged
	} {
		s.apply([]keyValue{step})
		if i == 2 || i == 7 {
			s.apply([]keyValue{{key: "/bluegreen/app.example.org/active", value: "green", rev: step.rev}})
		}
	}
	if got := strings.Count(logs.String(), `ignoring key "/bluegreen/app.example.org/active": green has no target`); got != 2 {
		t.Errorf("green has no target logged %d times, want 2 (once each time):\n%s", got, logs)
	}
	if got := testutil.ToFloat64(invalidValuesTotal) - invalid; got != 3 { // and once the deleted green that was kept
		t.Errorf("counted %v problems, want 3", got)
	}
}

// Probe results change what is answered; a name's series go with it.
func TestStoreProbeResults(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=127.0.1.1,127.0.1.2", "app.example.org/green=127.0.2.1",
		"app.example.org/check=tcp://:1", "cname.example.org/active=blue", "cname.example.org/blue=127.0.3.1",
		"cname.example.org/green=app.example.net", "cname.example.org/check=tcp://:1"), 5)
	series := newNameCollector()
	series.add(&snap)
	healthy := func(name, colour string) float64 { return collected(t, series)["healthy_addresses "+name+" "+colour] }
	if healthy("app.example.org", "blue") != 2 || healthy("app.example.org", "green") != 1 {
		t.Errorf("healthy addresses blue %v green %v, want 2 and 1 before any probe", healthy("app.example.org", "blue"), healthy("app.example.org", "green"))
	}
	if n := len(collected(t, series, "healthy_addresses")); n != 3 {
		t.Errorf("%d healthy_addresses series, want 3: none for a hostname target", n)
	}
	report(s, app, "127.0.1.1", stateDown)
	if e := snap.Load().get(app); len(e.targets[schema.Blue].A) != 1 || healthy("app.example.org", "blue") != 1 {
		t.Errorf("one blue address down: answering %v, healthy %v", e.targets[schema.Blue].A, healthy("app.example.org", "blue"))
	}
	report(s, app, "127.0.1.2", stateDown)
	if e := snap.Load().get(app); e.failover {
		t.Error("failed over to green before any probe found it up")
	}
	if got, ok := collected(t, series)["failovers_total app.example.org "]; !ok || got != 0 {
		t.Errorf("failovers_total before any failover: %v (exported %v), want a series at 0", got, ok)
	}
	report(s, app, "127.0.2.1", stateUp)
	if e := snap.Load().get(app); !e.failover || e.answering() != schema.Green {
		t.Errorf("blue down, green up: failover %v, answering %s", e.failover, e.answering())
	}
	if got := collected(t, series)["failovers_total app.example.org "]; got != 1 {
		t.Errorf("failovers counted %v, want 1", got)
	}

	// A probe result after shutdown changes nothing.
	published := snap.Load()
	s.close()
	report(s, app, "127.0.1.1", stateUp)
	if snap.Load() != published || healthy("app.example.org", "blue") != 0 {
		t.Error("a probe result after shutdown was published")
	}
	s.closed = false

	// A name that goes takes its series with it.
	s.replace(nil, 20)
	if n := len(collected(t, series)); n != 0 {
		t.Errorf("%d series left after every name went", n)
	}
}

// What a shared probe found is in a name's answers from the moment the name
// watches it, and stays when the name's check is edited: neither a new name
// nor an edit puts a dead backend back until a probe finds it up.
func TestStoreProbeStateCarriesOver(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=127.0.1.1,127.0.1.2", "app.example.org/check=tcp://:1"), 5)
	report(s, app, "127.0.1.1", stateDown)

	other := "other.example.org."
	s.apply(keyValues(6, "other.example.org/active=blue", "other.example.org/blue=127.0.1.1,127.0.1.3", "other.example.org/check=tcp://:1"))
	if e := snap.Load().get(other); len(e.targets[schema.Blue].A) != 1 || e.targets[schema.Blue].A[0].String() != "127.0.1.3" {
		t.Errorf("a new name with an address its probe found down answers %v; want 127.0.1.3 only", e.targets[schema.Blue].A)
	}
	s.apply(keyValues(7, "app.example.org/check=tcp://:2"))
	if e := snap.Load().get(app); len(e.targets[schema.Blue].A) != 1 || e.targets[schema.Blue].A[0].String() != "127.0.1.2" {
		t.Errorf("after its check was edited, app answers %v; want 127.0.1.2 only", e.targets[schema.Blue].A)
	}
	report(s, other, "127.0.1.1", stateUp) // the probe app no longer shares
	if e := snap.Load().get(other); len(e.targets[schema.Blue].A) != 2 {
		t.Errorf("its address found up again, other answers %v; want both addresses", e.targets[schema.Blue].A)
	}
}

// A name served by two instances at once (a reload, two server blocks) has
// one series of each: a second would fail the whole scrape.
func TestHealthSeriesOncePerName(t *testing.T) {
	series := newNameCollector()
	for range 2 {
		var snap atomic.Pointer[snapshot]
		s := testStore(t, &snap)
		s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=127.0.1.1", "app.example.org/check=tcp://:1"), 5)
		series.add(&snap)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(series)
	got, err := reg.Gather()
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	for _, f := range got {
		if len(f.GetMetric()) != 1 {
			t.Errorf("scraped %v, want one series of each", got)
		}
	}
}

// collected is the series of c, as "METRIC NAME COLOUR" (METRIC without
// coredns_bluegreen_), of the metrics given or all.
func collected(t *testing.T, c *nameCollector, metrics ...string) map[string]float64 {
	ch := make(chan prometheus.Metric)
	go func() {
		c.Collect(ch)
		close(ch)
	}()
	got := map[string]float64{}
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			t.Fatal(err)
		}
		labels := map[string]string{}
		for _, l := range d.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		metric := map[*prometheus.Desc]string{c.healthy: "healthy_addresses", c.trial: "trial_until_timestamp_seconds",
			c.answers: "name_answers_total", c.serving: "answering", c.canary: "canary_percent", c.failovers: "failovers_total"}[m.Desc()]
		if len(metrics) > 0 && !slices.Contains(metrics, metric) {
			continue
		}
		got[metric+" "+labels["name"]+" "+labels["colour"]] = d.GetGauge().GetValue() + d.GetCounter().GetValue()
	}
	return got
}

// Keys outside the layout are reported once per revision, and forgotten
// when a list no longer finds them.
func TestStoreStrays(t *testing.T) {
	s := testStore(t, new(atomic.Pointer[snapshot]))
	logs := captureLog(t)
	stray := keyValue{key: "/bluegreen/app.example.net/active", value: "blue", rev: 3}
	s.replace([]keyValue{stray}, 3)
	s.apply([]keyValue{stray})
	if got := strings.Count(logs.String(), "app.example.net. is outside the zones"); got != 1 {
		t.Errorf("a stray key reported %d times, want once", got)
	}
	if sm := s.sample(true); sm.key != stray.key || sm.modRev != 3 || sm.upTo != 3 {
		t.Errorf("sample %+v, want the stray key at 3", sm)
	}
	s.replace(nil, 9)
	if len(s.strays) != 0 {
		t.Errorf("%d stray keys held after a list without them", len(s.strays))
	}
	if sm := s.sample(false); sm.key != "" || sm.upTo != 9 {
		t.Errorf("sample of an empty store %+v", sm)
	}
}

// What was answered before (the state file, or the instance a reload
// replaces) is answered, stale, while etcd is not listed yet; it publishes
// like a list does.
func TestStoreServeSeed(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	written := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	f := &stateFile{Prefix: "/bluegreen/", Revision: 40, Names: map[string]map[string]string{"app.example.org": {"active": "blue", "blue": "10.0.1.1"}}}
	s.seed(f, written, "answering state.json of revision 40: etcd not listed yet")
	if snap.Load() != nil {
		t.Fatal("the seed was answered before serveSeed")
	}
	if !s.serveSeed() {
		t.Fatal("serveSeed refused")
	}
	if got := testutil.ToFloat64(namesManaged.WithLabelValues("/bluegreen/")); got != 1 {
		t.Errorf("names gauge %v after the seed, want 1", got)
	}
	if got := testutil.ToFloat64(revision.WithLabelValues("/bluegreen/")); got != 40 {
		t.Errorf("revision gauge %v after the seed, want 40", got)
	}
	if got := testutil.ToFloat64(staleSinceSeconds.WithLabelValues("/bluegreen/")); got != float64(written.Unix()) {
		t.Errorf("stale since %v, want %d", got, written.Unix())
	}
	txt := strings.Join(snap.Load().get(app).stateTXT(s.synced.Load(), snap.Load().stale), " ")
	if !strings.Contains(txt, "stale_since=2026-11-01T12:00:00Z stale_reason=answering state.json of revision 40: etcd not listed yet") {
		t.Errorf("TXT state %s does not say it is stale", txt)
	}
	s.replace(keyValues(50, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1"), 50)
	if got := testutil.ToFloat64(staleSinceSeconds.WithLabelValues("/bluegreen/")); got != 0 || !snap.Load().stale.since.IsZero() {
		t.Errorf("stale since %v after the first list, want 0", got)
	}
	if s.serveSeed() {
		t.Error("served a seed after a list")
	}
}

// The first list is applied to what was answered before: across a restart
// or a reload, a name keeps the colour it answered and the last good value
// of each key, as it does across the lists of one instance.
func TestStoreSeedCarriesOver(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	f := &stateFile{Prefix: "/bluegreen/", Revision: 40, Names: map[string]map[string]string{
		"bad.example.org":   {"active": "green", "blue": "10.0.1.1", "green": "10.0.2.1"},
		"del.example.org":   {"active": "blue", "blue": "10.0.3.1", "green": "10.0.4.1"},
		"half.example.org":  {"active": "blue", "blue": "10.0.5.1"},
		"gone.example.org":  {"active": "blue", "blue": "10.0.6.1"},
		"other.example.net": {"active": "blue", "blue": "10.0.7.1"}, // outside the zones: left out
	}}
	s.seed(f, time.Now(), "before")
	s.replace(keyValues(45, "bad.example.org/active=GREEN", "bad.example.org/blue=10.0.1.1", "bad.example.org/green=10.0.2.1",
		"del.example.org/active=blue", "del.example.org/green=10.0.4.1",
		"half.example.org/active=green", "half.example.org/blue=10.0.5.1"), 45)
	for name, want := range map[string]string{"bad.example.org.": "10.0.2.1", "del.example.org.": "10.0.3.1", "half.example.org.": "10.0.5.1"} {
		e := snap.Load().get(name)
		if e == nil || !e.serving() || e.targets[e.answering()].Raw != want {
			t.Errorf("%s after the first list: %+v, want %s still answered", name, e, want)
		}
	}
	if snap.Load().get("gone.example.org.") != nil || snap.Load().get("other.example.net.") != nil || snap.Load().served != 3 {
		t.Errorf("names gone from etcd or outside the zones are answered: %d served", snap.Load().served)
	}
}

// Reasons to be stale add up; the answers are current once none is left,
// and a reason found in an older list does not count.
func TestStoreStaleness(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1"), 5)
	t0 := time.Now().Add(-time.Minute)
	s.markStale(staleNoWord, t0, "no word from etcd")
	s.markResync(s.lists, t0.Add(time.Second), "history replaced")
	st := snap.Load().stale
	if !st.since.Equal(t0) || st.why != "no word from etcd; history replaced" {
		t.Errorf("stale %+v, want since t0 for both reasons", st)
	}
	s.markFresh(staleNoWord)
	if st := snap.Load().stale; !st.since.Equal(t0) || st.why != "history replaced" {
		t.Errorf("stale %+v after etcd answered, want still stale since t0 until a list", st)
	}
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1"), 8)
	if st := snap.Load().stale; !st.since.IsZero() {
		t.Errorf("stale %+v after the list", st)
	}
	s.markResync(s.lists-1, time.Now(), "found before the last list")
	if st := snap.Load().stale; !st.since.IsZero() {
		t.Errorf("stale %+v for what a list since answered", st)
	}
}

// A hostname cannot be answered at a zone apex, beside the SOA.
func TestStoreApexHostnameTarget(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.replace(keyValues(5, "example.org/active=blue", "example.org/blue=app.example.net", "example.org/green=10.0.0.2"), 5)
	e := snap.Load().get("example.org.")
	if e.serving() || !strings.Contains(txtOf(e), `ignored=blue: "app.example.net" is a hostname, but example.org. is a zone apex`) {
		t.Errorf("a hostname at the apex: unserved %q, TXT %s", e.unserved, txtOf(e))
	}
}

// Every change of what a name answers is logged with its revision, not only
// flips.
func TestStoreLogsChanges(t *testing.T) {
	s := testStore(t, new(atomic.Pointer[snapshot]))
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1", "app.example.org/green=10.0.2.1"), 5)
	logs := captureLog(t)
	switches := testutil.ToFloat64(switchesTotal)
	for _, kv := range keyValues(6, "app.example.org/green=10.0.2.2", "app.example.org/ttl=5", "app.example.org/canary=10", "app.example.org/active=green") {
		s.apply([]keyValue{kv})
	}
	s.apply([]keyValue{{key: "/bluegreen/app.example.org/canary", rev: 7, deleted: true}})
	for _, want := range []string{
		"app.example.org: green target 10.0.2.1 -> 10.0.2.2 (revision 6)",
		"app.example.org: ttl 30 -> 5 (revision 6)",
		"app.example.org: canary 0 -> 10 (revision 6)",
		"app.example.org: blue -> green (revision 6)",
		"app.example.org: canary 10 -> 0 (revision 7)",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if got := testutil.ToFloat64(switchesTotal) - switches; got != 1 {
		t.Errorf("switches counted %v, want 1", got)
	}
}

// Checks reach only the check networks: an address outside them is not
// probed, and the TXT state says so.
func TestStoreCheckNetworks(t *testing.T) {
	for _, tc := range []struct {
		nets      networks
		unchecked string
	}{
		{nil, "169.254.1.1"}, // by default, no link-local address
		{mustNetworks("10.0.0.0/8"), "169.254.1.1 192.168.1.1"},
	} {
		var snap atomic.Pointer[snapshot]
		s := testStore(t, &snap)
		s.policy.checkNets = tc.nets
		s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1,192.168.1.1,169.254.1.1",
			"app.example.org/green=10.0.2.1", "app.example.org/check=tcp://:80"), 5)
		var probed []string
		for _, k := range s.names[app].probes {
			probed = append(probed, k.ip().String())
		}
		slices.Sort(probed)
		var unchecked []string
		for _, addr := range strings.Fields(tc.unchecked) {
			unchecked = append(unchecked, "unchecked="+addr)
		}
		want := slices.DeleteFunc([]string{"10.0.1.1", "10.0.2.1", "169.254.1.1", "192.168.1.1"}, func(a string) bool { return strings.Contains(tc.unchecked, a) })
		if txt := txtOf(snap.Load().get(app)); !slices.Equal(probed, want) || !strings.HasSuffix(txt, strings.Join(unchecked, " ")) {
			t.Errorf("check networks %v: probed %v, want %v; TXT %s", tc.nets, probed, want, txt)
		}
	}
}

// Switching a name to a colour found down probes that colour's addresses at
// once: a release deploys the new colour's backends, then switches to them.
func TestStoreSwitchHurriesDownProbes(t *testing.T) {
	var snap atomic.Pointer[snapshot]
	s := testStore(t, &snap)
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=127.0.1.1", "app.example.org/green=127.0.2.1",
		"app.example.org/check=tcp://:1"), 5)
	report(s, app, "127.0.2.1", stateDown)
	runs := func(addr string) int {
		s.mu.Lock()
		i := slices.IndexFunc(s.names[app].probes, func(k probeKey) bool { return k.ip().String() == addr })
		k := s.names[app].probes[i]
		s.mu.Unlock()
		s.probes.mu.Lock()
		defer s.probes.mu.Unlock()
		p := s.probes.probes[k]
		return int(p.oks + p.fails)
	}
	if runs("127.0.2.1") != 0 {
		t.Fatal("green was probed before the switch") // its first run is at a random point of an hour
	}
	s.apply(keyValues(6, "app.example.org/active=green"))
	for deadline := time.Now().Add(10 * time.Second); runs("127.0.2.1") == 0; {
		if time.Now().After(deadline) {
			t.Fatal("green, found down, not probed within 10s of the switch to it")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if runs("127.0.1.1") != 0 {
		t.Error("blue, not found down, was probed at the switch too")
	}
}

// A trial is answered in place of the active key while etcd holds it, with
// its ttl; when etcd deletes it (its lease expired) the name goes back to
// its active colour and ttl. Logged, counted, and shown in the TXT state and
// a gauge meanwhile.
func TestStoreTrial(t *testing.T) {
	snap := new(atomic.Pointer[snapshot])
	s := testStore(t, snap)
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1", "app.example.org/green=10.0.2.1", "app.example.org/ttl=30"), 5)
	logs := captureLog(t)
	series := newNameCollector()
	series.add(snap)
	reverted := testutil.ToFloat64(trialsEndedTotal.WithLabelValues("reverted"))
	kept := testutil.ToFloat64(trialsEndedTotal.WithLabelValues("kept"))

	trial := keyValue{key: "/bluegreen/app.example.org/trial", value: "green until=2026-11-24T12:13:00Z ttl=5", rev: 6, lease: 0x1234}
	s.apply([]keyValue{trial})
	e := snap.Load().get(app)
	if e.active != schema.Green || e.ttl != 5 || !strings.Contains(txtOf(e), "trial=green until 2026-11-24T12:13:00Z") || !strings.Contains(txtOf(e), "ttl=5") {
		t.Fatalf("during the trial: active %s, ttl %d, TXT %s", e.active, e.ttl, txtOf(e))
	}
	if got := collected(t, series)["trial_until_timestamp_seconds app.example.org green"]; got != float64(time.Date(2026, 11, 24, 12, 13, 0, 0, time.UTC).Unix()) {
		t.Errorf("trial gauge %v", got)
	}
	s.apply([]keyValue{{key: trial.key, rev: 7, deleted: true}}) // the lease expired
	if e := snap.Load().get(app); e.active != schema.Blue || e.ttl != 30 || e.trial != nil || strings.Contains(txtOf(e), "trial=") {
		t.Errorf("after the trial key went: active %s, ttl %d, TXT %s", e.active, e.ttl, txtOf(e))
	}
	if got := collected(t, series); len(got) != 0 {
		t.Errorf("series after the trial: %v", got)
	}

	// Confirmed: active names the trial's colour in the transaction that
	// deletes the trial key.
	trial.rev = 8
	s.apply([]keyValue{trial})
	s.apply([]keyValue{{key: "/bluegreen/app.example.org/active", value: "green", rev: 9}, {key: trial.key, rev: 9, deleted: true}})
	if e := snap.Load().get(app); e.active != schema.Green || e.ttl != 30 {
		t.Errorf("after confirming: active %s, ttl %d", e.active, e.ttl)
	}
	for _, want := range []string{
		"app.example.org: blue -> green (revision 6)",
		"app.example.org: trial of green until 2026-11-24T12:13:00Z, ttl 5 (revision 6)",
		"app.example.org: green -> blue (revision 7)",
		"app.example.org: trial of green ended unconfirmed, back to blue (revision 7)",
		"app.example.org: trial of green ended, green stays (revision 9)",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if got := testutil.ToFloat64(trialsEndedTotal.WithLabelValues("reverted")) - reverted; got != 1 {
		t.Errorf("trials reverted %v, want 1", got)
	}
	if got := testutil.ToFloat64(trialsEndedTotal.WithLabelValues("kept")) - kept; got != 1 {
		t.Errorf("trials kept %v, want 1", got)
	}

	// A release's canary step: a trial of the active colour with a share
	// for the other one, which goes with the lease too.
	s.apply([]keyValue{{key: trial.key, value: "green until=2026-11-24T12:13:00Z canary=30", rev: 10, lease: 0x1234}})
	if e := snap.Load().get(app); e.active != schema.Green || e.canary != 30 || !strings.Contains(txtOf(e), "canary=30") {
		t.Errorf("during a trial with canary=30: active %s, canary %d, TXT %s", e.active, e.canary, txtOf(e))
	}
	reverted = testutil.ToFloat64(trialsEndedTotal.WithLabelValues("reverted"))
	s.apply([]keyValue{{key: trial.key, rev: 11, deleted: true}})
	if e := snap.Load().get(app); e.active != schema.Green || e.canary != 0 {
		t.Errorf("after the canary trial: active %s, canary %d", e.active, e.canary)
	}
	if got := testutil.ToFloat64(trialsEndedTotal.WithLabelValues("reverted")) - reverted; got != 1 {
		t.Errorf("a canary trial that went with its lease: trials reverted %v, want 1", got)
	}
	for _, want := range []string{
		"app.example.org: trial of green until 2026-11-24T12:13:00Z, canary 30 (revision 10)",
		"app.example.org: canary 0 -> 30 (revision 10)",
		"app.example.org: canary 30 -> 0 (revision 11)",
	} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
}

// A trial the plugin cannot take is ignored, and says why: the name answers
// its active colour. A refused put ends a trial that was answered: the
// active colour is always a safe answer, a stale trial is not.
func TestStoreTrialRefused(t *testing.T) {
	for _, tc := range []struct {
		keys  []string
		trial keyValue
		why   string
	}{
		{[]string{"active=blue", "blue=10.0.1.1"}, keyValue{value: "green until=2026-11-24T12:13:00Z", lease: 1}, "ignored=trial: green has no target"},
		{[]string{"blue=10.0.1.1", "green=10.0.2.1"}, keyValue{value: "green until=2026-11-24T12:13:00Z", lease: 1}, "ignored=trial: the name is not served"},
		{[]string{"active=blue", "blue=10.0.1.1", "green=10.0.2.1"}, keyValue{value: "green until=2026-11-24T12:13:00Z"}, "ignored=trial: the trial key has no lease"},
		{[]string{"active=blue", "blue=10.0.1.1", "green=10.0.2.1"}, keyValue{value: "green until=2026-11-24T12:13:00Z ttl=99999", lease: 1}, "ignored=trial: trial \"green until=2026-11-24T12:13:00Z ttl=99999\": ttl 99999 is above the maximum of 3600 seconds"},
	} {
		snap := new(atomic.Pointer[snapshot])
		s := testStore(t, snap)
		var kvs []string
		for _, k := range tc.keys {
			kvs = append(kvs, "app.example.org/"+k)
		}
		s.replace(keyValues(5, kvs...), 5)
		tc.trial.key, tc.trial.rev = "/bluegreen/app.example.org/trial", 6
		s.apply([]keyValue{tc.trial})
		if e := snap.Load().get(app); e.trial != nil || (e.serving() && e.active != schema.Blue) || !strings.Contains(txtOf(e), tc.why) {
			t.Errorf("%v with trial %q: trial %v, active %s, TXT %s; want %q", tc.keys, tc.trial.value, e.trial, e.active, txtOf(e), tc.why)
		}
	}

	snap := new(atomic.Pointer[snapshot])
	s := testStore(t, snap)
	s.replace(keyValues(5, "app.example.org/active=blue", "app.example.org/blue=10.0.1.1", "app.example.org/green=10.0.2.1"), 5)
	s.apply([]keyValue{{key: "/bluegreen/app.example.org/trial", value: "green until=2026-11-24T12:13:00Z", rev: 6, lease: 1}})
	s.apply([]keyValue{{key: "/bluegreen/app.example.org/trial", value: "green until=soon", rev: 7, lease: 1}})
	if e := snap.Load().get(app); e.active != schema.Blue || e.trial != nil {
		t.Errorf("after a bad put of the trial: active %s, trial %v; want blue, no trial", e.active, e.trial)
	}
}

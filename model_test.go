package bluegreen

import (
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

const app = "app.example.org."

func testModel() *model { return newModel("/bluegreen/", []string{"example.org."}, 30) }

// put applies puts of "field=value" pairs for app, one revision each.
func put(m *model, rev int64, pairs ...string) {
	for _, p := range pairs {
		f, v, _ := strings.Cut(p, "=")
		m.put("/bluegreen/app.example.org/"+f, v, rev)
		rev++
	}
}

func TestModelServesOnceActiveHasTarget(t *testing.T) {
	m := testModel()
	put(m, 2, "active=green", "blue=10.0.1.1")
	if e := m.entry(app); e != nil {
		t.Fatalf("served with active=green and no green target: %+v", e)
	}
	put(m, 4, "green=app-v2.example.net")
	e := m.entry(app)
	if e == nil || e.active != green || e.targets[green].cname != "app-v2.example.net." || e.ttl != 30 {
		t.Fatalf("entry = %+v, want green, CNAME app-v2.example.net., ttl 30", e)
	}
	put(m, 5, "ttl=5")
	if e := m.entry(app); e.ttl != 5 {
		t.Errorf("ttl = %d after ttl=5", e.ttl)
	}
	m.del("/bluegreen/app.example.org/ttl", 6)
	if e := m.entry(app); e.ttl != 30 {
		t.Errorf("ttl = %d after deleting the ttl key, want the default 30", e.ttl)
	}
}

func TestModelKeepsLastGoodValue(t *testing.T) {
	m := testModel()
	put(m, 2, "active=blue", "blue=10.0.1.1", "green=10.0.2.1", "ttl=60")
	before := testutil.ToFloat64(invalidValuesTotal)

	put(m, 10, "active=purple", "blue=10.0.1.999", "ttl=soon")
	e := m.entry(app)
	if e == nil || e.active != blue || e.targets[blue].raw != "10.0.1.1" || e.ttl != 60 {
		t.Fatalf("entry = %+v, want the last good state (blue 10.0.1.1, ttl 60)", e)
	}
	for _, want := range []string{`stale=active: "purple" is not a colour`, `stale=blue: "10.0.1.999"`, `stale=ttl: "soon"`} {
		if !slices.ContainsFunc(e.stateTXT(), func(s string) bool { return strings.HasPrefix(s, want) }) {
			t.Errorf("TXT state %q lacks %q", e.stateTXT(), want)
		}
	}
	if got := testutil.ToFloat64(invalidValuesTotal) - before; got != 3 {
		t.Errorf("invalid values counted %v times, want 3", got)
	}

	// Building the entry again, as a later event does, counts nothing more.
	m.entry(app)
	if got := testutil.ToFloat64(invalidValuesTotal) - before; got != 3 {
		t.Errorf("invalid values counted %v times after a rebuild, want still 3", got)
	}

	put(m, 20, "active=green")
	if e := m.entry(app); e.active != green || slices.ContainsFunc(e.stateTXT(), func(s string) bool { return strings.HasPrefix(s, "stale=active") }) {
		t.Errorf("a good active value after a bad one: entry %+v", e)
	}
}

func TestModelActiveWithoutTargetKeepsServedColour(t *testing.T) {
	m := testModel()
	put(m, 2, "active=blue", "blue=10.0.1.1")
	m.entry(app)
	put(m, 4, "active=green")
	e := m.entry(app)
	if e == nil || e.active != blue {
		t.Fatalf("entry = %+v, want blue kept while green has no target", e)
	}
	if !slices.Contains(e.stateTXT(), "stale=active: green has no target") {
		t.Errorf("TXT state %q does not say why", e.stateTXT())
	}
	put(m, 5, "green=10.0.2.1")
	if e := m.entry(app); e.active != green {
		t.Errorf("active = %v once green has a target, want green", e.active)
	}
}

func TestModelDeletes(t *testing.T) {
	m := testModel()
	put(m, 2, "active=blue", "blue=10.0.1.1", "green=10.0.2.1")
	m.del("/bluegreen/app.example.org/green", 5)
	e := m.entry(app)
	if e == nil || e.targets[green].set() {
		t.Fatalf("after deleting green: entry %+v, want served with green unset", e)
	}
	m.del("/bluegreen/app.example.org/active", 6)
	if e := m.entry(app); e != nil {
		t.Errorf("served after its active key was deleted: %+v", e)
	}
	m.del("/bluegreen/app.example.org/blue", 7)
	if len(m.names) != 0 {
		t.Errorf("model still holds %d names after every key was deleted", len(m.names))
	}
}

func TestModelIgnoresKeysOutsideLayoutOrZones(t *testing.T) {
	m := testModel()
	before := testutil.ToFloat64(invalidValuesTotal)
	for _, key := range []string{
		"/bluegreen/app.example.net/active",  // outside the zone
		"/bluegreen/app.example.org",         // no field
		"/bluegreen/APP.example.org/active",  // not lowercase
		"/bluegreen/app.example.org./active", // trailing dot
	} {
		if name := m.put(key, "blue", 3); name != "" {
			t.Errorf("put(%q) touched %q, want ignored", key, name)
		}
	}
	if got := testutil.ToFloat64(invalidValuesTotal) - before; got != 4 {
		t.Errorf("counted %v ignored keys, want 4", got)
	}
	if len(m.names) != 0 {
		t.Errorf("model holds %d names, want none", len(m.names))
	}
}

func TestModelShowsUnknownKeysOfAName(t *testing.T) {
	m := testModel()
	put(m, 2, "active=blue", "blue=10.0.1.1", "green=10.0.2.1", "actve=green")
	e := m.entry(app)
	if e == nil || e.active != blue || !slices.Contains(e.stateTXT(), "stale=actve: unknown field, want active, blue, green, ttl, canary or check") {
		t.Fatalf("entry %+v: want blue served and the mistyped key in the TXT state", e)
	}
	m.del("/bluegreen/app.example.org/actve", 9)
	if e := m.entry(app); slices.ContainsFunc(e.stateTXT(), func(s string) bool { return strings.HasPrefix(s, "stale=") }) {
		t.Errorf("TXT state %q after deleting the mistyped key", e.stateTXT())
	}
}

func TestStateTXT(t *testing.T) {
	m := testModel()
	put(m, 41, "active=green", "blue=10.0.1.100,10.0.1.101", "green=app-v2.example.net")
	want := []string{"active=green", "blue=10.0.1.100,10.0.1.101", "green=app-v2.example.net", "ttl=30", "canary=0", "revision=43"}
	if e := m.entry(app); !slices.Equal(e.stateTXT(), want) {
		t.Errorf("TXT = %q, want %q", e.stateTXT(), want)
	}
	long := splitTXT([]string{strings.Repeat("x", 600)})
	if len(long) != 3 || len(long[0]) != 255 || len(long[2]) != 90 {
		t.Errorf("splitTXT of 600 octets gave pieces of %d", len(long))
	}
}

// What checks found and the canary meet in the entry: a colour that is down
// gets no canary clients, and a failover pauses the split.
func TestModelChecksAndCanary(t *testing.T) {
	m := testModel()
	put(m, 2, "active=blue", "blue=10.0.1.1,10.0.1.2", "canary=10", "check=tcp://:80")
	txt := func() string { return strings.Join(m.entry(app).stateTXT(), " ") }
	if e := m.entry(app); e.split != 0 || !strings.Contains(txt(), "canary=10 revision=5 canary_paused=green has no target check=tcp://:80") {
		t.Errorf("canary without an idle target: split %d, TXT %s", e.split, txt())
	}
	put(m, 6, "green=10.0.2.1")
	if e := m.entry(app); e.split != 10 || strings.Contains(txt(), "canary_paused") {
		t.Errorf("canary with both colours up: split %d, TXT %s", e.split, txt())
	}

	m.down[app] = map[string]bool{"10.0.2.1": true}
	if e := m.entry(app); e.split != 0 || e.failover || !strings.Contains(txt(), "canary_paused=green is down check=tcp://:80 down=10.0.2.1") {
		t.Errorf("idle colour down: split %d, failover %v, TXT %s", e.split, e.failover, txt())
	}
	m.failover = false
	if e := m.entry(app); e.split != 10 {
		t.Errorf("idle colour down, failover off: split %d, want the canary as set", e.split)
	}
	m.failover = true

	m.down[app] = map[string]bool{"10.0.1.1": true, "10.0.1.2": true}
	e := m.entry(app)
	if !e.isDown(blue) || e.isDown(green) {
		t.Errorf("isDown: blue %v, green %v; want blue only", e.isDown(blue), e.isDown(green))
	}
	if !e.failover || e.answering() != green || e.split != 0 || len(e.targets[blue].a) != 2 ||
		!strings.Contains(txt(), "canary_paused=failover check=tcp://:80 down=10.0.1.1 down=10.0.1.2 failover=blue is down, answering green") {
		t.Errorf("active colour down: failover %v to %s, split %d, TXT %s", e.failover, e.answering(), e.split, txt())
	}
	m.failover = false
	if e := m.entry(app); e.failover || e.answering() != blue || len(e.targets[blue].a) != 2 {
		t.Errorf("active colour down, failover off: failover %v, answering %s with %d addresses; want all of blue", e.failover, e.answering(), len(e.targets[blue].a))
	}
}

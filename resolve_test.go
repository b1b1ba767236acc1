package bluegreen

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const app = "app.example.org."

var testPolicy = policy{ttl: 30, maxTTL: schema.DefaultMaxTTL, failover: true}

// healthMap is what checks found, by address, as a test sets it.
type healthMap map[string]addrState

func (h healthMap) of(ip net.IP) addrState { return h[ip.String()] }

// keysOf builds app.example.org's keys from puts of "field=value", one
// revision each from rev, as the store records them; each key is on a
// lease, as a trial key must be.
func keysOf(t *testing.T, rev int64, pairs ...string) (*store, *nameKeys) {
	t.Helper()
	s := testStore(t, new(atomic.Pointer[snapshot]))
	put(s, rev, pairs...)
	return s, s.names[app]
}

func put(s *store, rev int64, pairs ...string) {
	for _, p := range pairs {
		f, v, _ := strings.Cut(p, "=")
		s.put(keyValue{key: "/bluegreen/app.example.org/" + f, value: v, rev: rev, lease: 1})
		rev++
	}
}

// txtOf is e's TXT state as one string.
func txtOf(e *entry) string { return strings.Join(e.stateTXT(e.rev, staleness{}), " ") }

func TestResolveServesOnceActiveHasTarget(t *testing.T) {
	s, k := keysOf(t, 2, "active=green", "blue=10.0.1.1")
	e := resolve(k, nil, testPolicy)
	if e.serving() || e.unserved != "active: green has no target" || !strings.Contains(txtOf(e), "ignored=active: green has no target") {
		t.Fatalf("active=green without a green target: unserved %q, TXT %s", e.unserved, txtOf(e))
	}
	put(s, 4, "green=app-v2.example.net")
	e = resolve(k, nil, testPolicy)
	if !e.serving() || e.active != schema.Green || e.targets[schema.Green].CNAME != "app-v2.example.net." || e.ttl != 30 || len(e.problems) != 0 {
		t.Fatalf("entry = %+v, want green, CNAME app-v2.example.net., ttl 30, no problems", e)
	}
	put(s, 5, "ttl=5")
	if e := resolve(k, nil, testPolicy); e.ttl != 5 || e.rev != 5 {
		t.Errorf("ttl %d, revision %d after ttl=5 at 5", e.ttl, e.rev)
	}
	s.del("/bluegreen/app.example.org/ttl", 6)
	if e := resolve(k, nil, testPolicy); e.ttl != 30 {
		t.Errorf("ttl = %d after deleting the ttl key, want the default 30", e.ttl)
	}
	s.del("/bluegreen/app.example.org/active", 7)
	if e := resolve(k, nil, testPolicy); e.serving() || e.unserved != "no active key" {
		t.Errorf("after deleting active: unserved %q, want retired", e.unserved)
	}
}

func TestResolveKeepsLastGoodValue(t *testing.T) {
	s, k := keysOf(t, 2, "active=blue", "blue=10.0.1.1", "green=10.0.2.1", "ttl=60")
	put(s, 10, "active=purple", "blue=10.0.1.999", "ttl=soon")
	e := resolve(k, nil, testPolicy)
	if !e.serving() || e.active != schema.Blue || e.targets[schema.Blue].Raw != "10.0.1.1" || e.ttl != 60 {
		t.Fatalf("entry = %+v, want the last good state (blue 10.0.1.1, ttl 60)", e)
	}
	want := []problem{
		{schema.FieldActive, 10, `"purple" is not a colour, want blue or green`},
		{schema.FieldBlue, 11, `"10.0.1.999" is neither an IP address nor a hostname`},
		{schema.FieldTTL, 12, `"soon" is not a TTL, want whole seconds from 0 to 3600`},
	}
	if !slices.Equal(e.problems, want) {
		t.Errorf("problems %+v, want %+v", e.problems, want)
	}
	if !strings.Contains(txtOf(e), `ignored=ttl: "soon" is not a TTL`) {
		t.Errorf("TXT state %s does not say why ttl is ignored", txtOf(e))
	}
	put(s, 20, "active=green")
	if e := resolve(k, nil, testPolicy); e.active != schema.Green || len(e.problems) != 2 {
		t.Errorf("a good active value after a bad one: %+v", e)
	}
}

// A name keeps answering the colour it answered while its active key names
// a colour without a target.
func TestResolveActiveWithoutTargetKeepsServedColour(t *testing.T) {
	s, k := keysOf(t, 2, "active=blue", "blue=10.0.1.1")
	k.served, k.serving = schema.Blue, true
	put(s, 4, "active=green")
	e := resolve(k, nil, testPolicy)
	if !e.serving() || e.active != schema.Blue || !strings.Contains(txtOf(e), "ignored=active: green has no target") {
		t.Fatalf("entry %+v, TXT %s: want blue kept, and why", e, txtOf(e))
	}
	put(s, 5, "green=10.0.2.1")
	if e := resolve(k, nil, testPolicy); e.active != schema.Green || len(e.problems) != 0 {
		t.Errorf("once green has a target: %+v, want green", e)
	}
}

// Deleting the active colour's target keeps the name answering it; deleting
// the idle colour's target removes it.
func TestResolveKeepsDeletedActiveTarget(t *testing.T) {
	s, k := keysOf(t, 2, "active=blue", "blue=10.0.1.1", "green=10.0.2.1")
	k.served, k.serving = schema.Blue, true
	s.del("/bluegreen/app.example.org/blue", 8)
	s.del("/bluegreen/app.example.org/green", 9)
	e := resolve(k, nil, testPolicy)
	if !e.serving() || e.targets[schema.Blue].Raw != "10.0.1.1" || e.targets[schema.Green].Set() {
		t.Fatalf("after deleting both targets: %+v, want blue's last target kept, green gone", e)
	}
	if want := (problem{schema.FieldBlue, 8, "deleted, but it is the active colour's target: answering its last value until active names the other colour, or is deleted to retire the name"}); !slices.Equal(e.problems, []problem{want}) {
		t.Errorf("problems %+v, want %+v", e.problems, want)
	}
	// Once the name answers the other colour, the kept target is gone: no
	// preview, no canary client, no target to flip back to.
	put(s, 10, "green=10.0.2.2", "active=green", "canary=20")
	e = resolve(k, nil, testPolicy)
	if e.active != schema.Green || e.targets[schema.Blue].Set() || e.share != 0 {
		t.Fatalf("flipped away from the deleted blue: %+v, want green, blue gone, no canary", e)
	}
	k.served = e.active
	put(s, 13, "active=blue")
	if e := resolve(k, nil, testPolicy); e.active != schema.Green || !strings.Contains(txtOf(e), "ignored=active: blue has no target") {
		t.Errorf("flip back to the deleted blue: %+v, want green kept", e)
	}
}

func TestResolveShowsUnknownKeys(t *testing.T) {
	s, k := keysOf(t, 2, "active=blue", "blue=10.0.1.1", "green=10.0.2.1", "actve=green")
	e := resolve(k, nil, testPolicy)
	if !e.serving() || e.active != schema.Blue || !strings.Contains(txtOf(e), "ignored=actve: unknown field, want active, blue, green, ttl, canary, check or trial") {
		t.Fatalf("entry %+v, TXT %s: want blue served and the mistyped key shown", e, txtOf(e))
	}
	s.del("/bluegreen/app.example.org/actve", 9)
	if e := resolve(k, nil, testPolicy); strings.Contains(txtOf(e), "ignored=") {
		t.Errorf("TXT state %s after deleting the mistyped key", txtOf(e))
	}
}

func TestStateTXT(t *testing.T) {
	_, k := keysOf(t, 41, "active=green", "blue=10.0.1.100,10.0.1.101", "green=app-v2.example.net")
	want := []string{"active=green", "blue=10.0.1.100,10.0.1.101", "green=app-v2.example.net", "ttl=30", "canary=0", "revision=43", "synced=50"}
	if got := resolve(k, nil, testPolicy).stateTXT(50, staleness{}); !slices.Equal(got, want) {
		t.Errorf("TXT = %q, want %q", got, want)
	}
}

// What checks found and the canary meet in the entry: a colour that is down
// gets no canary clients, and a failover pauses the split.
func TestResolveChecksAndCanary(t *testing.T) {
	s, k := keysOf(t, 2, "active=blue", "blue=10.0.1.1,10.0.1.2", "canary=10", "check=tcp://:80")
	if e := resolve(k, nil, testPolicy); e.share != 0 || !strings.Contains(txtOf(e), "canary=10 revision=5 synced=5 canary_paused=green has no target check=tcp://:80") {
		t.Errorf("canary without an idle target: share %d, TXT %s", e.share, txtOf(e))
	}
	put(s, 6, "green=10.0.2.1")
	if e := resolve(k, nil, testPolicy); e.share != 10 || strings.Contains(txtOf(e), "canary_paused") {
		t.Errorf("canary with both colours up: share %d, TXT %s", e.share, txtOf(e))
	}

	health := healthMap{"10.0.2.1": stateDown, "10.0.1.1": stateUp}
	if e := resolve(k, health, testPolicy); e.share != 0 || e.failover || !strings.Contains(txtOf(e), "canary_paused=green is down check=tcp://:80 down=10.0.2.1") {
		t.Errorf("idle colour down: share %d, failover %v, TXT %s", e.share, e.failover, txtOf(e))
	}
	if e := resolve(k, health, policy{ttl: 30}); e.share != 10 {
		t.Errorf("idle colour down, failover off: share %d, want the canary as set", e.share)
	}

	health = healthMap{"10.0.1.1": stateDown, "10.0.1.2": stateDown, "10.0.2.1": stateUp}
	e := resolve(k, health, testPolicy)
	if !e.isDown(schema.Blue) || e.isDown(schema.Green) {
		t.Errorf("isDown: blue %v, green %v; want blue only", e.isDown(schema.Blue), e.isDown(schema.Green))
	}
	if !e.failover || e.answering() != schema.Green || e.share != 0 || len(e.targets[schema.Blue].A) != 2 ||
		!strings.Contains(txtOf(e), "canary_paused=failover check=tcp://:80 failover=blue is down, answering green down=10.0.1.1 down=10.0.1.2") {
		t.Errorf("active colour down: failover %v to %s, share %d, TXT %s", e.failover, e.answering(), e.share, txtOf(e))
	}
	if e := resolve(k, health, policy{ttl: 30}); e.failover || e.answering() != schema.Blue || len(e.targets[schema.Blue].A) != 2 {
		t.Errorf("active colour down, failover off: failover %v, answering %s with %d addresses; want all of blue", e.failover, e.answering(), len(e.targets[schema.Blue].A))
	}
	health["10.0.1.2"] = stateUnknown
	if e := resolve(k, health, testPolicy); e.failover || len(e.targets[schema.Blue].A) != 1 {
		t.Errorf("one blue address not probed yet: failover %v, blue %v; want that address answered", e.failover, e.targets[schema.Blue].A)
	}
}

// A name never fails over to a colour that no probe has found up yet: at
// startup its probes may not have run.
func TestResolveNoFailoverToUnprobedColour(t *testing.T) {
	_, k := keysOf(t, 2, "active=blue", "blue=10.0.1.1", "green=10.0.2.1,10.0.2.2", "check=tcp://:80")
	health := healthMap{"10.0.1.1": stateDown}
	if e := resolve(k, health, testPolicy); e.failover {
		t.Error("failed over to green before any green address was found up")
	}
	health["10.0.2.2"] = stateUp
	if e := resolve(k, health, testPolicy); !e.failover || e.answering() != schema.Green || len(e.targets[schema.Green].A) != 2 {
		t.Errorf("green found up: failover %v, answering %s %v; want green, both addresses", e.failover, e.answering(), e.targets[schema.Green].A)
	}
}

// resolve logs nothing, counts nothing and changes nothing: called twice, it
// gives the same entry, and the keys are as they were, down to the order of
// a target's addresses, which the entry's down list shares.
func TestResolveIsPure(t *testing.T) {
	logs := captureLog(t)
	_, k := keysOf(t, 2, "active=green", "blue=10.0.1.3,10.0.1.1,10.0.1.2", "ttl=x", "canary=5", "check=tcp://:80")
	k.served, k.serving = schema.Blue, true
	before := *k
	invalid := testutil.ToFloat64(invalidValuesTotal)
	health := healthMap{"10.0.1.3": stateDown, "10.0.1.2": stateDown}
	first, second := resolve(k, health, testPolicy), resolve(k, health, testPolicy)
	if !reflect.DeepEqual(first, second) || !reflect.DeepEqual(before, *k) {
		t.Errorf("resolve is not pure: %+v then %+v; keys %+v then %+v", first, second, before, *k)
	}
	if got := fmt.Sprint(k.targets[schema.Blue].value.A, first.down); got != "[10.0.1.3 10.0.1.1 10.0.1.2] [10.0.1.2 10.0.1.3]" {
		t.Errorf("blue's addresses and the down ones: %s, want [10.0.1.3 10.0.1.1 10.0.1.2] [10.0.1.2 10.0.1.3]", got)
	}
	if got := testutil.ToFloat64(invalidValuesTotal) - invalid; got != 0 || logs.String() != "" {
		t.Errorf("resolve counted %v problems and logged %q", got, logs.String())
	}
}

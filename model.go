package bluegreen

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin"
)

// model is the watcher's own view of the prefix: every name's keys as etcd
// holds them, with the last value of each that parsed. Only the watcher
// goroutine uses it; what it publishes are immutable entries built from it.
type model struct {
	prefix string
	zones  []string
	ttl    uint32 // the Corefile's default
	names  map[string]*nameKeys

	// failover lets a name whose active colour is down answer the idle one.
	failover bool
	// down holds each checked name's addresses that fail their check, as
	// the checker reports them.
	down map[string]map[string]bool

	// reported holds the keys being ignored, with the revision already
	// logged, so that each problem is logged and counted once.
	reported map[string]int64
}

func newModel(prefix string, zones []string, ttl uint32) *model {
	return &model{prefix: prefix, zones: zones, ttl: ttl, names: map[string]*nameKeys{}, failover: true,
		down: map[string]map[string]bool{}, reported: map[string]int64{}}
}

// fresh returns an empty model with m's settings, for a new list; what was
// reported stays reported, and what checks found stays found. The list
// fills it while probes may still report to m, so it gets its own copy of
// what was reported; down is only read and written under the watcher's lock.
func (m *model) fresh() *model {
	f := newModel(m.prefix, m.zones, m.ttl)
	f.failover, f.down, f.reported = m.failover, m.down, maps.Clone(m.reported)
	return f
}

// ignore logs and counts a problem with key at revision rev, once.
func (m *model) ignore(key string, rev int64, err error) {
	if m.reported[key] == rev {
		return
	}
	m.reported[key] = rev
	invalidValuesTotal.Inc()
	log.Warningf("ignoring %v (revision %d)", err, rev)
}

// nameKeys is one name's keys. Each field keeps the last value that parsed,
// so a bad put leaves the name answering what it answered before.
type nameKeys struct {
	rev     int64         // newest revision that changed one of the keys
	active  field[colour] // the colour the active key asks for
	targets [2]field[target]
	ttl     field[uint32]
	canary  field[uint8]
	check   field[*check]     // a pointer: most names have none, and every name has the field
	unknown map[string]string // keys of unknown fields, by field, with why

	// served is the colour answered; it lags active while active names a
	// colour that has no target.
	served        colour
	serves        bool
	activeProblem string
}

type field[T any] struct {
	ok      bool // value holds the last value that parsed
	value   T
	rev     int64  // the key's mod revision
	problem string // why the key's current value is ignored, if it is
}

// put records a put of the field's key at revision rev, keeping the last
// good value when the new one does not parse.
func (f *field[T]) put(name, value string, rev int64, parse func(string) (T, error)) error {
	f.rev = rev
	v, err := parse(value)
	if err != nil {
		f.problem = name + ": " + err.Error()
		return err
	}
	f.ok, f.value, f.problem = true, v, ""
	return nil
}

// put applies a put of key at revision rev and returns the name the key
// belongs to, or "" when the key is ignored.
func (m *model) put(key, value string, rev int64) string {
	name, f, err := m.split(key)
	if err != nil {
		m.ignore(key, rev, err)
		return ""
	}
	n := m.names[name]
	if n == nil {
		n = &nameKeys{}
		m.names[name] = n
	}
	n.rev = max(n.rev, rev)
	value = strings.TrimSpace(value)
	switch f {
	case fieldActive:
		err = n.active.put(f, value, rev, parseColour)
	case fieldTTL:
		err = n.ttl.put(f, value, rev, parseTTL)
	case fieldCanary:
		err = n.canary.put(f, value, rev, parseCanary)
	case fieldCheck:
		err = n.check.put(f, value, rev, func(s string) (*check, error) {
			c, err := parseCheck(s)
			return &c, err
		})
	case fieldBlue, fieldGreen:
		c, _ := parseColour(f)
		err = n.targets[c].put(f, value, rev, parseTarget)
	default:
		// Most likely a typo, as of .../actve for .../active: the TXT
		// state shows it next to the name.
		err = errors.New("unknown field, want active, blue, green, ttl, canary or check")
		if n.unknown == nil {
			n.unknown = map[string]string{}
		}
		n.unknown[f] = f + ": " + err.Error()
	}
	if err != nil {
		m.ignore(key, rev, fmt.Errorf("key %q: %w", key, err))
	} else {
		delete(m.reported, key)
	}
	return name
}

// del applies a delete of key and returns the name it belonged to.
func (m *model) del(key string, rev int64) string {
	delete(m.reported, key)
	name, f, err := m.split(key)
	if err != nil {
		return ""
	}
	n := m.names[name]
	if n == nil {
		return ""
	}
	n.rev = max(n.rev, rev)
	switch f {
	case fieldActive:
		n.active = field[colour]{}
	case fieldTTL:
		n.ttl = field[uint32]{}
	case fieldCanary:
		n.canary = field[uint8]{}
	case fieldCheck:
		n.check = field[*check]{}
	case fieldBlue, fieldGreen:
		c, _ := parseColour(f)
		n.targets[c] = field[target]{}
	default:
		delete(n.unknown, f)
	}
	if n.active.rev == 0 && n.ttl.rev == 0 && n.targets[blue].rev == 0 && n.targets[green].rev == 0 &&
		n.canary.rev == 0 && n.check.rev == 0 && len(n.unknown) == 0 {
		delete(m.names, name)
	}
	return name
}

func (m *model) split(key string) (name, field string, err error) {
	name, field, err = splitKey(m.prefix, key)
	if err == nil && plugin.Zones(m.zones).Matches(name) == "" {
		err = fmt.Errorf("key %q: %s is outside the zones %s", key, name, strings.Join(m.zones, " "))
	}
	return name, field, err
}

// entry resolves the name's colour and builds what the handler answers; nil
// when the name is not served: it needs an active key naming a colour whose
// target is set.
func (m *model) entry(name string) *entry {
	n := m.names[name]
	if n == nil {
		return nil
	}
	n.activeProblem = ""
	switch {
	case !n.active.ok:
		n.serves = false
	case n.targets[n.active.value].ok:
		n.served, n.serves = n.active.value, true
	default:
		n.activeProblem = fmt.Sprintf("active: %s has no target", n.active.value)
		n.serves = n.serves && n.targets[n.served].ok
		key := m.prefix + strings.TrimSuffix(name, ".") + "/" + fieldActive
		m.ignore(key, n.active.rev, fmt.Errorf("key %q: %s has no target", key, n.active.value))
	}
	if !n.serves {
		return nil
	}
	e := &entry{active: n.served, ttl: m.ttl, rev: n.rev}
	if n.ttl.ok {
		e.ttl = n.ttl.value
	}
	if n.check.ok {
		e.check = n.check.value.raw
	}
	// Checks leave out the addresses that are down; a colour with none up
	// is down, and the name fails over from it when the other colour is up.
	down := m.down[name]
	var up [2]bool
	for _, c := range colours {
		if n.targets[c].ok {
			e.targets[c], up[c] = n.targets[c].value.without(down)
		}
	}
	idle := e.active.other()
	e.failover = m.failover && !up[e.active] && up[idle]
	for addr := range down {
		e.down = append(e.down, addr)
	}
	slices.Sort(e.down)

	if n.canary.ok {
		e.canary = n.canary.value
	}
	switch {
	case e.canary == 0 || e.failover:
	case !n.targets[idle].ok:
		key := m.prefix + strings.TrimSuffix(name, ".") + "/" + fieldCanary
		m.ignore(key, n.canary.rev, fmt.Errorf("key %q: %s has no target", key, idle))
	case m.failover && !up[idle]: // no canary client is sent to a colour that is down
	default:
		e.split = e.canary
	}
	for _, p := range []string{n.active.problem, n.activeProblem, n.targets[blue].problem, n.targets[green].problem,
		n.ttl.problem, n.canary.problem, n.check.problem} {
		if p != "" {
			e.problems = append(e.problems, p)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(n.unknown)) {
		e.problems = append(e.problems, n.unknown[f])
	}
	return e
}

// entries builds the entry of every name, nil for those not served.
func (m *model) entries() map[string]*entry {
	out := make(map[string]*entry, len(m.names))
	for name := range m.names {
		out[name] = m.entry(name)
	}
	return out
}

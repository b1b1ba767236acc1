package bluegreen

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unique"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/coredns/coredns/plugin"
)

// store is the one writer of what the plugin answers. It holds every name's
// keys as etcd has them and what checks found of their addresses, and
// publishes each change as a new immutable snapshot for the handler. It
// takes a full list of the prefix (replace), a watch response's events
// (apply), a probe's result (probed) and, at startup, what it held before
// (seed: the state file, or the instance a reload replaces), each under one
// lock. The logs of what changed, of ignored keys and of
// staleness, and the gauges, happen here, once.
type store struct {
	prefix string
	zones  []string
	policy policy
	snap   *atomic.Pointer[snapshot]
	listed chan struct{} // closed by the first list

	mu        sync.Mutex
	names     map[string]*nameKeys // by fully qualified name
	strays    map[string]stray     // keys under the prefix that are not a name's, by key
	below     map[string]int       // names published with keys below each name, up to its zone's apex
	problems  *burst               // the log of ignored keys
	probeLog  *burst               // the log of what checks found
	probes    *prober
	probeCfg  probeConfig
	watching  probeNames            // probe -> the names that watch it
	upTo      int64                 // the revision of etcd that what the store holds is complete up to
	synced    atomic.Int64          // upTo, for the TXT state to read without the lock
	applied   int64                 // the newest revision of a list or event applied: upTo but for progress notices
	lists     uint64                // lists replaced so far
	last      string                // the key changed last
	stale     [staleKinds]staleness // why the answers are stale, if they are
	staleFrom time.Time             // since when, through every reason; zero while they are current
	seeded    *seed                 // what was loaded before the first list
	closed    bool                  // shut down: a late probe or event changes nothing

	nameMetrics int                     // how many names may have answer counters of their own
	counted     map[string]*nameAnswers // those that have, by fully qualified name
	countedFull bool                    // a name was refused counters: logged once
	ignored     int                     // problems of the names published, for ignored_keys with the strays
}

// A stray is a key under the prefix that is not NAME/FIELD of a name in the
// zones.
type stray struct {
	rev int64
	err string
}

// keyValue is one key of a list, or one event of a watch.
type keyValue struct {
	key, value string
	rev        int64 // the key's mod revision; for a delete, the revision that deleted it
	lease      int64 // the lease the key is put on, 0 for none
	deleted    bool
}

// Reasons for the answers to be stale, each set and cleared on its own.
type staleKind int

const (
	staleSeeded staleKind = iota // answering a seed: etcd not listed yet
	staleNoWord                  // etcd does not answer
	staleResync                  // etcd holds something else than what is answered, until a list
	staleKinds
)

type staleness struct {
	since time.Time // zero while fresh
	why   string
}

func newStore(prefix string, zones []string, pol policy, pr *prober, probeCfg probeConfig, nameMetrics int, snap *atomic.Pointer[snapshot]) *store {
	s := &store{prefix: prefix, zones: zones, policy: pol, snap: snap, listed: make(chan struct{}), nameMetrics: nameMetrics, counted: map[string]*nameAnswers{},
		names: map[string]*nameKeys{}, strays: map[string]stray{}, below: map[string]int{},
		problems: &burst{what: "invalid values", warning: true, window: burstWindow}, probeLog: &burst{what: "health check results", window: burstWindow},
		probes: pr, probeCfg: probeCfg, watching: newProbeNames()}
	// Nothing is answered until the first list (or the snapshot file):
	// stale from the start, for the alert on stale answers to see a server
	// that never reaches etcd. The first list sets it right.
	staleSinceSeconds.WithLabelValues(prefix).Set(float64(time.Now().UnixNano()) / 1e9)
	// Counters with reasons exist from the start, at 0: increase() does not
	// see a series' first value, and a relist may happen once in a life.
	for _, reason := range relistReasons {
		relistsTotal.WithLabelValues(prefix, reason)
	}
	for _, outcome := range trialOutcomes {
		trialsEndedTotal.WithLabelValues(outcome)
	}
	return s
}

// replace swaps in a full list of the prefix read at revision rev, in one
// step: keys the store holds that the list lacks were deleted meanwhile.
// Each key goes through the same put and delete as a watch event, so that
// a name keeps its last good values, and the colour it answers, across lists.
func (s *store) replace(kvs []keyValue, rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return
	}
	first := s.upTo == 0
	quiet := s.snap.Load() == nil // the first list logs a summary, not every name
	held := len(s.names)+len(s.strays) > 0
	touched := map[string]bool{}
	for _, kv := range kvs {
		if name := s.put(kv); name != "" {
			touched[name] = true
		}
	}
	if held {
		s.deleteUnlisted(kvs, rev, touched)
	}
	s.upTo, s.applied = rev, rev
	s.lists++
	s.seeded = nil
	revision.WithLabelValues(s.prefix).Set(float64(rev))
	s.clearStale(staleSeeded, staleResync)
	if first {
		s.staleMetric() // current, unless the heartbeat already found otherwise
	}
	s.commit(touched, rev, quiet)
	s.synced.Store(rev) // once the answers are published: synced never runs ahead of them
	if first {
		log.Infof("synced %s at revision %d: names served: %d", s.prefix, rev, s.current().served)
		close(s.listed)
		return
	}
	log.Infof("listed %s again at revision %d: names served: %d", s.prefix, rev, s.current().served)
}

// deleteUnlisted deletes, at revision rev, every key held that kvs lacks:
// etcd deleted it while the store was not watching.
func (s *store) deleteUnlisted(kvs []keyValue, rev int64, touched map[string]bool) {
	listed := make(map[string]bool, len(kvs))
	for _, kv := range kvs {
		listed[kv.key] = true
	}
	for name, k := range s.names {
		for _, f := range k.presentFields() {
			if key := schema.Key(s.prefix, strings.TrimSuffix(name, "."), f); !listed[key] {
				s.del(key, rev)
				touched[name] = true
			}
		}
	}
	for key := range s.strays {
		if !listed[key] {
			delete(s.strays, key)
		}
	}
}

// apply applies the events of one watch response, which etcd never splits
// within a revision, and returns the newest revision among them: a
// transaction becomes visible whole.
func (s *store) apply(events []keyValue) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0
	}
	var rev int64
	touched := map[string]bool{}
	for _, ev := range events {
		rev = max(rev, ev.rev)
		var name string
		if ev.deleted {
			name = s.del(ev.key, ev.rev)
		} else {
			name = s.put(ev)
		}
		if name != "" {
			touched[name] = true
		}
	}
	s.applied = max(s.applied, rev)
	s.commit(touched, rev, false)
	s.advance(rev) // once the answers are published: synced never runs ahead of them
	return rev
}

// progressed records that etcd has sent every event up to revision rev.
func (s *store) progressed(rev int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closed {
		s.advance(rev)
	}
}

// advance moves upTo on to rev.
func (s *store) advance(rev int64) {
	if rev > s.upTo {
		s.upTo = rev
		s.synced.Store(rev)
		revision.WithLabelValues(s.prefix).Set(float64(rev))
	}
}

// A seed is what the store held before its first list: the state file, or
// what the instance that a reload replaces answers.
type seed struct {
	names map[string]bool // the names it holds
	rev   int64
	since time.Time // what it says is stale since then
	why   string
}

// seed loads f into the store as the base that the first list is applied
// to, so that each name keeps, across a restart or a reload, the last good
// value of each key and the colour it answered (when etcd names a colour
// without a target, say). Names outside the zones are left out. It answers
// nothing until serveSeed, or the first list.
func (s *store) seed(f *stateFile, since time.Time, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.upTo != 0 {
		return
	}
	sd := &seed{names: map[string]bool{}, rev: f.Revision, since: since, why: why}
	for name, keys := range f.Names {
		if plugin.Zones(s.zones).Matches(name+".") == "" || schema.ValidateName(name) != nil {
			continue
		}
		for field, value := range keys {
			s.put(keyValue{key: schema.Key(s.prefix, name, field), value: value, rev: f.Revision})
		}
		sd.names[name+"."] = true
		s.resolve(name+".", s.names[name+"."]) // the colour it answered
	}
	s.seeded = sd
}

// serveSeed answers what seed loaded, stale since it says, until the first
// list; it reports false if there is nothing to answer or a list came first.
func (s *store) serveSeed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	sd := s.seeded
	if s.closed || s.upTo != 0 || sd == nil {
		return false
	}
	revision.WithLabelValues(s.prefix).Set(float64(sd.rev))
	s.setStale(staleSeeded, sd.since, sd.why)
	s.commit(sd.names, sd.rev, true)
	return true
}

// probed publishes the answers of every name that watches k without its
// address, or with it again: probes found it up or down, after was.
func (s *store) probed(k probeKey, was addrState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := s.watching.of(k)
	if s.closed || len(names) == 0 {
		return // no longer watched
	}
	state, c := s.probes.state(k), s.probes.how(k).check
	changes := make(map[string]*entry, len(names))
	for _, n := range names {
		changes[n.name] = s.resolve(n.name, n)
	}
	if state == stateDown || was == stateDown { // an address found up at startup is no news
		s.probeLog.printf("%s is %s (check %s of %d names)", net.JoinHostPort(k.ip().String(), c.Port), result(state == stateUp), c, len(names))
	}
	old := s.current()
	s.publish(old, old.rev, changes, false)
}

// stopProbes stops watching every probe, and waits for the runs in flight
// of those no one else watches.
func (s *store) stopProbes() {
	s.mu.Lock()
	var running []<-chan struct{}
	for _, k := range s.names {
		for _, key := range k.probes {
			if done := s.probes.unwatch(key, s); done != nil {
				running = append(running, done)
			}
		}
		k.probes, k.watcher = nil, 0
	}
	s.watching = newProbeNames()
	s.mu.Unlock()
	for _, done := range running {
		<-done
	}
}

// A sample is one key the store holds, for the heartbeat to compare with
// what etcd holds at revision applied.
type sample struct {
	key     string // "" when the store holds no key
	modRev  int64  // the key's mod revision, 0 for a key deleted
	applied int64  // the newest revision of the list or events applied
	upTo    int64  // that, or a later revision a progress notice says nothing changed up to
	list    uint64 // the list the store holds the key from
}

// sample returns the key changed last, or another one.
func (s *store) sample(changedLast bool) sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	sm := sample{key: s.last, applied: s.applied, upTo: s.upTo, list: s.lists}
	if !changedLast || sm.key == "" {
		sm.key = s.anyKey()
	}
	if st, ok := s.strays[sm.key]; ok {
		sm.modRev = st.rev
	} else if name, field, err := s.parseKey(sm.key); err == nil && s.names[name] != nil {
		sm.modRev = s.names[name].fieldRev(field)
	}
	return sm
}

// stillList reports whether list is still the list the store holds.
func (s *store) stillList(list uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lists == list
}

// anyKey is a key the store holds; Go starts each walk of a map at a random
// place.
func (s *store) anyKey() string {
	for name, k := range s.names {
		if f := k.presentFields(); len(f) > 0 {
			return schema.Key(s.prefix, strings.TrimSuffix(name, "."), f[0])
		}
	}
	for key := range s.strays {
		return key
	}
	return ""
}

// setStale records that the answers are stale for reason kind since the
// given time, and says so in the log and the metric; the next snapshot
// published says so in the TXT state. It reports whether anything changed.
func (s *store) setStale(kind staleKind, since time.Time, why string) bool {
	if s.closed || s.stale[kind] == (staleness{since, why}) {
		return false
	}
	s.stale[kind] = staleness{since, why}
	if s.staleFrom.IsZero() || since.Before(s.staleFrom) {
		s.staleFrom = since
	}
	log.Warningf("answers for %s are stale since %s: %s", s.prefix, since.Format(time.RFC3339Nano), why)
	s.staleMetric()
	return true
}

// clearStale clears the given reasons; once none is left the answers are
// current, and the log says for how long they were not. It reports whether
// anything changed.
func (s *store) clearStale(kinds ...staleKind) bool {
	if s.closed || s.staleFrom.IsZero() {
		return false
	}
	cleared := false
	for _, k := range kinds {
		cleared = cleared || s.stale[k] != (staleness{})
		s.stale[k] = staleness{}
	}
	if !cleared || slices.ContainsFunc(s.stale[:], func(st staleness) bool { return st != (staleness{}) }) {
		return cleared // a reason is left: still stale since staleFrom
	}
	log.Infof("answers for %s are current again (revision %d): they were stale for %v", s.prefix, s.upTo, time.Since(s.staleFrom).Round(time.Millisecond))
	s.staleFrom = time.Time{}
	s.staleMetric()
	return true
}

func (s *store) staleMetric() {
	var since float64
	if !s.staleFrom.IsZero() {
		since = float64(s.staleFrom.UnixNano()) / 1e9
	}
	staleSinceSeconds.WithLabelValues(s.prefix).Set(since)
}

// republish publishes the answers again as they are, for the TXT state to
// say what changed of their staleness.
func (s *store) republish() {
	if s.snap.Load() != nil { // else nothing is answered yet
		old := s.current()
		s.publish(old, old.rev, nil, true)
	}
}

// staleness is what the snapshot tells queries: since when, and every why.
func (s *store) staleness() staleness {
	var whys []string
	for _, st := range s.stale {
		if st.why != "" {
			whys = append(whys, st.why)
		}
	}
	return staleness{since: s.staleFrom, why: strings.Join(whys, "; ")}
}

// markStale and markFresh are setStale and clearStale for the heartbeat,
// which holds no lock of its own.
func (s *store) markStale(kind staleKind, since time.Time, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.setStale(kind, since, why) {
		s.republish()
	}
}

// markResync marks the answers stale until the next list, for what the
// heartbeat found of the given list, unless a list since has answered it.
func (s *store) markResync(list uint64, since time.Time, why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lists == list && s.setStale(staleResync, since, why) {
		s.republish()
	}
}

func (s *store) markFresh(kind staleKind) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.clearStale(kind) {
		s.republish()
	}
}

// close stops the store from changing anything: at shutdown, a probe or an
// event that waited for the lock must not publish, log, or set gauges that
// the instance taking over after a reload now owns.
func (s *store) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
}

// parseKey splits a key into the fully qualified name and the field, and
// refuses names outside the zones.
func (s *store) parseKey(key string) (name, field string, err error) {
	name, field, err = schema.ParseKey(s.prefix, key)
	if err != nil {
		return "", "", err
	}
	name += "."
	if plugin.Zones(s.zones).Matches(name) == "" {
		return "", "", fmt.Errorf("key %q: %s is outside the zones %s", key, name, strings.Join(s.zones, " "))
	}
	return name, field, nil
}

// put records the put of a key and returns the name the key belongs to, or
// "" for a stray key, which it logs and counts once per revision.
func (s *store) put(kv keyValue) string {
	key, value, rev := kv.key, kv.value, kv.rev
	s.last = key
	name, f, err := s.parseKey(key)
	if err != nil {
		if st, ok := s.strays[key]; !ok || st.rev != rev {
			s.strays[key] = stray{rev: rev, err: err.Error()}
			invalidValuesTotal.Inc()
			s.problems.printf("ignoring %v (revision %d)", err, rev) // err names the key
		}
		return ""
	}
	k := s.names[name]
	if k == nil {
		k = &nameKeys{name: name}
		s.names[name] = k
	}
	switch f {
	case schema.FieldActive:
		k.active.put(value, rev, schema.ParseColour)
	case schema.FieldBlue, schema.FieldGreen:
		c, _ := schema.ParseColour(f)
		k.targets[c].put(value, rev, s.targetParser(name))
	case schema.FieldTTL:
		k.ttl.put(value, rev, func(v string) (uint32, error) { return schema.ParseTTL(v, s.policy.maxTTL) })
	case schema.FieldCanary:
		k.canary.put(value, rev, schema.ParseCanary)
	case schema.FieldCheck:
		k.check.put(value, rev, func(v string) (unique.Handle[schema.Check], error) {
			c, err := schema.ParseCheck(v)
			return unique.Make(c), err
		})
	case schema.FieldTrial:
		k.trial.put(value, rev, func(v string) (schema.Trial, error) { return schema.ParseTrial(v, kv.lease, s.policy.maxTTL) })
		k.trial.ok = k.trial.err == "" // a trial refused ends: the active colour is always a safe answer
	default:
		if k.unknown == nil {
			k.unknown = map[string]field[struct{}]{}
		}
		k.unknown[f] = field[struct{}]{present: true, rev: rev}
	}
	return k.name
}

// targetParser parses a target of name: at a zone apex, a hostname cannot be
// answered, since a CNAME cannot sit beside the zone's SOA (RFC 1034).
func (s *store) targetParser(name string) func(string) (schema.Target, error) {
	return func(v string) (schema.Target, error) {
		t, err := schema.ParseTarget(v)
		if err == nil && t.CNAME != "" && plugin.Zones(s.zones).Matches(name) == name {
			err = fmt.Errorf("%q is a hostname, but %s is a zone apex, where a CNAME cannot sit beside the SOA; give addresses", t.Raw, name)
		}
		return t, err
	}
}

// del records a delete of key at revision rev and returns the name the key
// belonged to.
func (s *store) del(key string, rev int64) string {
	s.last = key
	name, f, err := s.parseKey(key)
	if err != nil {
		delete(s.strays, key)
		return ""
	}
	k := s.names[name]
	if k == nil {
		return ""
	}
	switch f {
	case schema.FieldActive:
		k.active.del(rev, false)
	case schema.FieldBlue, schema.FieldGreen:
		c, _ := schema.ParseColour(f)
		k.targets[c].del(rev, true) // resolve keeps it in use if the name answers it
	case schema.FieldTTL:
		k.ttl.del(rev, false)
	case schema.FieldCanary:
		k.canary.del(rev, false)
	case schema.FieldCheck:
		k.check.del(rev, false)
	case schema.FieldTrial:
		k.trial.del(rev, false)
	default:
		delete(k.unknown, f)
	}
	return k.name
}

// commit resolves the names touched, starts and stops their probes, and
// publishes them at revision rev; a name whose keys are all gone goes, or
// stays as an empty non-terminal while names below it have keys.
func (s *store) commit(touched map[string]bool, rev int64, quiet bool) {
	old := s.current()
	changes := make(map[string]*entry, len(touched))
	for name := range touched {
		k := s.names[name]
		held := k // with the probes it watched
		if k != nil && k.empty() {
			delete(s.names, name)
			k = nil
		}
		e := s.resolve(name, k)
		if held != nil && s.syncProbes(held) {
			e = s.resolve(name, k)
		}
		was := old.get(name)
		if (was != nil && was != emptyNonTerminal) != (e != nil) {
			s.countBelow(name, e != nil, changes)
		}
		if e == nil && s.below[name] > 0 {
			e = emptyNonTerminal
		}
		changes[name] = e
		if was != nil && e != nil && e.active != was.active {
			// Switched: the new colour's backends may have come back
			// since they were found down, as they do when a release
			// deploys them; probe them now, not an interval later.
			for _, key := range k.probes {
				s.probes.hurry(key)
			}
		}
	}
	s.publish(old, rev, changes, quiet)
}

// countBelow counts name, which now has keys or no longer has, at each name
// between it and its zone's apex, and makes those without keys of their
// own empty non-terminals or nothing.
func (s *store) countBelow(name string, added bool, changes map[string]*entry) {
	zone := plugin.Zones(s.zones).Matches(name)
	for _, parent := range ancestors(name, zone) {
		if added {
			s.below[parent]++
		} else if s.below[parent]--; s.below[parent] == 0 {
			delete(s.below, parent)
		}
		if s.names[parent] != nil {
			continue // a name with keys of its own
		}
		if s.below[parent] > 0 {
			changes[parent] = emptyNonTerminal
		} else {
			changes[parent] = nil
		}
	}
}

// ancestors are the names strictly between name and zone, its apex.
func ancestors(name, zone string) []string {
	var out []string
	for {
		_, parent, _ := strings.Cut(name, ".")
		if len(parent) <= len(zone) {
			return out
		}
		out = append(out, parent)
		name = parent
	}
}

// resolve builds name's entry, and remembers the colour it answers.
func (s *store) resolve(name string, k *nameKeys) *entry {
	if k == nil {
		delete(s.counted, name)
		return nil
	}
	var h health
	if len(k.probes) > 0 {
		h = probeHealth{k.probes, s.probes}
	}
	e := resolve(k, h, s.policy)
	k.served, k.serving = e.active, e.serving()
	e.answers = s.answersOf(name)
	return e
}

// answersOf is name's answer counters, which every entry of the name
// shares: made for the first name_metrics names the store resolves (at the
// first list, in no particular order), kept until the name goes. The
// limit bounds the per-name series a scrape returns, however many names
// etcd holds; the others are counted in answers_total alone.
func (s *store) answersOf(name string) *nameAnswers {
	if a, ok := s.counted[name]; ok {
		return a
	}
	if len(s.counted) >= s.nameMetrics {
		if s.nameMetrics > 0 && !s.countedFull {
			s.countedFull = true
			log.Warningf("%s: name_metrics %d reached: %s and the names after it have no answer series of their own", s.prefix, s.nameMetrics, strings.TrimSuffix(name, "."))
		}
		return nil
	}
	a := new(nameAnswers)
	s.counted[name] = a
	return a
}

// probeHealth is what the probes a name watches found of its addresses.
// The prober holds each address's state once, however many names share
// it: a copy per name would be ten thousand small maps for every garbage
// collection to walk, and longer GC marks are slower queries.
type probeHealth struct {
	keys []probeKey // one per address checked
	pr   *prober
}

func (h probeHealth) of(ip net.IP) addrState {
	ip = ip.To16()
	for _, k := range h.keys {
		if len(ip) == net.IPv6len && k.addr == [16]byte(ip) {
			return h.pr.state(k)
		}
	}
	return stateUnknown
}

// publish swaps in old with changes applied at revision rev, and logs what
// changed for queries, unless quiet.
func (s *store) publish(old *snapshot, rev int64, changes map[string]*entry, quiet bool) {
	for name, e := range changes { // fresh from resolve: not published yet, still the store's to fill in
		was := old.get(name)
		if e != nil {
			s.ignored += len(e.problems)
		}
		if was != nil {
			s.ignored -= len(was.problems)
		}
		if e != nil && was != nil && e != emptyNonTerminal {
			e.failovers = was.failovers
			if e.failover && !was.failover {
				e.failovers++
			}
		}
	}
	next := old.with(rev, changes)
	next.stale = s.staleness()
	s.snap.Store(next)
	namesManaged.WithLabelValues(s.prefix).Set(float64(next.served))
	ignoredKeys.WithLabelValues(s.prefix).Set(float64(s.ignored + len(s.strays)))
	for name, e := range changes {
		was := old.get(name)
		if was == emptyNonTerminal { // nothing to log of a name without keys
			was = nil
		}
		if e == emptyNonTerminal {
			e = nil
		}
		logProblems(s.problems, s.prefix, name, was, e)
		if !quiet {
			logChanges(name, was, e, rev)
		}
	}
}

// current is the published snapshot, or an empty one before the first.
func (s *store) current() *snapshot {
	if snap := s.snap.Load(); snap != nil {
		return snap
	}
	return &snapshot{}
}

// syncProbes makes k's name watch the probes of the addresses its keys
// check, and stop watching the others. It reports whether a probe it now
// watches already knows its address's state, found for another name: the
// name must then be resolved again. An address whose check changed stays
// down until the new check finds it up: editing a check puts no dead
// backend back.
func (s *store) syncProbes(k *nameKeys) (known bool) {
	checked := k.check.ok && k.check.present
	have := k.probes
	if have == nil && !checked {
		return false // never checked: the common case, kept cheap
	}
	// Slices, not maps: a name has a few addresses, and ten thousand
	// checked names should cost little memory.
	var want []probeKey
	if checked {
		how := newProbeHow(k.name, k.check.value.Value(), s.probeCfg)
		for _, c := range schema.Colours {
			if !k.usable(c) {
				continue
			}
			for _, addr := range k.targets[c].value.Addresses() {
				ip, err := netip.ParseAddr(addr)
				if err != nil || !s.policy.mayProbe(addr) || slices.ContainsFunc(want, func(o probeKey) bool { return o.addr == ip.As16() }) {
					continue // one probe of an address in both colours
				}
				// Watched again if held: the new probes first, while
				// the old ones still say what they found, and no probe
				// the name keeps stops on the way.
				down := slices.ContainsFunc(have, func(o probeKey) bool { return o.addr == ip.As16() && s.probes.state(o) == stateDown })
				key, state := s.probes.watch(ip, how, s, down)
				want = append(want, key)
				if !slices.Contains(have, key) {
					s.watching.add(key, k)
					known = known || state != stateUnknown
				}
			}
		}
	}
	for _, key := range have {
		s.probes.unwatch(key, s) // a run in flight ends on its own
		if slices.Contains(want, key) {
			continue
		}
		s.watching.remove(key, k)
	}
	if k.probes = want; len(want) == 0 {
		s.watching.forget(k)
	}
	return known
}

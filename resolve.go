package bluegreen

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// policy is what the Corefile sets that bears on what a name answers.
type policy struct {
	ttl       uint32   // for names without a ttl key
	maxTTL    uint32   // the largest ttl key taken
	failover  bool     // a name whose active colour is down may answer the idle one
	checkNets networks // the networks checks may reach; nil for the default
}

// mayProbe reports whether checks may reach addr: one of the check
// networks, or by default any address but link-local ones (a target is
// never an unspecified, broadcast or multicast address).
func (p policy) mayProbe(addr string) bool {
	ip, err := netip.ParseAddr(addr)
	switch {
	case err != nil:
		return false
	case p.checkNets != nil:
		return p.checkNets.contains(ip)
	}
	return !ip.IsLinkLocalUnicast()
}

// addrState is what checks know of one address.
type addrState uint8

const (
	stateUnknown addrState = iota // not probed enough yet: answered, but no colour fails over to it
	stateUp
	stateDown
)

// health is what checks found of a name's addresses; nil when none is
// checked.
type health interface{ of(ip net.IP) addrState }

// resolve is what a name's keys make it answer, given what checks found of
// its addresses: the colour, the targets without the addresses that are
// down, the canary share in effect, and why any key is not taken. It is a
// pure function: it logs nothing, counts nothing and changes nothing.
func resolve(k *nameKeys, h health, pol policy) *entry {
	e := &entry{ttl: pol.ttl, rev: k.rev()}
	addProblem := func(field string, rev int64, why string) {
		e.problems = append(e.problems, problem{field: field, rev: rev, why: why})
	}
	for _, f := range []struct {
		name string
		rev  int64
		err  string
	}{
		{schema.FieldActive, k.active.rev, k.active.err},
		{schema.FieldBlue, k.targets[schema.Blue].rev, k.targets[schema.Blue].err},
		{schema.FieldGreen, k.targets[schema.Green].rev, k.targets[schema.Green].err},
		{schema.FieldTTL, k.ttl.rev, k.ttl.err},
		{schema.FieldCanary, k.canary.rev, k.canary.err},
		{schema.FieldCheck, k.check.rev, k.check.err},
		{schema.FieldTrial, k.trial.rev, k.trial.err},
	} {
		if f.err != "" {
			addProblem(f.name, f.rev, f.err)
		}
	}
	for _, f := range slices.Sorted(maps.Keys(k.unknown)) {
		addProblem(f, k.unknown[f].rev, schema.ErrUnknownField.Error())
	}

	switch want := k.active.value; {
	case !k.active.ok:
		e.unserved = noActiveKey
	case k.usable(want):
		e.active = want
	case k.serving && k.usable(k.served):
		e.active = k.served
		addProblem(schema.FieldActive, k.active.rev, fmt.Sprintf("%s has no target", want))
	default:
		e.active = want
		e.unserved = fmt.Sprintf("active: %s has no target", want)
		addProblem(schema.FieldActive, k.active.rev, fmt.Sprintf("%s has no target", want))
	}
	// A trial is answered in place of the active key while its lease
	// lives; the active key is where the name goes back to.
	if t := &k.trial; t.ok {
		switch c := t.value.Colour; {
		case !e.serving():
			addProblem(schema.FieldTrial, t.rev, "the name is not served, so there is no colour to come back to")
		case !k.usable(c):
			addProblem(schema.FieldTrial, t.rev, fmt.Sprintf("%s has no target", c))
		default:
			trial := t.value // the entry's own: the store changes its keys
			e.active, e.trial = c, &trial
		}
	}
	if t := &k.targets[e.active]; e.serving() && !t.present {
		addProblem(e.active.String(), t.rev, "deleted, but it is the active colour's target: answering its last value until active names the other colour, or is deleted to retire the name")
	}

	if k.ttl.ok {
		e.ttl = k.ttl.value
	}
	if e.trial != nil && e.trial.HasTTL {
		e.ttl = e.trial.TTL
	}
	if k.canary.ok {
		e.canary = k.canary.value
	}
	if e.trial != nil && e.trial.HasCanary {
		e.canary = e.trial.Canary
	}
	if k.check.ok {
		e.check = k.check.value.Value()
	}

	// Checks leave out the addresses that are down. A colour with every
	// address down is down, and the name fails over from it to the idle
	// colour if that has an address known to be up.
	var down, confirmed [2]bool
	for _, c := range schema.Colours {
		// A deleted target is kept only for the colour answered: once the
		// name answers the other one, it is gone.
		if t := &k.targets[c]; t.ok && (t.present || (c == e.active && e.serving())) {
			e.targets[c], down[c], confirmed[c] = withoutDown(t.value, h)
			for _, ips := range [2][]net.IP{t.value.A, t.value.AAAA} {
				for i, ip := range ips {
					if h != nil && h.of(ip) == stateDown {
						e.down = addDown(e.down, ips, i)
					}
					if addr := ip.String(); e.check.Raw != "" && !pol.mayProbe(addr) {
						e.unchecked = append(e.unchecked, addr)
					}
				}
			}
		}
	}
	slices.SortFunc(e.down, func(a, b net.IP) int { return bytes.Compare(a.To16(), b.To16()) })
	e.down = slices.CompactFunc(e.down, net.IP.Equal)
	slices.Sort(e.unchecked)
	e.unchecked = slices.Compact(e.unchecked)
	if !e.serving() {
		return e
	}
	idle := e.active.Other()
	e.failover = pol.failover && down[e.active] && confirmed[idle] && !down[idle]

	switch {
	case e.canary == 0 || e.failover:
	case !e.targets[idle].Set():
		addProblem(schema.FieldCanary, k.canary.rev, fmt.Sprintf("%s has no target", idle))
	case pol.failover && down[idle]: // no canary client is sent to a colour that is down
	default:
		e.share = e.canary
	}
	return e
}

// addDown adds ips[i] to down. A first down address is a window on its
// target's own list, not a slice of its own: most names with an address
// down have one, and ten thousand one-element slices are more objects for
// every garbage collection to mark. The window holds no room to grow, so
// that a second address copies it instead of writing over the target.
func addDown(down, ips []net.IP, i int) []net.IP {
	if down == nil {
		return ips[i : i+1 : i+1]
	}
	return append(down, ips[i])
}

// withoutDown returns t without the addresses that are down, whether every
// address is down, and whether one is known to be up. When every address is
// down it returns t whole: checks never empty an answer.
func withoutDown(t schema.Target, h health) (kept schema.Target, allDown, oneUp bool) {
	if h == nil || t.CNAME != "" {
		return t, false, false
	}
	var up, downs int
	for ip := range t.IPs() {
		switch h.of(ip) {
		case stateDown:
			downs++
		case stateUp:
			up++
		}
	}
	switch downs {
	case 0:
		return t, false, up > 0
	case len(t.A) + len(t.AAAA):
		return t, true, false
	}
	keep := func(ips []net.IP) []net.IP {
		var out []net.IP
		for _, ip := range ips {
			if h.of(ip) != stateDown {
				out = append(out, ip)
			}
		}
		return out
	}
	return schema.Target{Raw: t.Raw, A: keep(t.A), AAAA: keep(t.AAAA)}, false, up > 0
}

package bluegreen

import (
	"net/netip"
	"slices"
	"testing"
)

// A probe's names are found while they watch it, whichever of them goes
// first; a name that watches nothing any more gives up its number.
func TestProbeNames(t *testing.T) {
	pn := newProbeNames()
	a, b, c := &nameKeys{name: "a."}, &nameKeys{name: "b."}, &nameKeys{name: "c."}
	shared, own := probeKey{addr: netip.MustParseAddr("::1").As16()}, probeKey{addr: netip.MustParseAddr("::2").As16()}
	names := func(key probeKey) []string {
		var out []string
		for _, k := range pn.of(key) {
			out = append(out, k.name)
		}
		return out
	}
	for _, k := range []*nameKeys{a, b, c} {
		pn.add(shared, k)
	}
	pn.add(own, b)
	for _, step := range []struct {
		remove *nameKeys
		want   []string
	}{{nil, []string{"a.", "b.", "c."}}, {a, []string{"b.", "c."}}, {c, []string{"b."}}, {b, nil}} {
		if step.remove != nil {
			pn.remove(shared, step.remove)
		}
		if got := names(shared); !slices.Equal(got, step.want) {
			t.Errorf("names of the shared probe %v, want %v", got, step.want)
		}
	}
	if got := names(own); !slices.Equal(got, []string{"b."}) {
		t.Errorf("names of b's own probe %v, want [b.]", got)
	}
	pn.forget(a)
	d := &nameKeys{name: "d."}
	pn.add(own, d)
	if d.watcher != 1 || len(pn.names) != 4 || !slices.Equal(names(own), []string{"b.", "d."}) {
		t.Errorf("d numbered %d of %d, names of b's probe %v: want a's number 1 again, b. and d.", d.watcher, len(pn.names)-1, names(own))
	}
	if len(pn.first) != 1 || len(pn.more) != 1 {
		t.Errorf("%d probes with a name, %d with more; want 1 and 1", len(pn.first), len(pn.more))
	}
}

package bluegreen

import "slices"

// probeNames is which of a store's names watch each probe, for the store to
// answer them again when a probe finds its address up or down.
//
// Names are numbered while they watch a probe, and the maps from probes hold
// numbers: maps of twenty thousand probes with a name in each are then
// nothing for a garbage collection to scan, and a longer mark is slower
// queries. Most probes have one name; the others of a shared one are kept
// apart.
type probeNames struct {
	first map[probeKey]uint32   // a name that watches the probe
	more  map[probeKey][]uint32 // any others
	names []*nameKeys           // by number, from 1; nil when free
	free  []uint32
}

func newProbeNames() probeNames {
	return probeNames{first: map[probeKey]uint32{}, more: map[probeKey][]uint32{}, names: []*nameKeys{nil}}
}

// add records that k's name watches key, numbering it if it is new.
func (pn *probeNames) add(key probeKey, k *nameKeys) {
	if k.watcher == 0 {
		if n := len(pn.free); n > 0 {
			k.watcher, pn.free = pn.free[n-1], pn.free[:n-1]
			pn.names[k.watcher] = k
		} else {
			k.watcher = uint32(len(pn.names))
			pn.names = append(pn.names, k)
		}
	}
	if _, ok := pn.first[key]; !ok {
		pn.first[key] = k.watcher
	} else {
		pn.more[key] = append(pn.more[key], k.watcher)
	}
}

// remove records that k's name no longer watches key.
func (pn *probeNames) remove(key probeKey, k *nameKeys) {
	more := pn.more[key]
	switch {
	case pn.first[key] != k.watcher:
		more = slices.DeleteFunc(more, func(n uint32) bool { return n == k.watcher })
	case len(more) > 0:
		pn.first[key], more = more[0], more[1:]
	default:
		delete(pn.first, key)
	}
	if len(more) > 0 {
		pn.more[key] = more
	} else {
		delete(pn.more, key)
	}
}

// forget drops the number of k's name, which watches no probe any more.
func (pn *probeNames) forget(k *nameKeys) {
	if k.watcher != 0 {
		pn.names[k.watcher] = nil
		pn.free = append(pn.free, k.watcher)
		k.watcher = 0
	}
}

// of lists the names that watch key.
func (pn *probeNames) of(key probeKey) []*nameKeys {
	first, ok := pn.first[key]
	if !ok {
		return nil
	}
	out := []*nameKeys{pn.names[first]}
	for _, n := range pn.more[key] {
		out = append(out, pn.names[n])
	}
	return out
}

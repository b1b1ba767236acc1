package bluegreen

import (
	"hash/maphash"
	"maps"
	"strings"
)

// snapshot is every served name as of one etcd revision. It is immutable:
// the watcher builds a new one for each revision and swaps it in atomically,
// so a query sees all of a revision's changes or none of them.
//
// Names are spread over shards so that a new snapshot copies only the shards
// a revision touches: a flip costs the same with 100 names or 100,000.
type snapshot struct {
	rev    int64
	names  int
	shards [shardCount]map[string]*entry
}

const shardCount = 256

var shardSeed = maphash.MakeSeed()

func shardOf(name string) int { return int(maphash.String(shardSeed, name) % shardCount) }

// get returns the entry of a fully qualified, lowercase name.
func (s *snapshot) get(name string) *entry { return s.shards[shardOf(name)][name] }

// with returns a copy of s at revision rev with changes applied; a nil entry
// removes the name.
func (s *snapshot) with(rev int64, changes map[string]*entry) *snapshot {
	n := &snapshot{rev: rev, names: s.names, shards: s.shards}
	var copied [shardCount]bool
	for name, e := range changes {
		i := shardOf(name)
		if !copied[i] {
			n.shards[i] = maps.Clone(s.shards[i])
			if n.shards[i] == nil {
				n.shards[i] = map[string]*entry{}
			}
			copied[i] = true
		}
		_, had := n.shards[i][name]
		switch {
		case e == nil && had:
			delete(n.shards[i], name)
			n.names--
		case e != nil:
			n.shards[i][name] = e
			if !had {
				n.names++
			}
		}
	}
	return n
}

// A query asks for one view of a managed name.
type view uint8

const (
	viewActive view = iota // NAME: the active colour
	viewBlue               // blue.NAME
	viewGreen              // green.NAME
	viewState              // _bluegreen.NAME: the TXT state
)

// lookup finds the entry a query name asks about, and which view of it.
func (s *snapshot) lookup(qname string) (*entry, view) {
	if e := s.get(qname); e != nil {
		return e, viewActive
	}
	label, parent, ok := strings.Cut(qname, ".")
	if !ok {
		return nil, viewActive
	}
	var v view
	switch label {
	case "blue":
		v = viewBlue
	case "green":
		v = viewGreen
	case "_bluegreen":
		v = viewState
	default:
		return nil, viewActive
	}
	return s.get(parent), v
}

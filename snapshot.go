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
// Names are spread over 64 x 64 small maps, so that a new snapshot copies
// only what a revision touches: for one flip, two arrays of 64 pointers and
// one map of a few dozen names, whether there are 100 names or 100,000. The
// garbage a flip leaves stays small, which keeps the collector quiet under
// a thousand flips a second.
type snapshot struct {
	rev   int64
	names int
	dirs  [fanout]*shardDir
}

type shardDir [fanout]map[string]*entry

const fanout = 64

var shardSeed = maphash.MakeSeed()

// shardOf is where a name lives: dirs[dir][shard].
func shardOf(name string) (dir, shard int) {
	h := maphash.String(shardSeed, name)
	return int(h % fanout), int(h / fanout % fanout)
}

// get returns the entry of a fully qualified, lowercase name.
func (s *snapshot) get(name string) *entry {
	d, i := shardOf(name)
	if s.dirs[d] == nil {
		return nil
	}
	return s.dirs[d][i][name]
}

// each calls f for every name.
func (s *snapshot) each(f func(name string, e *entry)) {
	for _, d := range s.dirs {
		if d == nil {
			continue
		}
		for _, shard := range d {
			for name, e := range shard {
				f(name, e)
			}
		}
	}
}

// with returns a copy of s at revision rev with changes applied; a nil entry
// removes the name.
func (s *snapshot) with(rev int64, changes map[string]*entry) *snapshot {
	n := &snapshot{rev: rev, names: s.names, dirs: s.dirs}
	var copiedDir [fanout]bool
	var copiedShard [fanout][fanout]bool
	for name, e := range changes {
		d, i := shardOf(name)
		if !copiedDir[d] {
			dir := new(shardDir)
			if s.dirs[d] != nil {
				*dir = *s.dirs[d]
			}
			n.dirs[d], copiedDir[d] = dir, true
		}
		if !copiedShard[d][i] {
			shard := maps.Clone(n.dirs[d][i])
			if shard == nil {
				shard = map[string]*entry{}
			}
			n.dirs[d][i], copiedShard[d][i] = shard, true
		}
		shard := n.dirs[d][i]
		_, had := shard[name]
		switch {
		case e == nil && had:
			delete(shard, name)
			n.names--
		case e != nil:
			shard[name] = e
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

package bluegreen

import (
	"hash/maphash"
	"maps"
	"strings"
)

// snapshot is every name as of one etcd revision, and whether the answers
// are stale. It is immutable: the store builds a new one for each change and
// swaps it in atomically, so a query sees all of a revision's changes or none
// of them.
//
// Names are spread over 64 x 64 small maps, so that a new snapshot copies
// only what a revision touches: for one flip, two arrays of 64 pointers and
// one map of a few dozen names, whether there are 100 names or 100,000. The
// garbage a flip leaves stays small, which keeps the collector quiet under
// a thousand flips a second.
type snapshot struct {
	rev    int64
	served int // entries served
	stale  staleness
	dirs   [fanout]*shardDir
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
	n := &snapshot{rev: rev, served: s.served, dirs: s.dirs}
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
		if was, had := shard[name]; had && was.serving() {
			n.served--
		}
		if e == nil {
			delete(shard, name)
			continue
		}
		shard[name] = e
		if e.serving() {
			n.served++
		}
	}
	return n
}

// asked is what a query asks of a name.
type asked uint8

const (
	askName  asked = iota // NAME: the colour it answers
	askBlue               // blue.NAME: the blue target, active or not
	askGreen              // green.NAME
	askState              // _bluegreen.NAME: the TXT state
)

// lookup finds the entry a query name asks about, and what it asks of it.
// An empty non-terminal has no views.
func (s *snapshot) lookup(qname string) (*entry, asked) {
	if e := s.get(qname); e != nil {
		return e, askName
	}
	label, parent, ok := strings.Cut(qname, ".")
	if !ok {
		return nil, askName
	}
	var a asked
	switch label {
	case "blue":
		a = askBlue
	case "green":
		a = askGreen
	case "_bluegreen":
		a = askState
	default:
		return nil, askName
	}
	if e := s.get(parent); e != emptyNonTerminal {
		return e, a
	}
	return nil, askName
}

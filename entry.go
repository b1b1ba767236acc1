package bluegreen

import (
	"net"
	"slices"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// entry is what the handler answers for one name. resolve builds it; once
// published in a snapshot it never changes.
type entry struct {
	unserved  string        // why the name is not answered; "" while it is
	active    schema.Colour // the colour answered: the trial's, etcd's, or the last one that had a target
	trial     *schema.Trial // the trial answered in place of the active key, if any
	failover  bool          // answer the idle colour: every address of the active one is down
	canary    uint8         // the canary key: percent of clients to send to the idle colour
	share     uint8         // the canary share in effect: 0 while it cannot apply
	targets   [2]schema.Target
	ttl       uint32
	rev       int64        // the newest revision that changed one of the name's keys
	check     schema.Check // the check key; Raw is "" for none
	down      []net.IP     // addresses failing their check, sorted
	unchecked []string     // addresses outside the check networks: never probed, sorted
	problems  []problem
	answers   *nameAnswers // the name's own answer counters; nil beyond name_metrics
	failovers uint64       // times the name failed over since the store began: carried from entry to entry
}

// A problem is why a key of the name is not taken as etcd holds it.
type problem struct {
	field string
	rev   int64 // the key's revision: a problem is reported once per key and revision
	why   string
}

// noActiveKey is why a name with keys but no good active value is not
// served: a name is retired by deleting its active key.
const noActiveKey = "no active key"

// emptyNonTerminal is the entry of a name that has no keys but has a
// managed name below it, such as sub.example.org above app.sub.example.org:
// it exists, with no data (RFC 8020: a resolver may take an NXDOMAIN there
// to mean that nothing below exists).
var emptyNonTerminal = &entry{unserved: "empty non-terminal"}

func (e *entry) serving() bool { return e.unserved == "" }

// answering is the colour most clients get: the active one, unless the name
// failed over.
func (e *entry) answering() schema.Colour {
	if e.failover {
		return e.active.Other()
	}
	return e.active
}

// healthy is how many addresses of colour c pass their check, or are not
// checked: those that fail are left out of its target, unless all fail.
func (e *entry) healthy(c schema.Colour) int {
	n := 0
	for ip := range e.targets[c].IPs() {
		if !slices.ContainsFunc(e.down, ip.Equal) {
			n++
		}
	}
	return n
}

// isDown reports whether every address of colour c fails its check.
func (e *entry) isDown(c schema.Colour) bool {
	t := e.targets[c]
	if len(e.down) == 0 || !t.Set() || t.CNAME != "" {
		return false
	}
	for ip := range t.IPs() { // all of them, when all are down
		if !slices.ContainsFunc(e.down, ip.Equal) {
			return false
		}
	}
	return true
}

package bluegreen

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// entry is what the handler answers for one name. resolve builds it; once
// published in a snapshot it never changes.
type entry struct {
	unserved string        // why the name is not answered; "" while it is
	active   schema.Colour // the colour answered: etcd's, or the last one that had a target
	failover bool          // answer the idle colour: every address of the active one is down
	canary   uint8         // the canary key: percent of clients to send to the idle colour
	share    uint8         // the canary share in effect: 0 while it cannot apply
	targets  [2]schema.Target
	ttl      uint32
	rev      int64    // the newest revision that changed one of the name's keys
	check    string   // the check key, "" for none
	down     []string // addresses failing their check, sorted
	problems []problem
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

func (e *entry) serving() bool { return e.unserved == "" }

// answering is the colour most clients get: the active one, unless the name
// failed over.
func (e *entry) answering() schema.Colour {
	if e.failover {
		return e.active.Other()
	}
	return e.active
}

// isDown reports whether every address of colour c fails its check.
func (e *entry) isDown(c schema.Colour) bool {
	t := e.targets[c]
	if len(e.down) == 0 || !t.Set() || t.CNAME != "" {
		return false
	}
	for _, addr := range t.Addresses() { // all of them, when all are down
		if !slices.Contains(e.down, addr) {
			return false
		}
	}
	return true
}

// stateTXT lists the name's state for the _bluegreen TXT record, one
// "key=value" string each: what etcd asks for, what checks found, why a key
// is ignored, and since when the answers are stale if they are. It is built
// per query: such queries are rare, and memory per name is not.
func (e *entry) stateTXT(stale staleness) []string {
	active := e.active.String()
	if e.unserved == noActiveKey {
		active = ""
	}
	txt := []string{
		"active=" + active,
		"blue=" + e.targets[schema.Blue].Raw,
		"green=" + e.targets[schema.Green].Raw,
		"ttl=" + strconv.FormatUint(uint64(e.ttl), 10),
		"canary=" + strconv.FormatUint(uint64(e.canary), 10),
		"revision=" + strconv.FormatInt(e.rev, 10),
	}
	if !e.serving() {
		txt = append(txt, "not_served="+e.unserved)
	}
	if e.share != e.canary && e.serving() {
		idle := e.active.Other()
		switch {
		case e.failover:
			txt = append(txt, "canary_paused=failover")
		case !e.targets[idle].Set():
			txt = append(txt, "canary_paused="+idle.String()+" has no target")
		default:
			txt = append(txt, "canary_paused="+idle.String()+" is down")
		}
	}
	if e.check != "" {
		txt = append(txt, "check="+e.check)
	}
	for _, addr := range e.down {
		txt = append(txt, "down="+addr)
	}
	if e.failover {
		txt = append(txt, fmt.Sprintf("failover=%s is down, answering %s", e.active, e.answering()))
	}
	for _, p := range e.problems {
		txt = append(txt, "ignored="+p.field+": "+p.why)
	}
	if !stale.since.IsZero() {
		txt = append(txt, "stale_since="+stale.since.UTC().Format(time.RFC3339), "stale_reason="+stale.why)
	}
	return txtStrings(txt)
}

// txtStrings cuts strings longer than a TXT character-string may be (255
// octets); clients read the pieces in order.
func txtStrings(in []string) []string {
	const max = 255
	out := make([]string, 0, len(in))
	for _, s := range in {
		for len(s) > max {
			out = append(out, s[:max])
			s = s[max:]
		}
		out = append(out, s)
	}
	return out
}

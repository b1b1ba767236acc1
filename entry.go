package bluegreen

import (
	"fmt"
	"slices"
	"strconv"
)

// entry is what the handler answers for one managed name. It is built by the
// watcher and never changed once published in a snapshot.
type entry struct {
	active   colour    // the colour etcd asks for (or the last one that had a target)
	failover bool      // answer the idle colour: every address of the active one is down
	canary   uint8     // the canary key: percent of clients to send to the idle colour
	split    uint8     // the canary share in effect: 0 while it cannot apply
	targets  [2]target // without addresses that are down; an unset target has raw == ""
	ttl      uint32
	rev      int64    // the newest revision that changed one of the name's keys
	check    string   // the check key, "" for none
	down     []string // addresses failing their check, sorted
	problems []string // why keys of the name are ignored; nil when none are
}

// answering is the colour most clients get: the active one, unless the name
// failed over.
func (e *entry) answering() colour {
	if e.failover {
		return e.active.other()
	}
	return e.active
}

// isDown reports whether every address of colour c fails its check.
func (e *entry) isDown(c colour) bool {
	t := e.targets[c]
	if len(e.down) == 0 || !t.set() || t.cname != "" {
		return false
	}
	for _, addr := range t.addresses() { // all of them, when all are down
		if !slices.Contains(e.down, addr) {
			return false
		}
	}
	return true
}

// stateTXT lists the name's state for the _bluegreen TXT record, one
// "key=value" string each, followed by what checks found and why any key is
// being ignored. It is built per query: such queries are rare, and memory
// per name is not.
func (e *entry) stateTXT() []string {
	txt := []string{
		"active=" + e.active.String(),
		"blue=" + e.targets[blue].raw,
		"green=" + e.targets[green].raw,
		"ttl=" + strconv.FormatUint(uint64(e.ttl), 10),
		"canary=" + strconv.FormatUint(uint64(e.canary), 10),
		"revision=" + strconv.FormatInt(e.rev, 10),
	}
	if e.split != e.canary {
		idle := e.active.other()
		switch {
		case e.failover:
			txt = append(txt, "canary_paused=failover")
		case !e.targets[idle].set():
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
		txt = append(txt, "stale="+p)
	}
	return splitTXT(txt)
}

// splitTXT cuts strings longer than a TXT character-string may be (255
// octets); clients read the pieces in order.
func splitTXT(in []string) []string {
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

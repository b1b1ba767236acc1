package bluegreen

import (
	"strconv"
)

// entry is what the handler answers for one managed name. It is built by the
// watcher and never changed once published in a snapshot.
type entry struct {
	active   colour
	targets  [2]target // an unset target has raw == ""
	ttl      uint32
	rev      int64    // the newest revision that changed one of the name's keys
	problems []string // why keys of the name are ignored; nil when none are
}

// stateTXT lists the name's state for the _bluegreen TXT record, one
// "key=value" string each, followed by why any key is being ignored. It is
// built per query: such queries are rare, and memory per name is not.
func (e *entry) stateTXT() []string {
	txt := []string{
		"active=" + e.active.String(),
		"blue=" + e.targets[blue].raw,
		"green=" + e.targets[green].raw,
		"ttl=" + strconv.FormatUint(uint64(e.ttl), 10),
		"revision=" + strconv.FormatInt(e.rev, 10),
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

package bluegreen

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// listBudget bounds the octets the state's lists (down=, unchecked= and
// ignored=) take,
// so that the state always fits in one answer: the rest of a list is
// counted, not shown, and the log has it all.
const listBudget = 2048

// stateTXT lists the name's state for the _bluegreen TXT record, one
// "key=value" string each: what etcd asks for, the revision the answers of
// the whole prefix are complete up to (synced), since when they are stale
// if they are, what checks found and why a key is ignored. It is built per
// query: such queries are rare, and memory per name is not. Every octet it
// puts on the wire is printable ASCII.
func (e *entry) stateTXT(synced int64, stale staleness) []string {
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
		"synced=" + strconv.FormatInt(synced, 10),
	}
	if e.trial != nil {
		txt = append(txt, "trial="+e.trial.Colour.String()+" until "+e.trial.Until.Format(time.RFC3339))
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
	if e.check.Raw != "" {
		txt = append(txt, "check="+e.check.String())
	}
	if e.failover {
		txt = append(txt, fmt.Sprintf("failover=%s is down, answering %s", e.active, e.answering()))
	}
	if !stale.since.IsZero() {
		txt = append(txt, "stale_since="+stale.since.UTC().Format(time.RFC3339), "stale_reason="+stale.why)
	}
	budget := listBudget
	down := make([]string, len(e.down))
	for i, ip := range e.down {
		down[i] = ip.String()
	}
	txt = appendList(txt, "down=", down, &budget)
	txt = appendList(txt, "unchecked=", e.unchecked, &budget)
	ignored := make([]string, len(e.problems))
	for i, p := range e.problems {
		ignored[i] = schema.Cut(p.field) + ": " + p.why
	}
	txt = appendList(txt, "ignored=", ignored, &budget)
	return txtStrings(txt)
}

// appendList appends key+item for each item while budget lasts, then one
// key+"... N more" for the rest.
func appendList(txt []string, key string, items []string, budget *int) []string {
	for i, item := range items {
		if *budget -= len(key) + len(item); *budget < 0 {
			return append(txt, fmt.Sprintf("%s... %d more", key, len(items)-i))
		}
		txt = append(txt, key+item)
	}
	return txt
}

// txtStrings makes each string printable ASCII, cut into the 255-octet
// pieces a TXT character-string holds (clients read them in order), written
// as the dns package packs them. A backslash is shown as \\ and any other
// octet outside printable ASCII as \DDD, so that no key or value in etcd
// can put a control character on a client's terminal.
func txtStrings(in []string) []string {
	const max = 255
	out := make([]string, 0, len(in))
	for _, s := range in {
		var piece strings.Builder
		for i := 0; i < len(s); i++ {
			shown := printable(s[i])
			if piece.Len()+len(shown) > max { // an escape is never split
				out = append(out, packable(piece.String()))
				piece.Reset()
			}
			piece.WriteString(shown)
		}
		out = append(out, packable(piece.String()))
	}
	return out
}

// printable is octet c as TXT presentation format shows it.
func printable(c byte) string {
	switch {
	case c == '\\':
		return `\\`
	case c < ' ' || c > '~':
		return fmt.Sprintf(`\%03d`, c)
	}
	return string(rune(c))
}

// packable is s as the dns package packs it: it reads backslash escapes, so
// a backslash meant for the wire is doubled.
func packable(s string) string { return strings.ReplaceAll(s, `\`, `\\`) }

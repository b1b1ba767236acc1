package ctl

import (
	"context"
	"fmt"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// stableColour is the colour every client of name n had before its canary
// split began (Argo's "stable"), which a rollback goes back to: the active
// colour before the newest change that raised the canary from none or 0.
// bgctl's history of n says, walked back from what etcd holds now; when it
// does not account for the keys as they are (someone wrote them with
// etcdctl, or the entries are gone), it cannot say, and the operator
// chooses.
func (c *cli) stableColour(ctx context.Context, nm *name, v view) (schema.Colour, error) {
	n := nm.name
	entries, err := c.readHistory(ctx, n)
	if err != nil {
		return 0, err
	}
	cannot := func(why string) error {
		return fmt.Errorf("%s is split by a canary (%s) and %s, so bgctl cannot tell which colour every client had before the split: choose one, bgctl switch %s --to blue or bgctl switch %s --to green (either ends the split); nothing was written",
			n, v.where(), why, n, n)
	}
	held := map[string]*string{} // as of the entry walked back to
	for _, f := range []string{schema.FieldActive, schema.FieldCanary} {
		if value, ok := nm.value(f); ok {
			held[f] = &value
		}
	}
	newest := map[string]int64{} // the revision of the newest entry that changed each
	for i := len(entries) - 1; i >= 0; i-- {
		raised := false
		for _, ch := range entries[i].Changes {
			if ch.Field != schema.FieldActive && ch.Field != schema.FieldCanary {
				continue
			}
			if newest[ch.Field] == 0 {
				newest[ch.Field] = entries[i].Revision
			}
			was := held[ch.Field]
			if (was == nil) != (ch.To == nil) || (was != nil && *was != *ch.To) {
				return 0, cannot(fmt.Sprintf("%s holds %s where bgctl's history has %s (revision %d): it was changed outside bgctl", schema.Key(c.globals.prefix, n, ch.Field), quoteOrNone(was), quoteOrNone(ch.To), entries[i].Revision))
			}
			held[ch.Field] = ch.From
			if ch.Field == schema.FieldCanary {
				raised = canaryShare(ch.From) == 0 && canaryShare(ch.To) > 0
			}
		}
		if raised {
			// A key written since, but not by bgctl (its entry has the
			// revision of its change), is one the history does not know.
			for f := range held {
				if kv := nm.keys[f]; kv != nil && kv.ModRevision >= entries[i].Revision && kv.ModRevision != newest[f] {
					return 0, cannot(fmt.Sprintf("%s was written at revision %d outside bgctl, after the split began", schema.Key(c.globals.prefix, n, f), kv.ModRevision))
				}
			}
			if was := held[schema.FieldActive]; was != nil {
				if col, err := schema.ParseColour(*was); err == nil {
					return col, nil
				}
			}
			return 0, cannot(fmt.Sprintf("the history entry that started it (revision %d) says no active colour before it", entries[i].Revision))
		}
	}
	return 0, cannot("bgctl's history of it does not say when the split began")
}

// canaryShare is the share a canary value sends to the idle colour: 0 for
// none, or for a value the plugin ignores.
func canaryShare(value *string) uint8 {
	if value == nil {
		return 0
	}
	share, _ := schema.ParseCanary(*value)
	return share
}

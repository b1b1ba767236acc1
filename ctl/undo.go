package ctl

import (
	"context"
	"fmt"
	"slices"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
)

var undoCommand = &command{
	name: "undo", args: "NAME [--to-revision N] [--reason TEXT]",
	short: "Put a name's keys back as they were before bgctl's last change, or at a revision of its history",
	long: `Puts back every key of NAME that bgctl's last change to it changed, as it was before that change;
with --to-revision N, every key changed since the history entry at revision N, as it was right
after that entry (bgctl history NAME lists the revisions). One transaction, conditional on what
bgctl read, recorded as its own history entry: undo again to undo the undo. Trial keys live on
leases and are never put back: confirm or roll back a trial before undoing. Refused when a key
was changed outside bgctl since (etcdctl, say): history does not know what to put back then.`,
	flags: func(fs *pflag.FlagSet, o *options) {
		fs.Int64Var(&o.toRevision, "to-revision", 0, "the revision of a history entry to go back to")
		reasonFlag(fs, o)
		maxTTLFlag(fs, o)
	},
	run: func(ctx context.Context, c *cli, args []string) error {
		given, err := oneName(args)
		if err != nil {
			return err
		}
		ns, rev, err := c.read(ctx, given) // a retired name has no keys: undo brings them back
		if err != nil {
			return err
		}
		entries, err := c.readHistory(ctx, given[0])
		if err != nil {
			return err
		}
		e, err := c.undo(ns[given[0]], entries)
		if err != nil {
			return err
		}
		return c.applyAndSay(ctx, rev, e)
	},
}

// undo is the edit that puts n's keys back as they were before the entries
// after --to-revision, or before the last entry.
func (c *cli) undo(n *name, entries []historyEntry) (*edit, error) {
	if v := n.view(c.opts.maxTTL); v.trial != nil {
		return nil, fmt.Errorf("%s is on a trial of %s: bgctl confirm or bgctl rollback it first", n.name, v.trial.Colour)
	}
	if k := len(entries); c.opts.toRevision == 0 && k > 0 && onlyTrial(entries[k-1]) {
		return nil, fmt.Errorf("bgctl's last change to %s (revision %d, %s) was a trial, which has ended: there is nothing of it to undo; bgctl history %s, then undo --to-revision N to go further back",
			n.name, entries[k-1].Revision, entries[k-1].Command, n.name)
	}
	// Trial keys are left out: their leases are gone.
	var kept []historyEntry
	for _, e := range entries {
		e.Changes = slices.DeleteFunc(slices.Clone(e.Changes), func(ch change) bool { return ch.Field == schema.FieldTrial })
		if len(e.Changes) > 0 || e.Revision == c.opts.toRevision {
			kept = append(kept, e)
		}
	}
	var undone []historyEntry
	switch i := slices.IndexFunc(kept, func(e historyEntry) bool { return e.Revision == c.opts.toRevision }); {
	case len(kept) == 0:
		return nil, fmt.Errorf("%s has no change by bgctl to undo under %s", n.name, c.historyDir(n.name))
	case c.opts.toRevision == 0:
		undone = kept[len(kept)-1:]
	case i < 0:
		return nil, fmt.Errorf("--to-revision %d: no history entry of %s has that revision; bgctl history %s lists them", c.opts.toRevision, n.name, n.name)
	default:
		undone = kept[i+1:]
	}
	e := newEdit(n)
	for k := len(undone) - 1; k >= 0; k-- { // newest first, so the oldest from wins
		for _, ch := range undone[k].Changes {
			e.changes[ch.Field] = ch.From
		}
	}
	// Each key undone must hold what bgctl's latest change to it left.
	for f := range e.changes {
		var left *string
		for _, en := range kept {
			for _, ch := range en.Changes {
				if ch.Field == f {
					left = ch.To
				}
			}
		}
		now, had := n.value(f)
		if had != (left != nil) || (had && now != *left) {
			nowP := &now
			if !had {
				nowP = nil
			}
			return nil, fmt.Errorf("%s holds %s, not %s as bgctl's last change to it left it: it was changed outside bgctl since, and history cannot say what to put back; nothing was written",
				schema.Key(c.globals.prefix, n.name, f), quoteOrNone(redactPtr(f, nowP)), quoteOrNone(redactPtr(f, left)))
		}
	}
	for _, u := range undone {
		fmt.Fprintf(c.io.Stdout, "undoing revision %d: %s\n", u.Revision, u.Command)
	}
	return e, nil
}

func onlyTrial(e historyEntry) bool {
	return !slices.ContainsFunc(e.Changes, func(ch change) bool { return ch.Field != schema.FieldTrial })
}

func quoteOrNone(s *string) string {
	if s == nil {
		return "(none)"
	}
	return schema.Quote(*s)
}

package ctl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var undoCommand = &command{
	name: "undo", args: "NAME [--to-revision N] [--yes] [--reason TEXT]",
	short: "Put a name's keys back as they were before bgctl's last change, or at a revision of its history",
	long: `Puts back every key of NAME that bgctl's last change to it changed, as it was before that change;
with --to-revision N, every key changed since the history entry at revision N, as it was right
after that entry (bgctl history NAME lists the revisions). One transaction, conditional on what
bgctl read, recorded as its own history entry: undo again to undo the undo. Trial keys live on
leases and are never put back: confirm or roll back a trial before undoing. Refused when a key
was changed outside bgctl since (etcdctl, say): history does not know what to put back then.

Each history entry undone is checked against etcd first: every key it records must have held
its "from" value just before the entry's revision and its "to" value at it. An entry that does
not match (written with etcdctl, not by bgctl) is refused. When etcd has compacted those
revisions the entry cannot be checked: undo then says so and writes only with --yes.

Shows each key it will write (from -> to) and asks y/N at a terminal; --yes writes without
asking, and is needed where stdin is not a terminal.`,
	flags: func(fs *pflag.FlagSet, o *options) {
		fs.Int64Var(&o.toRevision, "to-revision", 0, "the revision of a history entry to go back to")
		fs.BoolVar(&o.yes, "yes", false, "write without asking (needed when stdin is not a terminal, or the entries cannot be checked)")
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
		e, undone, err := c.undo(ns[given[0]], entries)
		if err != nil {
			return err
		}
		unchecked, err := c.verify(ctx, given[0], undone)
		if err != nil {
			return err
		}
		if e.effective() {
			if err := c.confirmUndo(e, unchecked); err != nil {
				return err
			}
		}
		return c.applyAndSay(ctx, rev, e)
	},
}

// undo is the edit that puts n's keys back as they were before the entries
// after --to-revision, or before the last entry, and those entries.
func (c *cli) undo(n *name, entries []historyEntry) (*edit, []historyEntry, error) {
	if v := n.view(c.opts.maxTTL); v.trial != nil {
		return nil, nil, fmt.Errorf("%s is on a trial of %s: bgctl confirm or bgctl rollback it first", n.name, v.trial.Colour)
	}
	if k := len(entries); c.opts.toRevision == 0 && k > 0 && onlyTrial(entries[k-1]) {
		return nil, nil, fmt.Errorf("bgctl's last change to %s (revision %d, %s) was a trial, which has ended: there is nothing of it to undo; bgctl history %s, then undo --to-revision N to go further back",
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
		return nil, nil, fmt.Errorf("%s has no change by bgctl to undo under %s", n.name, c.historyDir(n.name))
	case c.opts.toRevision == 0:
		undone = kept[len(kept)-1:]
	case i < 0:
		return nil, nil, fmt.Errorf("--to-revision %d: no history entry of %s has that revision; bgctl history %s lists them", c.opts.toRevision, n.name, n.name)
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
			return nil, nil, fmt.Errorf("%s holds %s, not %s as bgctl's last change to it left it: it was changed outside bgctl since, and history cannot say what to put back; nothing was written",
				schema.Key(c.globals.prefix, n.name, f), quoteOrNone(redactPtr(f, nowP)), quoteOrNone(redactPtr(f, left)))
		}
	}
	for _, u := range undone {
		fmt.Fprintf(c.io.Stdout, "undoing revision %d: %s\n", u.Revision, u.Command)
	}
	return e, undone, nil
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

// verify refuses entries that do not match what etcd held: each key an
// entry records must have held its from just before the entry's revision
// and its to at it, as it does when bgctl wrote the entry in the same
// transaction as the change. It returns why the entries could not be
// checked, when etcd has compacted those revisions.
func (c *cli) verify(ctx context.Context, n string, undone []historyEntry) (string, error) {
	for _, u := range undone {
		before, err := c.keysAt(ctx, n, u.Revision-1)
		if err != nil {
			return c.uncheckable(u, err)
		}
		after, err := c.keysAt(ctx, n, u.Revision)
		if err != nil {
			return c.uncheckable(u, err)
		}
		for _, ch := range u.Changes {
			was, is := before[ch.Field], after[ch.Field]
			if !samePtr(was, ch.From) || !samePtr(is, ch.To) {
				return "", fmt.Errorf("history entry %s (revision %d) says %s went from %s to %s, but etcd held %s before revision %d and %s at it: bgctl did not write that entry; nothing was written; remove it with etcdctl del %s",
					schema.Quote(u.key), u.Revision, schema.Quote(schema.Key(c.globals.prefix, n, ch.Field)),
					quoteOrNone(redactPtr(ch.Field, ch.From)), quoteOrNone(redactPtr(ch.Field, ch.To)),
					quoteOrNone(redactPtr(ch.Field, was)), u.Revision, quoteOrNone(redactPtr(ch.Field, is)), u.key)
			}
		}
	}
	return "", nil
}

// uncheckable is why an entry cannot be checked, for a compacted revision;
// any other error is returned as it is.
func (c *cli) uncheckable(u historyEntry, err error) (string, error) {
	if errors.Is(err, rpctypes.ErrCompacted) {
		return fmt.Sprintf("etcd has compacted revision %d of history entry %s: bgctl cannot check it against what etcd held", u.Revision, schema.Quote(u.key)), nil
	}
	return "", err
}

// keysAt is n's keys at revision rev, by field; none before revision 1
// (rev 0 would ask etcd for the newest).
func (c *cli) keysAt(ctx context.Context, n string, rev int64) (map[string]*string, error) {
	out := map[string]*string{}
	if rev < 1 {
		return out, nil
	}
	cli, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	resp, err := cli.Get(ctx, c.dir(n), clientv3.WithPrefix(), clientv3.WithRev(rev))
	if err != nil {
		return nil, c.etcdError(fmt.Sprintf("reading %s at revision %d", c.dir(n), rev), err)
	}
	for _, kv := range resp.Kvs {
		v := string(kv.Value)
		out[strings.TrimPrefix(string(kv.Key), c.dir(n))] = &v
	}
	return out, nil
}

func samePtr(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

// confirmUndo shows what undo writes and asks, unless --yes: an entry
// that could not be checked needs --yes.
func (c *cli) confirmUndo(e *edit, unchecked string) error {
	fmt.Fprintf(c.io.Stdout, "undo writes:\n")
	for _, f := range slices.Sorted(maps.Keys(e.changes)) {
		from, had := e.name.value(f)
		fromP := &from
		if !had {
			fromP = nil
		}
		fmt.Fprintf(c.io.Stdout, "  %s: %s -> %s\n", schema.Quote(schema.Key(c.globals.prefix, e.name.name, f)), quoteOrNone(redactPtr(f, fromP)), quoteOrNone(redactPtr(f, e.changes[f])))
	}
	switch {
	case unchecked != "" && c.opts.yes:
		fmt.Fprintf(c.io.Stderr, "Warning: %s; writing as --yes says\n", unchecked)
		return nil
	case unchecked != "":
		return usagef("%s: give --yes to write all the same; nothing was written", unchecked)
	case c.opts.yes:
		return nil
	case !c.io.Terminal:
		return usagef("undo of %s writes the keys above: give --yes (stdin is not a terminal to ask at); nothing was written", e.name.name)
	}
	fmt.Fprintf(c.io.Stderr, "Write these keys? [y/N] ")
	line, _ := bufio.NewReader(c.io.Stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return fmt.Errorf("%s not undone: the answer was not y; nothing was written", e.name.name)
	}
	return nil
}

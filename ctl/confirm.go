package ctl

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
)

var confirmCommand = &command{
	name: "confirm", args: "NAME... [--reason TEXT]",
	short: "Make names' trial flips permanent",
	long: `Makes each NAME's trial colour its active colour and deletes the trial key, in one transaction
for all names, conditional on what bgctl read. A ttl lowered for the trial goes back to the
name's own. What the trial answered stays: a trial that put every client network on its colour
(a switch --confirm-within of a name split by a canary) deletes the canary key too, and a
trial with a canary share of its own leaves it in the canary key.`,
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o); maxTTLFlag(fs, o) },
	run: func(ctx context.Context, c *cli, args []string) error {
		given, err := names(args, "names to confirm")
		if err != nil {
			return err
		}
		ns, rev, err := c.read(ctx, given)
		if err != nil {
			return err
		}
		if err := c.managed(ns); err != nil {
			return err
		}
		var edits []*edit
		for _, n := range slices.Sorted(maps.Keys(ns)) {
			v := ns[n].view(c.opts.maxTTL)
			if v.trial == nil {
				if why, ok := v.ignored[schema.FieldTrial]; ok {
					return fmt.Errorf("%s: the plugin ignores its trial (%s): nothing to confirm; bgctl rollback %s ends it", n, why, n)
				}
				return fmt.Errorf("%s has no trial to confirm", n)
			}
			e := newEdit(ns[n])
			e.put(schema.FieldActive, v.trial.Colour.String())
			e.del(schema.FieldTrial)
			switch t := v.trial; {
			case t.HasCanary && t.Canary == 0:
				e.del(schema.FieldCanary)
			case t.HasCanary:
				e.put(schema.FieldCanary, itoa(t.Canary))
			}
			e.effective()
			if err := c.check(e); err != nil {
				return err
			}
			edits = append(edits, e)
		}
		at, err := c.commit(ctx, rev, c.opts.reason, edits)
		if err != nil {
			return err
		}
		for _, e := range edits {
			v, after := e.name.view(c.opts.maxTTL), c.after(e).view(c.opts.maxTTL)
			fmt.Fprintf(c.io.Stdout, "%s: %s confirmed, no longer a trial (revision %d)", e.name.name, v.trial.Colour, at)
			switch ttl, known := v.answeredTTLWithoutTrial(); {
			case v.trial.HasTTL && known:
				fmt.Fprintf(c.io.Stdout, "; ttl %d -> %d", v.trial.TTL, ttl)
			case v.trial.HasTTL:
				fmt.Fprintf(c.io.Stdout, "; ttl %d -> the Corefile's", v.trial.TTL)
			}
			fmt.Fprintf(c.io.Stdout, "; %s\n", movement(v, after, ""))
		}
		return nil
	},
}

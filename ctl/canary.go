package ctl

import (
	"context"
	"fmt"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
)

var canaryCommand = &command{
	name: "canary", args: "NAME PERCENT [--reason TEXT]",
	short: "Send a share of clients to the idle colour",
	long: `Sets NAME's canary share: PERCENT of client networks get the idle colour. Raising it only moves
more clients to the idle colour; lowering it only moves clients back; 0 sends everyone to the
active colour. Refused while the idle colour has no target.`,
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o); maxTTLFlag(fs, o) },
	run: func(ctx context.Context, c *cli, args []string) error {
		if len(args) != 2 {
			return usagef("give a name and a percentage")
		}
		given, err := names(args[:1], "name")
		if err != nil {
			return err
		}
		n, rev, err := c.readOne(ctx, given[0])
		if err != nil {
			return err
		}
		e := newEdit(n)
		e.put(schema.FieldCanary, args[1])
		return c.applyAndSay(ctx, rev, e)
	},
}

var promoteCommand = &command{
	name: "promote", args: "NAME [--reason TEXT]",
	short: "Flip a name during a canary without moving any client",
	long: `Makes the idle colour active and sets the canary share to 100 minus what it was, in one
transaction: the clients the canary sent to the idle colour stay there, the others stay where
they were, and no one moves. Then lower the share with bgctl canary NAME N, to 0 to finish.
Needs a canary share above 0, and no trial in place.`,
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o); maxTTLFlag(fs, o) },
	run: func(ctx context.Context, c *cli, args []string) error {
		given, err := oneName(args)
		if err != nil {
			return err
		}
		n, rev, err := c.readOne(ctx, given[0])
		if err != nil {
			return err
		}
		v := n.view(c.opts.maxTTL)
		switch {
		case !v.serving():
			return fmt.Errorf("%s is not served: nothing to promote", n.name)
		case v.trial != nil:
			return fmt.Errorf("%s is on a trial of %s: bgctl confirm or bgctl rollback it first", n.name, v.trial.Colour)
		case v.canary == 0:
			return fmt.Errorf("%s has no canary share: promote flips without moving anyone only during a canary; use bgctl switch", n.name)
		}
		e := newEdit(n)
		e.put(schema.FieldActive, v.active.Other().String())
		e.put(schema.FieldCanary, itoa(100-v.canary))
		return c.applyAndSay(ctx, rev, e)
	},
}

// applyAndSay applies an edit of a name, as apply does, and says how many
// client networks it moved and where they all are.
func (c *cli) applyAndSay(ctx context.Context, rev int64, e *edit) error {
	before, after := e.name.view(c.opts.maxTTL), c.after(e).view(c.opts.maxTTL)
	if err := c.apply(ctx, rev, e); err != nil {
		return err
	}
	fmt.Fprintf(c.io.Stdout, "%s: %s\n", e.name.name, movement(before, after, ""))
	return nil
}

// readOne reads one name, which must be managed.
func (c *cli) readOne(ctx context.Context, n string) (*name, int64, error) {
	ns, rev, err := c.read(ctx, []string{n})
	if err != nil {
		return nil, 0, err
	}
	return ns[n], rev, c.managed(ns)
}

package ctl

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
)

var setCommand = &command{
	name: "set", args: "NAME [--blue TARGET] [--green TARGET] [--ttl SECONDS] [--canary PERCENT] [--check URL] [--active COLOUR]",
	short: "Set a name's keys, refusing any value the plugin would ignore",
	long: `Sets the keys given of NAME (a new name too) in one transaction, conditional on what bgctl read.
Every value is checked as the plugin checks it (with --max-ttl for the Corefile's max_ttl), and
so is the name as a whole: an active colour needs a target, a canary share an idle colour to
send clients to. A value the plugin would ignore is refused, and nothing is written.`,
	flags: func(fs *pflag.FlagSet, o *options) {
		fs.StringVar(&o.blue, "blue", "", "blue target: addresses (10.0.1.1,10.0.1.2) or one hostname")
		fs.StringVar(&o.green, "green", "", "green target: addresses or one hostname")
		fs.StringVar(&o.ttl, "ttl", "", "TTL of answers, seconds")
		fs.StringVar(&o.canary, "canary", "", "percent of clients sent to the idle colour, 0-100")
		fs.StringVar(&o.check, "check", "", "health check: tcp://:PORT, http://:PORT/PATH or https://:PORT/PATH")
		fs.StringVar(&o.active, "active", "", "active colour: blue or green")
		reasonFlag(fs, o)
		maxTTLFlag(fs, o)
	},
	run: func(ctx context.Context, c *cli, args []string) error {
		given, err := oneName(args)
		if err != nil {
			return err
		}
		o := c.opts
		values := map[string]*string{
			schema.FieldBlue: &o.blue, schema.FieldGreen: &o.green, schema.FieldTTL: &o.ttl,
			schema.FieldCanary: &o.canary, schema.FieldCheck: &o.check, schema.FieldActive: &o.active,
		}
		ns, rev, err := c.read(ctx, given)
		if err != nil {
			return err
		}
		e := newEdit(ns[given[0]])
		for _, f := range slices.Sorted(maps.Keys(values)) {
			if c.flagGiven(f) {
				e.put(f, *values[f])
			}
		}
		if len(e.changes) == 0 {
			return usagef("give at least one of --blue, --green, --ttl, --canary, --check, --active")
		}
		return c.apply(ctx, rev, e)
	},
}

// apply checks and commits one edit and prints what changed.
func (c *cli) apply(ctx context.Context, rev int64, e *edit) error {
	if err := c.check(e); err != nil {
		return err
	}
	if !e.effective() {
		fmt.Fprintf(c.io.Stdout, "%s: nothing to change\n", e.name.name)
		return nil
	}
	at, err := c.commit(ctx, rev, c.opts.reason, []*edit{e})
	if err != nil {
		return err
	}
	for _, f := range slices.Sorted(maps.Keys(e.changes)) {
		from, had := e.name.value(f)
		var to *string = e.changes[f]
		var fromP *string
		if had {
			fromP = &from
		}
		fmt.Fprintf(c.io.Stdout, "%s: %s %s -> %s (revision %d)\n", e.name.name, f, orNone(redactPtr(f, fromP)), orNone(redactPtr(f, to)), at)
	}
	return nil
}

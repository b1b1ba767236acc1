package ctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var switchCommand = &command{
	name: "switch", args: "NAME... --to blue|green [--keep-canary] [--reason TEXT] [--dns ADDR,...] [--confirm-within DURATION [--lower-ttl SECONDS]]",
	short: "Flip names to a colour, in one transaction, optionally as a trial that reverts by itself",
	long: `Flips every NAME to the colour --to in one etcd transaction, conditional on what bgctl read: if
anyone changes one of the names in between, nothing is written and bgctl says so. A colour
without a target is refused. Prints when the old colour's answers are gone from caches: one
TTL after the flip.

Every client network ends on the colour --to: a canary split is ended in the same
transaction (the canary key is deleted), also when --to is the active colour already. With
--keep-canary the canary key stays, and so does the split, around the new active colour.
bgctl prints the share of client networks that moved and where they all are.

With --confirm-within 10m the flip is a trial: the trial key is put on an etcd lease of that
length, and the plugin answers the trial's colour while the lease lives, to every client
network (the trial says canary=0; the canary key is left as it is). bgctl confirm NAME makes
it permanent, and deletes the canary key; unconfirmed, etcd drops the lease when it runs out
and every CoreDNS goes back to the old colour, and the old split, by itself. bgctl rollback
NAME ends the trial at once.

With --lower-ttl 5 (and --confirm-within) the flip waits for a lower TTL: the name's ttl is
set to 5 first (on the lease too), bgctl waits until answers with the old TTL have expired from
every cache, then flips. A rollback during the trial then reaches every client within 5 s.
The old ttl comes back on confirm and on a revert alike.

With --dns, bgctl then waits until every server given answers the new colour, and prints how
long each took.`,
	flags: func(fs *pflag.FlagSet, o *options) {
		fs.StringVar(&o.to, "to", "", "the colour to answer: blue or green")
		flipFlags(fs, o)
	},
	run: func(ctx context.Context, c *cli, args []string) error {
		if c.opts.to == "" {
			return usagef("--to is required: blue or green")
		}
		to, err := schema.ParseColour(c.opts.to)
		if err != nil {
			return usagef("--to: %v", err)
		}
		ns, err := names(args, "names to switch")
		if err != nil {
			return err
		}
		return c.flip(ctx, ns, func(*name, view) (aim, error) { return aim{to, c.opts.keepCanary}, nil })
	},
}

var rollbackCommand = &command{
	name: "rollback", args: "NAME... [--keep-canary] [--reason TEXT] [--dns ADDR,...] [--confirm-within DURATION [--lower-ttl SECONDS]]",
	short: "Flip names back to the colour they answered before their last switch",
	long: `Ends a name's trial, back to its active colour and the split of its canary key, if any.

A name split by a canary, without a trial, goes back to the colour every client had before
the split began (Argo's "stable" colour), and every client network ends on it: the canary key
is deleted in the same transaction, unless --keep-canary. After bgctl canary NAME 10 that is
the active colour; after bgctl canary NAME 10 and bgctl promote NAME, the colour that was
active before the promote. bgctl works it out from its history of the name; when the history
cannot tell (the canary key was written with etcdctl, or the history is gone), rollback
refuses and names the choice: bgctl switch NAME --to blue, or --to green.

A name with neither is flipped to its other colour. Takes the same flags as switch, and works
the same way: one transaction for all names, conditional on what bgctl read.`,
	flags: flipFlags,
	run: func(ctx context.Context, c *cli, args []string) error {
		ns, err := names(args, "names to roll back")
		if err != nil {
			return err
		}
		return c.flip(ctx, ns, func(n *name, v view) (aim, error) {
			switch {
			case v.trial != nil:
				return aim{v.active, true}, nil
			case v.split() > 0:
				stable, err := c.stableColour(ctx, n, v)
				return aim{stable, c.opts.keepCanary}, err
			}
			return aim{v.answers().Other(), c.opts.keepCanary}, nil
		})
	},
}

// An aim is where a flip takes a name: to a colour, and whether the canary
// key stays, and with it the split.
type aim struct {
	to        schema.Colour
	keepSplit bool
}

func flipFlags(fs *pflag.FlagSet, o *options) {
	reasonFlag(fs, o)
	dnsFlags(fs, o, "and wait until each answers the new colour")
	fs.DurationVar(&o.confirmWithin, "confirm-within", 0, "make the flip a trial that reverts by itself unless bgctl confirm runs within this long (10m, 1h)")
	fs.IntVar(&o.lowerTTL, "lower-ttl", 0, "with --confirm-within: lower the ttl to this many seconds, wait for the old TTL to pass, then flip")
	maxTTLFlag(fs, o)
	fs.BoolVar(&o.keepCanary, "keep-canary", false, "keep the canary key, and with it the split around the new colour; by default every client network ends on it")
}

func reasonFlag(fs *pflag.FlagSet, o *options) {
	fs.StringVar(&o.reason, "reason", "", "why, for the history")
}

func maxTTLFlag(fs *pflag.FlagSet, o *options) {
	fs.Uint32Var(&o.maxTTL, "max-ttl", schema.DefaultMaxTTL, "the Corefile's max_ttl: the largest ttl the plugin takes")
}

// etcdLeaseCheck is how often etcd revokes the leases that ran out.
const etcdLeaseCheck = 500 * time.Millisecond

// A flip is what switch does to one name.
type flip struct {
	name     string
	from, to schema.Colour
	fromTTL  uint32 // the TTL of the answers the flip replaces
	knownTTL bool   // fromTTL is the name's, not the plugin's default
	trial    bool   // the flip is a trial
	hadTrial bool   // the name was on a trial, which the flip ends or replaces
	clear    bool   // the flip ends the canary split: deletes the key, or holds it at 0 in the trial
	// The name as the plugin answers it before and after the flip.
	before, after view
}

// flip switches every name to the colour pick chooses from what etcd holds
// of it, in one transaction; as a trial with --confirm-within, after a
// lowered TTL has taken over with --lower-ttl.
func (c *cli) flip(ctx context.Context, names []string, pick func(*name, view) (aim, error)) error {
	o := c.opts
	servers, err := o.servers()
	if err != nil {
		return err
	}
	if o.lowerTTL != 0 && o.confirmWithin == 0 {
		return usagef("--lower-ttl needs --confirm-within: the lowered ttl holds while the flip is a trial")
	}
	if c.flagGiven("confirm-within") && o.confirmWithin < time.Second {
		return usagef("--confirm-within %v: want at least 1s", o.confirmWithin)
	}
	if _, err := schema.ParseTTL(itoa(o.lowerTTL), o.maxTTL); o.lowerTTL != 0 && err != nil {
		return usagef("--lower-ttl: %v", err)
	}
	ns, rev, err := c.read(ctx, names)
	if err != nil {
		return err
	}
	if err := c.managed(ns); err != nil {
		return err
	}
	flips, err := c.plan(ctx, ns, servers, pick)
	if err != nil {
		return err
	}
	var lease clientv3.LeaseID
	var trialUntil time.Time
	if o.confirmWithin > 0 && slices.ContainsFunc(flips, func(f flip) bool { return f.trial }) {
		if ns, rev, lease, trialUntil, err = c.startTrial(ctx, ns, rev, flips); err != nil {
			return err
		}
		// Again, as the names are now, to the colours chosen before: a
		// lowered ttl is on a trial of the colour answered.
		chosen := map[string]aim{}
		for _, f := range flips {
			chosen[f.name] = aim{f.to, !f.clear}
		}
		if flips, err = c.plan(ctx, ns, servers, func(n *name, _ view) (aim, error) { return chosen[n.name], nil }); err != nil {
			return c.revoke(lease, err)
		}
	}
	var edits []*edit
	for i, f := range flips {
		e := newEdit(ns[f.name])
		switch {
		case f.trial:
			e.put(schema.FieldTrial, c.trialValue(f.to, trialUntil, f.clear))
			e.lease = lease
		default:
			e.put(schema.FieldActive, f.to.String())
			if f.hadTrial {
				e.del(schema.FieldTrial)
			}
			if f.clear {
				e.del(schema.FieldCanary)
			}
		}
		flips[i].after = c.after(e).view(o.maxTTL)
		switch {
		case e.effective():
			if err := c.check(e); err != nil {
				return c.revoke(lease, err)
			}
			edits = append(edits, e)
		case f.before.split() > 0:
			fmt.Fprintf(c.io.Stdout, "%s already answers %s, and --keep-canary keeps canary %d: %s\n", f.name, f.to, f.before.split(), f.before.where())
		default:
			fmt.Fprintf(c.io.Stdout, "%s already answers %s\n", f.name, f.to)
		}
	}
	if len(edits) == 0 {
		return nil
	}
	at, err := c.commit(ctx, rev, o.reason, edits)
	if err != nil {
		return c.revoke(lease, err)
	}
	now := time.Now()
	for _, f := range flips {
		c.printFlip(f, at, now, trialUntil)
	}
	if len(servers) == 0 {
		return nil
	}
	return c.waitForServers(ctx, servers, flips, at)
}

// plan works out each name's flip, and refuses any the plugin would not
// answer (a name not served, a colour without a target) and a --lower-ttl
// that is not lower. The servers, if any, say the Corefile's ttl.
func (c *cli) plan(ctx context.Context, ns map[string]*name, servers []string, pick func(*name, view) (aim, error)) ([]flip, error) {
	var flips []flip
	for _, n := range slices.Sorted(maps.Keys(ns)) {
		v := ns[n].view(c.opts.maxTTL)
		if !v.serving() {
			why := "no active key"
			if v.hasActive {
				why = v.ignored[schema.FieldActive]
			}
			return nil, fmt.Errorf("%s is not served (%s): there is no colour to flip from; bgctl set %s --active COLOUR first", n, why, n)
		}
		a, err := pick(ns[n], v)
		if err != nil {
			return nil, err
		}
		to := a.to
		if !v.targets[to].Set() {
			return nil, fmt.Errorf("%s: %s has no target (%s is not set, or not a target the plugin takes): nothing was written", n, to, schema.Key(c.globals.prefix, n, to.String()))
		}
		_, hasCanary := ns[n].value(schema.FieldCanary)
		f := flip{name: n, from: v.answers(), to: to, hadTrial: v.trial != nil, clear: hasCanary && !a.keepSplit, before: v}
		f.fromTTL, f.knownTTL = v.answeredTTL()
		if !f.knownTTL && len(servers) > 0 {
			f.fromTTL, f.knownTTL = servedTTL(ctx, servers, n, f.fromTTL)
		}
		// A trial of the active colour is one still, when it ends a split.
		f.trial = c.opts.confirmWithin > 0 && (v.active != to || (f.clear && v.split() > 0))
		if lower := c.opts.lowerTTL; f.trial && lower > 0 && uint32(lower) > f.fromTTL {
			return nil, usagef("--lower-ttl %d is above %s's TTL of %d s: it would raise it", lower, n, f.fromTTL)
		}
		flips = append(flips, f)
	}
	return flips, nil
}

// trialValue is the trial key's value for a trial of colour c until then;
// with noSplit, the plugin answers it to every client network while it lives.
func (c *cli) trialValue(col schema.Colour, until time.Time, noSplit bool) string {
	t := schema.Trial{Colour: col, Until: until, HasCanary: noSplit}
	if c.opts.lowerTTL > 0 {
		t.TTL, t.HasTTL = uint32(c.opts.lowerTTL), true
	}
	return t.String()
}

// startTrial grants the trial's lease and, with --lower-ttl, puts the
// lowered ttl on it and waits for the old TTL to pass. It returns the names
// as they are after that, and the lease.
func (c *cli) startTrial(ctx context.Context, ns map[string]*name, rev int64, flips []flip) (map[string]*name, int64, clientv3.LeaseID, time.Time, error) {
	o := c.opts
	var wait time.Duration
	if o.lowerTTL > 0 {
		for _, f := range flips {
			if f.trial && f.fromTTL > uint32(o.lowerTTL) {
				wait = max(wait, time.Duration(f.fromTTL)*time.Second)
			}
		}
	}
	cli, err := c.connect(ctx)
	if err != nil {
		return nil, 0, 0, time.Time{}, err
	}
	gctx, cancel := c.timeout(ctx)
	defer cancel()
	granted := time.Now()
	seconds := int64((wait + o.confirmWithin + time.Second - 1) / time.Second)
	lr, err := cli.Grant(gctx, seconds)
	if err != nil {
		return nil, 0, 0, time.Time{}, c.etcdError("granting a lease", err)
	}
	// The lease runs out at the grant plus its TTL (etcd may raise a short
	// TTL to its minimum).
	until := trialEnd(granted, time.Duration(lr.TTL)*time.Second)
	if wait == 0 {
		return ns, rev, lr.ID, until, nil
	}

	// Phase 1: the lowered ttl, on the lease, with the colour answered now.
	var edits []*edit
	for _, f := range flips {
		if f.trial {
			e := newEdit(ns[f.name])
			e.put(schema.FieldTrial, c.trialValue(f.from, until, false))
			e.lease = lr.ID
			if err := c.check(e); err != nil {
				return nil, 0, 0, time.Time{}, c.revoke(lr.ID, err)
			}
			edits = append(edits, e)
		}
	}
	at, err := c.commit(ctx, rev, o.reason, edits)
	if err != nil {
		return nil, 0, 0, time.Time{}, c.revoke(lr.ID, err)
	}
	lowered := time.Now()
	for _, f := range flips {
		if f.trial {
			fmt.Fprintf(c.io.Stdout, "%s %s: ttl %d -> %d until the trial ends (revision %d)\n", clock(lowered), f.name, f.fromTTL, o.lowerTTL, at)
		}
	}
	flipAt := lowered.Add(wait)
	fmt.Fprintf(c.io.Stdout, "%s waiting %v, until %s, for answers with the old ttl to expire from caches\n", clock(lowered), wait, clock(flipAt))
	select {
	case <-ctx.Done():
		return nil, 0, 0, time.Time{}, c.revoke(lr.ID, errors.New("interrupted while waiting: nothing was switched"))
	case <-time.After(time.Until(flipAt)):
	}
	before := ns
	ns, rev, err = c.read(ctx, slices.Collect(maps.Keys(before)))
	if err != nil {
		return nil, 0, 0, time.Time{}, c.revoke(lr.ID, err)
	}
	for _, f := range flips {
		if changedSince(before[f.name], ns[f.name], at, f.trial) {
			return nil, 0, 0, time.Time{}, c.revoke(lr.ID, fmt.Errorf("%s changed in etcd while bgctl waited (someone else wrote since revision %d): nothing was switched", f.name, at))
		}
	}
	return ns, rev, lr.ID, until, nil
}

// changedSince reports whether anyone but bgctl changed a key of a name
// since it was read as before and bgctl put its trial key at revision at
// (with trial): now is how etcd holds it.
func changedSince(before, now *name, at int64, trial bool) bool {
	for f, kv := range now.keys {
		if f == schema.FieldTrial && trial {
			if kv.ModRevision != at {
				return true
			}
		} else if was := before.keys[f]; was == nil || was.ModRevision != kv.ModRevision {
			return true
		}
	}
	for f := range before.keys {
		if now.keys[f] == nil {
			return true
		}
	}
	return trial && now.keys[schema.FieldTrial] == nil
}

// revoke revokes lease, if any, so that what was put on it ends at once,
// and returns err, saying so.
func (c *cli) revoke(lease clientv3.LeaseID, err error) error {
	if lease == 0 {
		return err
	}
	ctx, cancel := c.timeout(context.Background()) // the command's own may be cancelled: this must still run
	defer cancel()
	if _, rerr := c.etcd.Revoke(ctx, lease); rerr != nil {
		return fmt.Errorf("%w; revoking the trial's lease %x failed too (%v): it ends by itself when it runs out", err, lease, rerr)
	}
	return fmt.Errorf("%w; the trial's lease was revoked, so any lowered ttl is back", err)
}

func (c *cli) printFlip(f flip, at int64, now, trialUntil time.Time) {
	w := c.io.Stdout
	var note string
	switch canary := f.before.canary; {
	case f.clear && f.trial && canary > 0:
		note = fmt.Sprintf("canary %d held at 0 during the trial", canary)
	case f.clear && canary > 0:
		note = fmt.Sprintf("canary %d cleared", canary)
	case f.clear:
		note = "canary key deleted"
	case !f.hadTrial && f.after.split() > 0:
		note = fmt.Sprintf("canary %d kept", f.after.split())
	}
	moves := movement(f.before, f.after, note)
	switch {
	case f.trial:
		fmt.Fprintf(w, "%s: %s -> %s on trial until %s (revision %d), %s; bgctl confirm %s keeps it, else by then it goes back by itself to %s\n",
			f.name, f.from, f.to, clock(trialUntil), at, moves, f.name, f.before.where())
	case f.hadTrial && f.from != f.to:
		fmt.Fprintf(w, "%s: trial of %s ended, back to %s (revision %d), %s\n", f.name, f.from, f.to, at, moves)
	case f.hadTrial:
		fmt.Fprintf(w, "%s: %s kept, no longer a trial (revision %d), %s\n", f.name, f.to, at, moves)
	case f.from != f.to:
		fmt.Fprintf(w, "%s: %s -> %s (revision %d), %s\n", f.name, f.from, f.to, at, moves)
	default:
		fmt.Fprintf(w, "%s: %s (revision %d), %s\n", f.name, f.to, at, moves)
	}
	if moved(f.before, f.after) == 0 {
		return
	}
	drained := f.to.Other() // the colour whose share fell
	if f.after.share(f.to) < f.before.share(f.to) {
		drained = f.to
	}
	ttl, note := f.fromTTL, ""
	if f.trial && c.opts.lowerTTL > 0 {
		ttl = min(ttl, uint32(c.opts.lowerTTL))
	}
	if !f.knownTTL {
		note = " if the Corefile's ttl is the default (the name has no ttl key; with --dns, bgctl asks the servers)"
	}
	fmt.Fprintf(w, "%s drained from caches by %s, TTL %d s%s\n", drained, clock(now.Add(time.Duration(ttl)*time.Second)), ttl, note)
	if f.trial && time.Duration(ttl)*time.Second > c.opts.confirmWithin {
		fmt.Fprintf(c.io.Stderr, "Warning: %s's trial (%v) is shorter than its TTL (%d s): clients that get %s keep it for up to %d s after a revert\n", f.name, c.opts.confirmWithin, ttl, f.to, ttl)
	}
}

// waitForServers waits until every server answers each flip's colour, as
// of revision at or later, and prints how long each took.
func (c *cli) waitForServers(ctx context.Context, servers []string, flips []flip, at int64) error {
	var late []string
	for _, f := range flips {
		got, took := until(ctx, servers, f.name, c.opts.dnsTimeout, true, func(s served) bool { return s.Answers == f.to.String() && s.Revision >= at })
		for i, s := range got {
			switch {
			case took[i] >= 0:
				fmt.Fprintf(c.io.Stdout, "%s answers %s for %s after %v\n", s.Server, f.to, f.name, took[i].Round(100*time.Microsecond))
			case s.Error != "":
				fmt.Fprintf(c.io.Stdout, "%s: %s for %s after %v\n", s.Server, s.Error, f.name, c.opts.dnsTimeout)
				late = append(late, s.Server)
			default:
				fmt.Fprintf(c.io.Stdout, "%s still answers %s for %s (revision %d) after %v\n", s.Server, dash(s.Answers), f.name, s.Revision, c.opts.dnsTimeout)
				late = append(late, s.Server)
			}
		}
	}
	if len(late) > 0 {
		slices.Sort(late)
		return fmt.Errorf("written at revision %d, but %s did not answer it within --dns-timeout %v", at, strings.Join(slices.Compact(late), ", "), c.opts.dnsTimeout)
	}
	return nil
}

// clock is a time as bgctl prints it, local.
func clock(t time.Time) string { return t.Local().Format(time.TimeOnly) }

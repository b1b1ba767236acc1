package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var releaseCommand = &command{
	name: "release", args: "-f PLAN.yaml [--dry-run] [--dns ADDR,...]",
	short: "Run a whole gated release from a plan: smoke tests, canary steps, analysis, automatic rollback",
	long: `Releases the plan's names to its colour: first every smoke test against every address of that
colour (one failure stops the release before any client is sent there, and nothing is written);
then each step's share of clients, one transaction for all names, watched for the bake time
with the plan's analysis; then the final flip, as a trial for confirm_within if the plan says so.

A share is never raised while the latest analysis failed: a failed analysis holds the step,
its bake clock stopped, until an analysis passes again; a step ends only on a passing analysis
once its bake time is over, and bgctl exits 0 only if the last step's last analysis passed.
failure_limit failed analyses in a row, bgctl abort NAME from anywhere, or Ctrl-C roll every
name back to the old colour at once, and bgctl exits 1. bgctl pause NAME and bgctl resume NAME
hold and continue the bake. Every step is put on a lease that bgctl keeps alive: if bgctl
dies, etcd drops the lease and the names go back to the old colour by themselves within
--lease-ttl.

--dry-run checks the plan against etcd, runs the smoke tests and prints the schedule; it
writes nothing.`,
	flags: func(fs *pflag.FlagSet, o *options) {
		fs.StringVarP(&o.file, "filename", "f", "", "the plan: a YAML file, or - for stdin")
		fs.BoolVar(&o.dryRun, "dry-run", false, "check the plan, run the smoke tests and print the schedule; write nothing")
		fs.DurationVar(&o.leaseTTL, "lease-ttl", 15*time.Second, "if bgctl dies mid-release, the names go back to the old colour within this long")
		dnsFlags(fs, o, "for the plugin's health state (analysis: health: true)")
		maxTTLFlag(fs, o)
	},
	run: func(ctx context.Context, c *cli, args []string) error {
		o := c.opts
		switch {
		case len(args) > 0:
			return usagef("release takes no names: the plan has them (-f PLAN.yaml)")
		case o.file == "":
			return usagef("-f PLAN.yaml is required")
		case o.leaseTTL < 2*time.Second:
			return usagef("--lease-ttl %v: want at least 2s, for etcd's keep-alives to arrive in time", o.leaseTTL)
		}
		p, err := readPlan(o.file, c.io.Stdin)
		if err != nil {
			return err
		}
		servers, err := o.servers()
		if err != nil {
			return err
		}
		if p.Analysis != nil && p.Analysis.Health && len(servers) == 0 {
			return p.errorf("analysis.health", "needs --dns: the CoreDNS servers to ask for the plugin's health state")
		}
		r := &release{c: c, plan: p, servers: servers, ttl: map[string]uint32{}, ours: map[int64]bool{}, out: &progress{w: c.io.Stdout, live: c.io.Live, width: c.io.Columns}}
		defer r.out.done()
		if err := r.load(ctx); err != nil {
			return err
		}
		if err := r.gate(ctx); err != nil {
			return err
		}
		if o.dryRun {
			r.schedule()
			return nil
		}
		return r.run(ctx)
	},
}

// A release is one run of a plan.
type release struct {
	c       *cli
	plan    *plan
	servers []string
	targets []smokeTarget     // every address of the colour released
	ttl     map[string]uint32 // each name's TTL before the release
	lower   time.Duration     // how long answers with the old ttl may stay in caches, with lower_ttl
	out     *progress

	read  map[string]*name // the names as bgctl read them before its last write
	wrote int64            // the revision of that write; 0 before the first

	lease    clientv3.LeaseID
	kept     <-chan *clientv3.LeaseKeepAliveResponse
	requests clientv3.WatchChan
	changes  clientv3.WatchChan // of the names' keys, to see anyone else's write at once
	ours     map[int64]bool     // the revisions of the release's own writes
	stop     context.CancelFunc // ends the keep-alives and the watches
	state    releaseState

	step, share int   // the step in effect (from 1: its write committed) and its share of clients on the new colour
	bake        *bake // of the step, or of the wait for caches
	reach       reach
}

// load reads the plan's names and refuses any a release cannot take, naming
// the plan's line.
func (r *release) load(ctx context.Context) error {
	p, c := r.plan, r.c
	ns, _, err := c.read(ctx, p.Names)
	if err != nil {
		return err
	}
	for i, n := range p.Names {
		at := fmt.Sprintf("names.%d", i)
		if st, _, err := c.readState(ctx, n); err == nil {
			return p.errorf(at, "a release of %s is running already: %s; bgctl abort %s stops it", n, st.describe(), n)
		} else if !errors.As(err, new(*noReleaseError)) {
			return err
		}
		v := ns[n].view(c.opts.maxTTL)
		switch {
		case len(ns[n].keys) == 0:
			return p.errorf(at, "%s is not managed: etcd holds no key under %s", n, c.dir(n))
		case !v.serving():
			return p.errorf(at, "%s is not served: bgctl status %s says why", n, n)
		case v.trial != nil:
			return p.errorf(at, "%s is on a trial of %s: bgctl confirm or bgctl rollback it first", n, v.trial.Colour)
		case v.active == p.to:
			return p.errorf(at, "%s answers %s already", n, p.to)
		case v.canary > 0:
			return p.errorf(at, "%s has a canary share of %d %%: a release sets the share itself; bgctl canary %s 0 first", n, v.canary, n)
		case !v.targets[p.to].Set():
			return p.errorf(at, "%s has no %s target: bgctl set %s --%s TARGET first", n, p.to, n, p.to)
		case p.Analysis != nil && p.Analysis.Health && ns[n].keys[schema.FieldCheck] == nil:
			return p.errorf("analysis.health", "%s has no check key, so the plugin does not probe it: bgctl set %s --check URL, or drop health", n, n)
		}
		ttl, known := v.answeredTTL()
		if !known && len(r.servers) > 0 {
			ttl, _ = servedTTL(ctx, r.servers, n, ttl)
		}
		r.ttl[n] = ttl
		if p.LowerTTL > 0 && uint32(p.LowerTTL) > ttl {
			return p.errorf("lower_ttl", "%d is above %s's TTL of %d s: it would raise it", p.LowerTTL, n, ttl)
		}
		if p.LowerTTL > 0 && uint32(p.LowerTTL) < ttl {
			r.lower = max(r.lower, time.Duration(ttl)*time.Second)
		}
	}
	r.read = ns
	r.targets = smokeTargets(ns, p.Names, p.to)
	return nil
}

// gate runs every smoke test against every address of the colour
// released, and then the analysis's other checks once, as Argo Rollouts'
// pre-promotion analysis does: a check that cannot pass (Prometheus out of
// reach, a green address the plugin finds down) fails here, before any
// client is sent to the new colour, and nothing is written.
func (r *release) gate(ctx context.Context) error {
	p := r.plan
	if len(p.Smoke) == 0 {
		r.out.event("no smoke tests in the plan: nothing is checked before clients are sent to %s", p.to)
	} else {
		r.out.event("smoke: %d tests against %d addresses of %s", len(p.Smoke), len(r.targets), p.to)
		passed, failures := runSmoke(ctx, p.Smoke, r.targets)
		for _, f := range failures {
			r.out.event("FAILED %s", f)
		}
		if len(failures) > 0 {
			return r.refuse(fmt.Sprintf("%d of %d smoke tests failed, first %s", len(failures), passed+len(failures), failures[0]))
		}
		r.out.event("smoke: %d passed", passed)
	}
	if ap := p.Analysis; ap != nil && (ap.Health || len(ap.Prometheus) > 0 || len(ap.Web) > 0) {
		a := r.analyse(ctx, false)
		r.out.event("analysis before the first step: %s", a)
		if !a.ok() {
			return r.refuse("the analysis fails before any client is sent to " + p.to.String() + ": " + strings.Join(a.failures, "; "))
		}
	}
	return nil
}

// refuse is the gate's error: why, and that nothing was written.
func (r *release) refuse(why string) error {
	p := r.plan
	msg := fmt.Sprintf("%s: nothing was written, %s goes on serving %s", why, p.from, joinNames(p.Names))
	if !r.c.opts.dryRun {
		r.notify("abort", msg)
	}
	return errors.New(msg)
}

// schedule prints what the release would do, if it started now.
func (r *release) schedule() {
	p, w := r.plan, r.c.io.Stdout
	at := time.Now()
	fmt.Fprintf(w, "\n%s: %s -> %s; the schedule if it started now:\n", joinNames(p.Names), p.from, p.to)
	if r.lower > 0 {
		fmt.Fprintf(w, "  %s  ttl -> %d; wait %v for answers with the old ttl to expire from caches\n", clock(at), p.LowerTTL, r.lower)
		at = at.Add(r.lower)
	}
	for i, s := range p.Steps {
		fmt.Fprintf(w, "  %s  step %d/%d: %d %% of clients on %s, watched %v%s\n", clock(at), i+1, len(p.Steps), s, p.to, p.bake, r.analysisNote())
		at = at.Add(p.bake)
	}
	switch {
	case p.ConfirmWithin.set:
		fmt.Fprintf(w, "  %s  done: %s on trial until %s, reverting unless bgctl confirm runs by then\n", clock(at), p.to, clock(at.Add(p.ConfirmWithin.Duration)))
	default:
		fmt.Fprintf(w, "  %s  done: %s for good\n", clock(at), p.to)
	}
	if a := p.Analysis; a != nil {
		fmt.Fprintf(w, "each step ends only on a passing analysis: a failed one holds the step, its bake clock stopped, until one passes (then the clock goes on) or %d failed in a row roll back; bgctl exits 0 only if the last step's last analysis passed\n", a.FailureLimit)
	}
	fmt.Fprintln(w, "nothing was written (--dry-run)")
}

func (r *release) analysisNote() string {
	a := r.plan.Analysis
	if a == nil || r.plan.bake == 0 {
		return ""
	}
	return fmt.Sprintf(", analysed every %v (rollback after %d failed in a row)", a.Interval.Duration, a.FailureLimit)
}

const (
	stateRunning = "running"
	statePaused  = "paused"
	stateWaiting = "waiting for caches"
)

var (
	errLeaseLost   = errors.New("the release's lease is gone (etcd out of reach for longer than --lease-ttl?): etcd dropped the release's keys, and the names went back by themselves")
	errInterrupted = errors.New("interrupted")
)

// run walks the plan on a lease, and rolls back on any failure.
func (r *release) run(ctx context.Context) error {
	p := r.plan
	if err := r.begin(ctx); err != nil {
		return err
	}
	defer r.stop()
	r.notify("start", fmt.Sprintf("release of %s to %s started", joinNames(p.Names), p.to))
	shares := make([]string, len(p.Steps))
	for i, s := range p.Steps {
		shares[i] = itoa(s)
	}
	r.out.event("release of %s: %s -> %s in %d steps (%s %%); if bgctl stops, they go back to %s within %v",
		joinNames(p.Names), p.from, p.to, len(p.Steps), strings.Join(shares, ", "), p.from, r.c.opts.leaseTTL)
	if err := r.walk(ctx); err != nil {
		return r.rollback(err)
	}
	return r.finish(ctx)
}

// begin grants the release's lease and keeps it alive, puts the state keys
// on it (refusing if another release took a name meanwhile), and watches
// for requests.
func (r *release) begin(ctx context.Context) error {
	c, p := r.c, r.plan
	cli, err := c.connect(ctx)
	if err != nil {
		return err
	}
	gctx, cancel := c.timeout(ctx)
	defer cancel()
	lr, err := cli.Grant(gctx, int64(c.opts.leaseTTL.Round(time.Second)/time.Second))
	if err != nil {
		return c.etcdError("granting the release's lease", err)
	}
	r.lease, r.reach.kept = lr.ID, time.Now()
	// Not the command's context, which Ctrl-C cancels: the rollback still
	// needs the lease and etcd.
	var kctx context.Context
	kctx, r.stop = context.WithCancel(context.Background())
	if r.kept, err = cli.KeepAlive(kctx, r.lease); err != nil {
		return r.end(c.etcdError("keeping the release's lease alive", err))
	}
	host, _ := os.Hostname()
	r.state = releaseState{Plan: p.file, Names: p.Names, From: p.from.String(), To: p.to.String(), Steps: len(p.Steps),
		State: stateRunning, User: c.who(), Host: host, PID: os.Getpid(), Started: time.Now().UTC()}
	data, _ := json.Marshal(r.state)
	var conds []clientv3.Cmp
	var ops []clientv3.Op
	for _, n := range p.Names {
		conds = append(conds, c.noRelease(n)) // a stale state key is put over
		ops = append(ops, clientv3.OpPut(c.stateKey(n), string(data), clientv3.WithLease(r.lease)))
	}
	tctx, cancel2 := c.timeout(ctx)
	defer cancel2()
	resp, err := cli.Txn(tctx).If(conds...).Then(ops...).Commit()
	switch {
	case err != nil:
		return r.end(c.etcdError("writing the release's state", err))
	case !resp.Succeeded:
		return r.end(fmt.Errorf("another release of %s started meanwhile: nothing was written", joinNames(p.Names)))
	}
	c.release = r.lease
	r.requests = cli.Watch(kctx, c.globals.releasePrefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	r.changes = cli.Watch(kctx, c.globals.prefix, clientv3.WithPrefix(), clientv3.WithRev(resp.Header.Revision+1))
	return nil
}

// end stops keeping the lease alive and revokes it, so that what is on it
// goes at once, and returns err.
func (r *release) end(err error) error {
	r.stop()
	ctx, cancel := r.c.timeout(context.Background())
	defer cancel()
	if _, rerr := r.c.etcd.Revoke(ctx, r.lease); rerr != nil && err == nil {
		err = fmt.Errorf("revoking the release's lease %x: %v; it runs out within %v", r.lease, rerr, r.c.opts.leaseTTL)
	}
	return err
}

// walk lowers the ttl if the plan says so, then takes every step and
// watches it for the bake time.
func (r *release) walk(ctx context.Context) error {
	p := r.plan
	if r.lower > 0 {
		at, err := r.write(ctx, 1, "ttl lowered", func(n string) schema.Trial { return schema.Trial{Colour: p.from} })
		if err != nil {
			return r.unwritten("the lowered ttl", err)
		}
		for _, n := range p.Names {
			if r.ttl[n] > uint32(p.LowerTTL) {
				r.out.event("%s: ttl %d -> %d while the release runs (revision %d)", n, r.ttl[n], p.LowerTTL, at)
			}
		}
		r.out.event("waiting %v, until %s, for answers with the old ttl to expire from caches", r.lower, clock(time.Now().Add(r.lower)))
		r.setState(stateWaiting)
		if err := r.hold(ctx, r.lower, false); err != nil {
			return err
		}
	}
	for i, share := range p.Steps {
		at, err := r.write(ctx, i+1, fmt.Sprintf("step %d/%d, %d %% on %s", i+1, len(p.Steps), share, p.to), func(string) schema.Trial {
			if share == 100 {
				return schema.Trial{Colour: p.to, HasCanary: true}
			}
			return schema.Trial{Colour: p.from, Canary: uint8(share), HasCanary: true}
		})
		if err != nil {
			return r.unwritten(fmt.Sprintf("step %d/%d", i+1, len(p.Steps)), err)
		}
		r.step, r.share = i+1, share // only now: the step is in etcd
		msg := fmt.Sprintf("step %d/%d: %d %% of clients on %s (revision %d)", r.step, len(p.Steps), share, p.to, at)
		if p.bake > 0 {
			msg += fmt.Sprintf(", watched for %v, until %s", p.bake, clock(time.Now().Add(p.bake)))
		}
		r.out.event("%s", msg)
		r.notify("step", msg)
		r.setState(stateRunning)
		if err := r.hold(ctx, p.bake, true); err != nil {
			return err
		}
	}
	return nil
}

// write puts each name's trial for step (from 1), as trialOf says, on the
// release's lease, with the lowered ttl if any, in one transaction with
// its history; it fails if anyone else changed a name since bgctl's last
// write.
func (r *release) write(ctx context.Context, step int, what string, trialOf func(string) schema.Trial) (int64, error) {
	c, p := r.c, r.plan
	now, rev, err := r.reread(ctx)
	if err != nil {
		return 0, err
	}
	until := r.until(step)
	var edits []*edit
	for _, n := range p.Names {
		t := trialOf(n)
		t.Until = until
		if r.lower > 0 {
			t.TTL, t.HasTTL = uint32(p.LowerTTL), true
		}
		e := newEdit(now[n])
		e.put(schema.FieldTrial, t.String())
		e.lease = r.lease
		if err := c.check(e); err != nil {
			return 0, err
		}
		edits = append(edits, e)
	}
	return r.commit(ctx, rev, what, now, edits)
}

// reread reads the names again and fails if anyone but this release
// changed one since its last write.
func (r *release) reread(ctx context.Context) (map[string]*name, int64, error) {
	now, rev, err := r.c.read(ctx, r.plan.Names)
	if err != nil {
		return nil, 0, err
	}
	for _, n := range r.plan.Names {
		if changedSince(r.read[n], now[n], r.wrote, r.wrote != 0) {
			return nil, 0, fmt.Errorf("%s changed in etcd during the release: someone else wrote to %s", n, r.c.dir(n))
		}
	}
	return now, rev, nil
}

// commit commits edits of the names as read at rev, as the release's
// command with what it does, and remembers them as bgctl's last write.
func (r *release) commit(ctx context.Context, rev int64, what string, read map[string]*name, edits []*edit) (int64, error) {
	c := r.c
	base := c.recorded
	c.recorded = base + ": " + what
	defer func() { c.recorded = base }()
	at, err := c.commit(ctx, rev, r.plan.Reason, edits)
	if err == nil {
		r.read, r.wrote = read, at
		r.ours[at] = true
	}
	return at, err
}

// until is when the release's trials end if it goes to plan from step
// (from 1) on: the lease runs out then, once bgctl no longer keeps it
// alive.
func (r *release) until(step int) time.Time {
	left := time.Duration(len(r.plan.Steps)-step+1) * r.plan.bake
	return trialEnd(time.Now().Add(left), r.c.opts.leaseTTL)
}

// trialEnd is when a trial on a lease of ttl from start is surely over:
// etcd looks for leases that ran out twice a second; rounded up to the
// second.
func trialEnd(start time.Time, ttl time.Duration) time.Time {
	return start.Add(ttl + etcdLeaseCheck).Truncate(time.Second).Add(time.Second).UTC()
}

// hold watches a step for d of bake time (or waits d for caches, when
// analyse is not set) under the rule bake keeps, running the analysis every
// interval; it returns when the step ends, or early with the reason to
// roll back: failed analyses, an abort, Ctrl-C, the lease gone.
func (r *release) hold(ctx context.Context, d time.Duration, analyse bool) error {
	b := newBake(time.Now(), d, 0)
	r.bake = b
	var tick <-chan time.Time
	if ap := r.plan.Analysis; analyse && ap != nil {
		t := time.NewTicker(ap.Interval.Duration)
		defer t.Stop()
		tick, b.limit = t.C, ap.FailureLimit
	}
	status := time.NewTicker(time.Second) // the status line shows the time left, and keep-alives are due
	defer status.Stop()
	timer := time.NewTimer(d)
	defer timer.Stop()
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan look, 1)
	running, ended := false, false
	start := func() {
		running = true
		go func() { results <- r.look(actx) }()
	}
	for {
		b.advance(time.Now())
		if b.done() {
			return nil
		}
		if b.over() && !ended {
			ended = true
			if b.limit > 0 && !running {
				start() // the analysis of the step's end; or the one running is
			}
		}
		if b.running() && !b.over() {
			timer.Reset(b.left) // to wake when the bake time runs out
		} else {
			timer.Stop()
		}
		r.out.status("%s", r.statusLine())
		select {
		case <-ctx.Done():
			return errInterrupted
		case _, ok := <-r.kept:
			if !ok {
				return r.leaseLost()
			}
			r.reach.kept = time.Now() // not that bgctl can read and write: a stopping etcd may answer these still
		case wr, ok := <-r.changes:
			if err := r.outsideChange(wr, ok); err != nil {
				return err
			}
		case wr, ok := <-r.requests:
			if err := r.requested(wr, ok); err != nil {
				return err
			}
		case <-tick:
			if !running {
				start()
			}
		case l := <-results:
			running = false
			if err := r.judge(l); err != nil {
				return err
			}
		case <-timer.C:
		case <-status.C:
			r.checkKept()
		}
	}
}

// A look is one analysis, and whether bgctl could confirm the step in
// place in etcd after it.
type look struct {
	analysis
	unconfirmed error // why not; nil when confirmed
}

// look runs the analysis, then reads the names to confirm the step.
func (r *release) look(ctx context.Context) look {
	return look{analysis: r.analyse(ctx, true), unconfirmed: r.confirm(ctx)}
}

// judge prints an analysis and records it in the step's bake; it returns
// why to roll back, if the failures reached failure_limit.
func (r *release) judge(l look) error {
	b, p := r.bake, r.plan
	switch {
	case l.unconfirmed != nil && unreachable(l.unconfirmed):
		r.lost(l.unconfirmed.Error())
	case l.unconfirmed == nil:
		r.reached()
	}
	if l.ok() && l.unconfirmed != nil {
		r.out.event("analysis not counted: its checks passed (%s), but bgctl cannot confirm step %d/%d is in place: %v", strings.Join(l.passed, ", "), r.step, len(p.Steps), l.unconfirmed)
	} else {
		r.out.event("analysis: %s", l.analysis)
	}
	before := b.failed
	if b.record(time.Now(), l.ok(), l.unconfirmed == nil) {
		return fmt.Errorf("failed analyses in a row: %d, failure_limit %d; last: %s", b.failed, b.limit, strings.Join(l.failures, "; "))
	}
	if b.failed == 1 {
		r.out.event("step %d/%d held at %d %% on %s: its bake clock stops until an analysis passes; %d failed in a row roll back", r.step, len(p.Steps), r.share, p.to, b.limit)
	}
	if b.failed != before && !b.paused && r.reach.since.IsZero() {
		r.setState(r.unpaused()) // bgctl status shows it
	}
	return nil
}

// statusLine is the line kept up to date below the events on a terminal:
// where the release is, how long it stays there, and how the analysis
// goes.
func (r *release) statusLine() string {
	b := r.bake
	left := (b.remaining(time.Now()) + time.Second - 1).Truncate(time.Second) // 5s left in the first second of a 5s bake
	var s string
	if r.step == 0 {
		s = fmt.Sprintf("ttl lowered: answers with the old one leave caches in %v", left)
	} else {
		s = fmt.Sprintf("step %d/%d: %d %% on %s, %v left", r.step, len(r.plan.Steps), r.share, r.plan.to, left)
	}
	if h := b.held(); h != "" {
		s += ", " + h
	} else if b.passed {
		s += ", last analysis ok"
	}
	if !r.reach.since.IsZero() {
		s += ", etcd unreachable since " + clock(r.reach.since)
	}
	if b.paused {
		s += ", PAUSED (bgctl resume)"
	}
	return s
}

// requested acts on a watch response of the request keys: abort rolls
// back, pause and resume stop and restart the bake clock.
func (r *release) requested(wr clientv3.WatchResponse, ok bool) error {
	if err := wr.Err(); !ok || err != nil {
		return r.watchFailed(r.c.globals.releasePrefix, "abort, pause and resume", ok, err)
	}
	for _, ev := range wr.Events {
		switch req, err := r.request(ev); {
		case err != nil:
			return err
		case req == "pause" || req == "resume":
			r.bake.pause(time.Now(), req == "pause")
		}
	}
	return nil
}

// watchFailed is the release's error when a watch of prefix ends.
func (r *release) watchFailed(prefix, what string, ok bool, err error) error {
	if !ok || unreachable(err) {
		r.lost(fmt.Sprintf("watching %s: %v", prefix, err))
	}
	return fmt.Errorf("watching %s for %s: %v", prefix, what, err)
}

// unwritten is the release's error when what could not be written; etcd
// out of reach is said so.
func (r *release) unwritten(what string, err error) error {
	if !unreachable(err) {
		return err
	}
	r.lost(err.Error())
	return fmt.Errorf("%s not written: %w", what, err)
}

// outsideChange returns why the release must stop if a watch response of
// the names' keys holds a change that is not the release's own: someone
// else wrote to one of its names, and the release would otherwise go on
// as if they had not.
func (r *release) outsideChange(wr clientv3.WatchResponse, ok bool) error {
	if err := wr.Err(); !ok || err != nil {
		return r.watchFailed(r.c.globals.prefix, "changes by others", ok, err)
	}
	for _, ev := range wr.Events {
		if r.ours[ev.Kv.ModRevision] {
			continue
		}
		for _, n := range r.plan.Names {
			switch key := string(ev.Kv.Key); {
			case key == schema.Key(r.c.globals.prefix, n, schema.FieldTrial) && ev.Type == clientv3.EventTypeDelete:
				return fmt.Errorf("%s's trial key, the release's step, was deleted (revision %d): its lease ended, or someone deleted it", n, ev.Kv.ModRevision)
			case strings.HasPrefix(key, r.c.dir(n)):
				return fmt.Errorf("%s changed in etcd during the release: someone else wrote to %s (revision %d)", n, key, ev.Kv.ModRevision)
			}
		}
	}
	return nil
}

// request acts on a put of a request key of one of the release's names:
// it returns the action asked for, pause or resume, or for abort an error
// that rolls the release back.
func (r *release) request(ev *clientv3.Event) (string, error) {
	n, ok := r.requestName(ev.Kv)
	if !ok || ev.Type != clientv3.EventTypePut {
		return "", nil
	}
	var req releaseRequest
	if err := json.Unmarshal(ev.Kv.Value, &req); err != nil {
		return "", nil // not bgctl's: nothing to do
	}
	by := req.User
	if req.Reason != "" {
		by += ": " + req.Reason
	}
	switch {
	case req.Action == "abort":
		return "", fmt.Errorf("aborted with bgctl abort %s by %s", n, by)
	case req.Action == "pause" && !r.bake.paused:
		held := "the bake clock stops, the analysis goes on"
		if r.step == 0 {
			held = fmt.Sprintf("the wait for caches stops; no client is sent to %s until bgctl resume", r.plan.to)
		}
		r.out.event("paused with bgctl pause %s by %s: %s", n, by, held)
		r.notify("pause", "paused by "+by)
		r.setState(statePaused)
	case req.Action == "resume" && r.bake.paused:
		r.out.event("resumed with bgctl resume %s by %s", n, by)
		r.notify("resume", "resumed by "+by)
		r.setState(r.unpaused())
	default:
		return "", nil
	}
	return req.Action, nil
}

// unpaused is the release's state for others to see when it is not
// paused: waiting for caches, held by failed analyses, or running.
func (r *release) unpaused() string {
	switch {
	case r.step == 0:
		return stateWaiting
	case r.bake.failed > 0:
		return r.bake.held()
	}
	return stateRunning
}

// requestName is the name of the release whose request key kv is.
func (r *release) requestName(kv *mvccpb.KeyValue) (string, bool) {
	for _, n := range r.plan.Names {
		if string(kv.Key) == r.c.requestKey(n) {
			return n, true
		}
	}
	return "", false
}

// setState updates the release's state keys, for abort, pause and resume
// and anyone who looks. A failure is only warned of: the state is news.
func (r *release) setState(state string) {
	r.state.State, r.state.Step, r.state.Canary = state, r.step, r.share
	data, _ := json.Marshal(r.state)
	var ops []clientv3.Op
	for _, n := range r.plan.Names {
		ops = append(ops, clientv3.OpPut(r.c.stateKey(n), string(data), clientv3.WithLease(r.lease)))
	}
	ctx, cancel := r.c.timeout(context.Background())
	defer cancel()
	_, err := r.c.etcd.Txn(ctx).Then(ops...).Commit()
	switch {
	case err != nil && unreachable(err):
		r.lost(r.c.etcdError("writing the release's state", err).Error())
	case err != nil:
		fmt.Fprintf(r.c.io.Stderr, "Warning: %v\n", r.c.etcdError("writing the release's state", err))
	}
}

// finish makes the last step the names' own: a trial on a lease of its own
// for confirm_within, or active; the release's lease then goes.
func (r *release) finish(ctx context.Context) error {
	c, p := r.c, r.plan
	now, rev, err := r.reread(ctx)
	if err != nil {
		return r.rollback(err)
	}
	var trial clientv3.LeaseID
	var until time.Time
	if p.ConfirmWithin.set {
		gctx, cancel := c.timeout(ctx)
		granted := time.Now()
		lr, err := c.etcd.Grant(gctx, int64((p.ConfirmWithin.Duration+time.Second-1)/time.Second))
		cancel()
		if err != nil {
			return r.rollback(c.etcdError("granting the rollback window's lease", err))
		}
		trial, until = lr.ID, trialEnd(granted, time.Duration(lr.TTL)*time.Second)
	}
	var edits []*edit
	for _, n := range p.Names {
		e := newEdit(now[n])
		if trial != 0 {
			t := schema.Trial{Colour: p.to, Until: until}
			if r.lower > 0 {
				t.TTL, t.HasTTL = uint32(p.LowerTTL), true
			}
			e.put(schema.FieldTrial, t.String())
			e.lease = trial
		} else {
			e.put(schema.FieldActive, p.to.String())
			e.del(schema.FieldTrial)
		}
		if err := c.check(e); err != nil {
			return r.rollback(err)
		}
		edits = append(edits, e)
	}
	at, err := r.commit(ctx, rev, "done", now, edits)
	if err != nil {
		err = r.unwritten("the final flip", err)
		if trial != 0 {
			rctx, cancel := c.timeout(context.Background())
			c.etcd.Revoke(rctx, trial) // unused: else it would only run out
			cancel()
		}
		return r.rollback(err)
	}
	r.out.done()
	err = r.end(nil)
	msg := fmt.Sprintf("done: %s %s (revision %d)", r.subject(), p.to, at)
	if trial != 0 {
		msg += fmt.Sprintf(", on trial until %s: bgctl confirm %s keeps it, else %s comes back by itself then", clock(until), strings.Join(p.Names, " "), p.from)
	}
	r.out.event("%s", msg)
	r.printTTLs(trial != 0)
	r.out.event("%s drained from caches by %s", p.from, r.drained())
	r.notify("success", msg)
	return err
}

// printTTLs says what became of a lowered ttl: it holds while the final
// flip is a trial, and is back to each name's own once it is not.
func (r *release) printTTLs(trial bool) {
	if r.lower == 0 {
		return
	}
	for _, n := range r.plan.Names {
		if r.ttl[n] <= uint32(r.plan.LowerTTL) {
			continue
		}
		if trial {
			r.out.event("%s: ttl %d until bgctl confirm, then %d again", n, r.plan.LowerTTL, r.ttl[n])
		} else {
			r.out.event("%s: ttl %d -> %d", n, r.plan.LowerTTL, r.ttl[n])
		}
	}
}

// subject is the release's names with the verb "answer", as a sentence
// begins.
func (r *release) subject() string {
	if len(r.plan.Names) == 1 {
		return r.plan.Names[0] + " answers"
	}
	return joinNames(r.plan.Names) + " answer"
}

// drained is when no cache holds an answer given before now: one TTL,
// the lowered one if the release lowered it.
func (r *release) drained() string {
	var ttl uint32
	for _, n := range r.plan.Names {
		ttl = max(ttl, r.ttl[n])
	}
	if r.lower > 0 {
		ttl = uint32(r.plan.LowerTTL)
	}
	return fmt.Sprintf("%s, TTL %d s", clock(time.Now().Add(time.Duration(ttl)*time.Second)), ttl)
}

// rollback puts every name back on the old colour at once, in one
// transaction with its history, and ends the release's lease (which would
// put them back by itself too); it returns why, as the release's error.
func (r *release) rollback(cause error) error {
	c, p := r.c, r.plan
	r.out.done()
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.globals.commandTimeout) // the command's may be cancelled
	defer cancel()
	if errors.Is(cause, errInterrupted) {
		cause = errors.New("interrupted (bgctl got a signal)")
	}
	how, at := "the release's lease revoked", int64(0)
	now, rev, err := c.read(ctx, p.Names)
	r.heard(err)
	var edits []*edit
	for _, n := range p.Names {
		if err == nil && now[n].keys[schema.FieldTrial] != nil && now[n].keys[schema.FieldTrial].Lease == int64(r.lease) {
			e := newEdit(now[n])
			e.del(schema.FieldTrial)
			edits = append(edits, e)
		}
	}
	if err == nil && len(edits) > 0 {
		var cerr error
		if at, cerr = r.commit(ctx, rev, "rollback", now, edits); cerr == nil {
			how = fmt.Sprintf("revision %d", at)
		}
		r.heard(cerr)
	}
	if err := r.end(nil); err != nil && !errors.Is(cause, errLeaseLost) {
		how = err.Error()
	}
	what := "rollback"
	if strings.HasPrefix(cause.Error(), "aborted") {
		what = "abort"
	}
	msg, back := r.rolledBack(ctx, how, at)
	r.out.event("%s; %s", cause, msg)
	if r.step > 0 && back {
		r.out.event("%s drained from caches by %s", p.to, r.drained())
	}
	r.notify(what, cause.Error()+"; "+msg)
	return fmt.Errorf("%v; %s", cause, msg)
}

// heard notes what an etcd request's error says of etcd's reach.
func (r *release) heard(err error) {
	switch {
	case err == nil:
		r.reached()
	case unreachable(err):
		r.lost(err.Error())
	}
}

// rolledBack says where the names are after a rollback written at
// revision at (0 if none was), as etcd now holds them: back on the old
// colour, unless someone else's change stands; and with --dns, what the
// servers answer. back reports whether every name is. With etcd out of
// reach, it says what etcd will do by itself instead.
func (r *release) rolledBack(ctx context.Context, how string, at int64) (msg string, back bool) {
	p := r.plan
	msg = fmt.Sprintf("rolled back at step %d/%d", r.step, len(p.Steps))
	again, stopped := "again", fmt.Sprintf("stopped at step %d/%d", r.step, len(p.Steps))
	if r.step == 0 {
		msg, again, stopped = "stopped before step 1", "as before", "stopped before step 1"
	}
	var now map[string]*name
	if r.reach.since.IsZero() {
		var err error
		if now, _, err = r.c.read(ctx, p.Names); err != nil {
			r.lost(err.Error()) // out of reach, or refused: either way bgctl cannot read them
		}
	}
	switch {
	case !r.reach.since.IsZero() && at > 0:
		return fmt.Sprintf("%s (%s), and etcd at %s out of reach since %s%s", msg, how, r.c.globals.shownEndpoints(), clock(r.reach.since), r.answered(at)), false
	case !r.reach.since.IsZero():
		return r.stranded(stopped), false
	}
	var others []string
	for _, n := range p.Names {
		v := now[n].view(r.c.opts.maxTTL)
		switch c := v.answers(); {
		case c != p.from:
			others = append(others, fmt.Sprintf("%s answers %s, as someone else wrote", n, c))
		case v.canary > 0:
			others = append(others, fmt.Sprintf("%s answers %s with %d %% of clients on %s, as someone else wrote", n, c, v.canary, c.Other()))
		}
	}
	if len(others) > 0 {
		return fmt.Sprintf("%s (%s): %s%s", msg, how, strings.Join(others, "; "), r.answered(at)), false
	}
	return fmt.Sprintf("%s: %s %s %s (%s)%s", msg, r.subject(), p.from, again, how, r.answered(at)), true
}

// answered says, with --dns, what each server answers for each name: once
// it answers the old colour to every client as of revision at, or as it
// is when at is 0 or it does not get there within --dns-timeout. It is ""
// without --dns.
func (r *release) answered(at int64) string {
	p := r.plan
	if len(r.servers) == 0 {
		return ""
	}
	var says []string
	for _, n := range p.Names {
		got, _ := until(context.Background(), r.servers, n, r.c.opts.dnsTimeout, false, func(s served) bool {
			return at == 0 || s.Answers == p.from.String() && s.Canary == "0" && s.Revision >= at
		})
		for _, s := range got {
			if s.Error != "" {
				says = append(says, fmt.Sprintf("%s: %s for %s", s.Server, s.Error, n))
				continue
			}
			other := p.to
			if s.Answers == p.to.String() {
				other = p.from
			}
			say := fmt.Sprintf("%s answers %s for %s", s.Server, dash(s.Answers), n)
			if s.Canary != "" && s.Canary != "0" {
				say += fmt.Sprintf(" with %s %% of clients on %s", s.Canary, other)
			}
			says = append(says, fmt.Sprintf("%s (revision %d)", say, s.Revision))
		}
	}
	return "; " + strings.Join(says, "; ")
}

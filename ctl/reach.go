package ctl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// reach is what a release knows of etcd being within its reach: since
// when it is not, and when etcd last answered a keep-alive of the
// release's lease (which etcd then keeps for --lease-ttl more).
type reach struct {
	since time.Time // zero while etcd answers
	kept  time.Time
}

// unreachable reports whether err says etcd did not answer, rather than
// that it refused.
func unreachable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return true
	}
	return errors.Is(err, context.DeadlineExceeded)
}

// lost reports etcd out of reach, once an outage.
func (r *release) lost(why string) {
	if !r.reach.since.IsZero() {
		return
	}
	r.reach.since = time.Now()
	r.out.event("etcd at %s unreachable since %s: %s", r.c.globals.shownEndpoints(), clock(r.reach.since), why)
}

// reached reports etcd within reach again, after an outage.
func (r *release) reached() {
	if r.reach.since.IsZero() {
		return
	}
	r.out.event("etcd at %s answers again, after %v out of reach", r.c.globals.shownEndpoints(), time.Since(r.reach.since).Round(100*time.Millisecond))
	r.reach.since = time.Time{}
}

// keptGap is how long bgctl waits for an answer to the lease's
// keep-alives, which the etcd client sends every third of the lease's TTL,
// before it calls etcd unreachable.
func (r *release) keptGap() time.Duration { return r.c.opts.leaseTTL/2 + time.Second }

// checkKept reports etcd unreachable when its answers to the keep-alives
// stopped.
func (r *release) checkKept() {
	if time.Since(r.reach.kept) > r.keptGap() {
		r.lost("no answer to the release's keep-alives since " + clock(r.reach.kept))
	}
}

// leaseLost is why the release stops when the keep-alives end: etcd
// dropped the lease (revoked by bgctl abort, or run out), or bgctl could
// not reach etcd for --lease-ttl, and then cannot know which.
func (r *release) leaseLost() error {
	ctx, cancel := r.c.timeout(context.Background())
	defer cancel()
	resp, err := r.c.etcd.TimeToLive(ctx, r.lease)
	switch {
	case err == nil && resp.TTL <= 0:
		r.reached()
		return errLeaseLost
	case err == nil:
		r.reached()
		return fmt.Errorf("the keep-alives of the release's lease %x stopped, with %d s left on it", r.lease, resp.TTL)
	}
	r.lost(r.c.etcdError("asking for the release's lease", err).Error())
	return fmt.Errorf("no answer from etcd to the release's keep-alives since %s, --lease-ttl %v", clock(r.reach.kept), r.c.opts.leaseTTL)
}

// confirm reads the names and checks that the step is in place: each
// name's trial key on the release's lease.
func (r *release) confirm(ctx context.Context) error {
	now, _, err := r.c.read(ctx, r.plan.Names)
	if err != nil {
		return err
	}
	for _, n := range r.plan.Names {
		kv := now[n].keys[schema.FieldTrial]
		if kv == nil || kv.Lease != int64(r.lease) {
			return fmt.Errorf("%s's trial key is not the release's", n)
		}
	}
	return nil
}

// stranded is the closing line when etcd was out of reach for the
// rollback: what etcd will do by itself, and what the servers answer now,
// as far as bgctl can tell.
func (r *release) stranded(at string) string {
	p, ttl := r.plan, r.c.opts.leaseTTL
	msg := fmt.Sprintf("%s; the rollback could not be written: etcd at %s unreachable since %s. etcd puts %s back on %s when it drops the release's lease: by %s if etcd is up, or %v after it is back and has a leader, if it is down; until then the servers answer what etcd last told them",
		at, r.c.globals.shownEndpoints(), clock(r.reach.since), joinNames(p.Names), p.from, clock(trialEnd(r.reach.kept, ttl)), ttl)
	if len(r.servers) == 0 {
		return msg + " (bgctl could not check what they answer: no --dns)"
	}
	return msg + r.answered(0)
}

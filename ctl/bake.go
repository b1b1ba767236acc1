package ctl

import (
	"fmt"
	"time"
)

// A bake is the watch of one step, under the release's rule (Flagger's and
// Argo Rollouts'): a share is never raised while the latest analysis
// failed. A failed analysis holds the step, its clock stopped, until an
// analysis passes again or failure_limit failures in a row roll back. The
// step ends only on a passing analysis that bgctl could confirm (etcd
// answered, the step in place) once the bake time is over. It is pure: the
// hold loop feeds it the time and each result, and asks it what to do.
type bake struct {
	left   time.Duration // bake time still to run, as of at
	at     time.Time
	limit  int  // failure_limit; 0 when the step has no analysis
	paused bool // by bgctl pause
	failed int  // analyses failed in a row
	passed bool // the latest analysis passed, and was confirmed
}

func newBake(now time.Time, d time.Duration, limit int) *bake {
	return &bake{left: d, at: now, limit: limit}
}

// running reports whether the bake clock runs: not while paused, nor while
// the latest analysis failed.
func (b *bake) running() bool { return !b.paused && b.failed == 0 }

// remaining is the bake time left at now.
func (b *bake) remaining(now time.Time) time.Duration {
	if !b.running() {
		return b.left
	}
	return max(b.left-now.Sub(b.at), 0)
}

// advance counts the bake time up to now. When it runs out, a pass from
// before no longer counts: the step ends on an analysis of its end.
func (b *bake) advance(now time.Time) {
	if b.left > 0 {
		if b.left = b.remaining(now); b.left == 0 {
			b.passed = false
		}
	}
	b.at = now
}

// pause stops or restarts the clock, at now.
func (b *bake) pause(now time.Time, paused bool) {
	b.advance(now)
	b.paused = paused
}

// record takes an analysis's result at now: ok when every check passed,
// confirmed when bgctl could also see the step in place in etcd. An
// unconfirmed pass counts for nothing; a failure always counts. It
// reports whether the release must roll back.
func (b *bake) record(now time.Time, ok, confirmed bool) (rollback bool) {
	b.advance(now)
	switch {
	case !ok:
		b.failed++
		b.passed = false
		return b.failed >= b.limit
	case confirmed:
		b.failed, b.passed = 0, true
	default:
		b.passed = false
	}
	return false
}

// over reports whether the bake time had run when last counted.
func (b *bake) over() bool { return b.left == 0 }

// done reports whether the step ends, as of the last count: its bake time
// run, not paused, and, with an analysis, the latest one passed.
func (b *bake) done() bool {
	return b.over() && !b.paused && (b.limit == 0 || b.passed)
}

// held says what holds a step beyond its bake clock, as of the last
// count; "" when nothing does.
func (b *bake) held() string {
	switch {
	case b.failed > 0:
		return fmt.Sprintf("held: last analysis failed (%d of %d)", b.failed, b.limit)
	case b.limit > 0 && b.over() && !b.passed:
		return "held: waiting for a passing analysis"
	}
	return ""
}

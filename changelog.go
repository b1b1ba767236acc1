package bluegreen

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// logChanges logs how name's answers changed from was to now (nil when the
// name has no keys) at revision rev, and counts switches.
func logChanges(name string, was, now *entry, rev int64) {
	name = strings.TrimSuffix(name, ".")
	wasServing, nowServing := was != nil && was.serving(), now != nil && now.serving()
	switch {
	case !wasServing && nowServing:
		log.Infof("%s: now served, %s (revision %d)", name, now.active, rev)
		return
	case wasServing && !nowServing:
		why := "its keys are gone"
		if now != nil {
			why = now.unserved
		}
		log.Infof("%s: no longer served: %s (revision %d)", name, why, rev)
		return
	case !nowServing:
		return
	}
	if was.active != now.active {
		log.Infof("%s: %s -> %s (revision %d)", name, was.active, now.active, rev)
		switchesTotal.Inc()
	}
	for _, c := range schema.Colours {
		if from, to := was.targets[c].Raw, now.targets[c].Raw; from != to {
			log.Infof("%s: %s target %s -> %s (revision %d)", name, c, orNone(from), orNone(to), rev)
		}
	}
	if was.ttl != now.ttl {
		log.Infof("%s: ttl %d -> %d (revision %d)", name, was.ttl, now.ttl, rev)
	}
	if was.canary != now.canary {
		log.Infof("%s: canary %d -> %d (revision %d)", name, was.canary, now.canary, rev)
	}
	logTrial(name, was.trial, now, rev)
	switch {
	case now.failover && !was.failover:
		log.Warningf("%s: failover to %s: every %s address is down", name, now.answering(), now.active)
	case was.failover && !now.failover && now.isDown(now.active):
		log.Warningf("%s: failover ended: %s is down too, answering all of %s", name, now.active.Other(), now.active)
	case was.failover && !now.failover:
		log.Infof("%s: failover ended: %s is up again", name, now.active)
	}
}

// logTrial logs a trial that starts or changes, and one that ends: kept
// (confirmed, or a trial of what the name answers anyway) or reverted
// (rolled back, its lease expired unconfirmed, or a release's canary share
// gone with it).
func logTrial(name string, was *schema.Trial, now *entry, rev int64) {
	switch t := now.trial; {
	case t != nil && (was == nil || *was != *t):
		more := ""
		if t.HasTTL {
			more += fmt.Sprintf(", ttl %d", t.TTL)
		}
		if t.HasCanary {
			more += fmt.Sprintf(", canary %d", t.Canary)
		}
		log.Infof("%s: trial of %s until %s%s (revision %d)", name, t.Colour, t.Until.Format(time.RFC3339), more, rev)
	case t == nil && was != nil && now.active == was.Colour && (!was.HasCanary || now.canary == was.Canary):
		log.Infof("%s: trial of %s ended, %s stays (revision %d)", name, was.Colour, now.active, rev)
		trialsEndedTotal.WithLabelValues("kept").Inc()
	case t == nil && was != nil:
		log.Infof("%s: trial of %s ended unconfirmed, back to %s (revision %d)", name, was.Colour, now.active, rev)
		trialsEndedTotal.WithLabelValues("reverted").Inc()
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// logProblems logs, through b, and counts each problem of now that was not
// one of was: once per key and revision, and again if it comes back after
// it was gone.
func logProblems(b *burst, prefix, name string, was, now *entry) {
	if now == nil {
		return
	}
	var before []problem
	if was != nil {
		before = was.problems
	}
	for _, p := range now.problems {
		if slices.Contains(before, p) {
			continue
		}
		invalidValuesTotal.Inc()
		b.printf("ignoring key %s: %s (revision %d)", schema.Quote(schema.Key(prefix, strings.TrimSuffix(name, "."), p.field)), p.why, p.rev)
	}
}

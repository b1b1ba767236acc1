package ctl

import (
	"testing"
	"time"
)

// The release rule, step by step: what a bake does with time, pauses and
// analyses, and when the step ends.
func TestBakeRule(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	type event struct {
		at             string // "ok", "fail", "unconfirmed", "pause", "resume", "tick"
		s              float64
		rollback, done bool
		left           time.Duration
		held           string
	}
	for _, c := range []struct {
		name   string
		bake   time.Duration
		limit  int
		events []event
	}{
		{"passes, ends on a pass after the time", 5 * time.Second, 2, []event{
			{at: "ok", s: 2, left: 3 * time.Second},
			{at: "tick", s: 5, held: "held: waiting for a passing analysis"},
			{at: "ok", s: 5.1, done: true},
		}},
		{"a failure stops the clock; a pass restarts it", 5 * time.Second, 2, []event{
			{at: "fail", s: 2, left: 3 * time.Second, held: "held: last analysis failed (1 of 2)"},
			{at: "tick", s: 60, left: 3 * time.Second, held: "held: last analysis failed (1 of 2)"},
			{at: "ok", s: 61, left: 3 * time.Second},
			{at: "tick", s: 63, left: time.Second},
		}},
		{"failure_limit in a row rolls back", 5 * time.Second, 2, []event{
			{at: "fail", s: 1, left: 4 * time.Second, held: "held: last analysis failed (1 of 2)"},
			{at: "fail", s: 2, rollback: true, left: 4 * time.Second, held: "held: last analysis failed (2 of 2)"},
		}},
		{"a pass between failures resets the count", 5 * time.Second, 2, []event{
			{at: "fail", s: 1, left: 4 * time.Second, held: "held: last analysis failed (1 of 2)"},
			{at: "ok", s: 2, left: 4 * time.Second},
			{at: "fail", s: 3, left: 3 * time.Second, held: "held: last analysis failed (1 of 2)"},
		}},
		{"failing at the end of the bake holds the step", 5 * time.Second, 3, []event{
			{at: "ok", s: 4, left: time.Second},
			{at: "fail", s: 5, held: "held: last analysis failed (1 of 3)"},
			{at: "fail", s: 6, held: "held: last analysis failed (2 of 3)"},
			{at: "ok", s: 7, done: true},
		}},
		{"failing after the bake and staying so rolls back, never done", 2 * time.Second, 3, []event{
			{at: "ok", s: 1, left: time.Second},
			{at: "fail", s: 2, held: "held: last analysis failed (1 of 3)"},
			{at: "fail", s: 3, held: "held: last analysis failed (2 of 3)"},
			{at: "fail", s: 4, rollback: true, held: "held: last analysis failed (3 of 3)"},
		}},
		{"an unconfirmed pass ends nothing, and restarts no clock", 2 * time.Second, 2, []event{
			{at: "fail", s: 1, left: time.Second, held: "held: last analysis failed (1 of 2)"},
			{at: "unconfirmed", s: 2, left: time.Second, held: "held: last analysis failed (1 of 2)"},
			{at: "ok", s: 3, left: time.Second},
			{at: "unconfirmed", s: 5, held: "held: waiting for a passing analysis"},
			{at: "ok", s: 6, done: true},
		}},
		{"a pause stops the clock, and holds a step whose time is over", 2 * time.Second, 1, []event{
			{at: "pause", s: 1, left: time.Second},
			{at: "ok", s: 9, left: time.Second},
			{at: "resume", s: 10, left: time.Second},
			{at: "ok", s: 12, done: true},
			{at: "pause", s: 12.5},
			{at: "ok", s: 13},
			{at: "resume", s: 14, done: true},
		}},
		{"no analysis: the time alone", 2 * time.Second, 0, []event{
			{at: "tick", s: 1, left: time.Second},
			{at: "tick", s: 2, done: true},
		}},
		{"no bake time: one passing analysis", 0, 1, []event{
			{at: "tick", s: 0, held: "held: waiting for a passing analysis"},
			{at: "ok", s: 1, done: true},
		}},
	} {
		b := newBake(t0, c.bake, c.limit)
		for i, e := range c.events {
			now := at(e.s)
			var rollback bool
			switch e.at {
			case "ok":
				rollback = b.record(now, true, true)
			case "fail":
				rollback = b.record(now, false, true)
			case "unconfirmed":
				rollback = b.record(now, true, false)
			case "pause", "resume":
				b.pause(now, e.at == "pause")
			case "tick":
				b.advance(now)
			}
			if rollback != e.rollback || b.done() != e.done || b.left != e.left || b.held() != e.held {
				t.Errorf("%s, event %d (%s at %vs): rollback %v, done %v, left %v, held %q; want %v, %v, %v, %q",
					c.name, i, e.at, e.s, rollback, b.done(), b.left, b.held(), e.rollback, e.done, e.left, e.held)
			}
		}
	}
}

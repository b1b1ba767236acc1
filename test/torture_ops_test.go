package test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// An op is one step the torture test draws: a bgctl command, a release,
// or something done to etcd behind bgctl's back. Its parameters are drawn
// from the seed when it is drawn; what it finds in etcd (which colour is
// active, say) it reads when it runs.
type op struct {
	kind string
	desc string // as the step list shows it
	run  func(w *world) error
}

// opKind draws one kind of op.
type opKind struct {
	kind   string
	weight int
	draw   func(r *rand.Rand) op
}

var opKinds = []opKind{
	{"set", 2, drawSet},
	{"switch", 3, drawSwitch},
	{"rollback", 3, drawRollback},
	{"canary", 3, drawCanary},
	{"promote", 2, drawPromote},
	{"trial-confirm", 2, drawTrialConfirm},
	{"trial-expire", 1, drawTrialExpire},
	{"undo", 2, drawUndo},
	{"release", 3, drawRelease},
	{"release-failing", 3, drawFailingRelease},
	{"release-killed", 1, drawKilledRelease},
	{"release-etcd-outage", 2, drawOutageRelease},
	{"etcd-restart", 1, drawOutage},
	{"compact", 1, drawCompact},
	{"stray", 1, drawStray},
}

// drawOp draws an op of a kind not in skip.
func drawOp(r *rand.Rand, skip map[string]string) op {
	total := 0
	for _, k := range opKinds {
		if _, ok := skip[k.kind]; !ok {
			total += k.weight
		}
	}
	n := r.IntN(total)
	for _, k := range opKinds {
		if _, ok := skip[k.kind]; ok {
			continue
		}
		if n -= k.weight; n < 0 {
			o := k.draw(r)
			o.kind = k.kind
			return o
		}
	}
	panic("unreachable")
}

func drawName(r *rand.Rand) string { return tortureNames[r.IntN(len(tortureNames))].name }

func drawColour(r *rand.Rand) schema.Colour { return schema.Colours[r.IntN(2)] }

// command runs bgctl, which must succeed, and checks that it kept the
// history of the names it touched (I5: nothing deleted unasked).
func (w *world) command(names []string, args ...string) (ran, error) {
	before := map[string]int{}
	for _, n := range names {
		before[n] = w.historyCount(n)
	}
	r := w.bgctl(args...)
	if r.code != 0 {
		return r, fmt.Errorf("I5: bgctl %s failed: %s", strings.Join(args, " "), r)
	}
	for _, n := range names {
		if after := w.historyCount(n); after < min(before[n], 100) {
			return r, fmt.Errorf("I5: bgctl %s left %d history entries of %s, from %d", strings.Join(args, " "), after, n, before[n])
		}
	}
	return r, nil
}

func drawSet(r *rand.Rand) op {
	name, ttl := drawName(r), 1+r.IntN(5)
	args := []string{"set", name, "--ttl", fmt.Sprint(ttl)}
	return op{desc: strings.Join(args, " "), run: func(w *world) error {
		_, err := w.command([]string{name}, args...)
		return err
	}}
}

func drawSwitch(r *rand.Rand) op {
	name, to, withDNS := drawName(r), drawColour(r), r.IntN(2) == 0
	args := []string{"switch", name, "--to", to.String()}
	return op{desc: strings.Join(args, " "), run: func(w *world) error {
		if withDNS {
			args = append(args, "--dns", strings.Join(w.servers, ","))
		}
		if _, err := w.command([]string{name}, args...); err != nil {
			return err
		}
		return w.everyoneOn(name, to)
	}}
}

// flipLine is the line a switch or rollback prints for a name it flipped:
// "app.example.org: blue -> green (revision 7)", or since switch says
// where clients went, "app.example.org: green (revision 7), 15 % of
// client networks moved".
var flipLine = regexp.MustCompile(`: (?:(?:blue|green) -> )?(blue|green) \(revision`)

func drawRollback(r *rand.Rand) op {
	name := drawName(r)
	return op{desc: "rollback " + name, run: func(w *world) error {
		res, err := w.command([]string{name}, "rollback", name)
		if err != nil {
			return err
		}
		m := flipLine.FindStringSubmatch(res.stdout.String())
		if m == nil {
			return fmt.Errorf("I6: rollback printed no \"FROM -> TO\": %s", res)
		}
		to, _ := schema.ParseColour(m[1])
		return w.everyoneOn(name, to)
	}}
}

func drawCanary(r *rand.Rand) op {
	name, share := drawName(r), 5+5*r.IntN(19)
	args := []string{"canary", name, fmt.Sprint(share)}
	return op{desc: strings.Join(args, " "), run: func(w *world) error {
		_, err := w.command([]string{name}, args...)
		return err
	}}
}

func drawPromote(r *rand.Rand) op {
	name := drawName(r)
	return op{desc: "promote " + name, run: func(w *world) error {
		m, err := w.model()
		if err != nil {
			return err
		}
		if m[name].share == 0 { // refused, and rightly
			if res := w.bgctl("promote", name); res.code != 1 || !strings.Contains(res.stderr.String(), "has no canary share") {
				return fmt.Errorf("promote without a canary: %s", res)
			}
			return nil
		}
		_, err = w.command([]string{name}, "promote", name)
		return err
	}}
}

// trial flips name to the colour it does not answer, on a trial of d; it
// returns the colour it came from.
func (w *world) trial(name string, d time.Duration) (schema.Colour, error) {
	m, err := w.model()
	if err != nil {
		return 0, err
	}
	from := m[name].colour
	if _, err := w.command([]string{name}, "switch", name, "--to", from.Other().String(), "--confirm-within", d.String()); err != nil {
		return 0, err
	}
	if err := w.converge(5 * time.Second); err != nil {
		return 0, fmt.Errorf("the trial not answered: %v", err)
	}
	return from, nil
}

func drawTrialConfirm(r *rand.Rand) op {
	name := drawName(r)
	return op{desc: "switch " + name + " --to OTHER --confirm-within 1m; confirm " + name, run: func(w *world) error {
		from, err := w.trial(name, time.Minute)
		if err != nil {
			return err
		}
		if _, err := w.command([]string{name}, "confirm", name); err != nil {
			return err
		}
		return w.answers(name, from.Other())
	}}
}

func drawTrialExpire(r *rand.Rand) op {
	name, d := drawName(r), time.Duration(2+r.IntN(2))*time.Second
	return op{desc: fmt.Sprintf("switch %s --to OTHER --confirm-within %v, left to expire", name, d), run: func(w *world) error {
		from, err := w.trial(name, d)
		if err != nil {
			return err
		}
		return w.leaseEnds(name, from, d+10*time.Second)
	}}
}

// leaseEnds checks I4: the trial key of name goes with its lease, within
// within, and then every network on every server gets from again.
func (w *world) leaseEnds(name string, from schema.Colour, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		m, err := w.model()
		if err == nil && !m[name].trial {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("I4: the trial of %s still in etcd %v on (%v)", name, within, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := w.answers(name, from); err != nil {
		return fmt.Errorf("I4: after the lease ended: %v", err)
	}
	return nil
}

// answers checks that etcd makes name answer c (with any canary share,
// and no trial), and that every server answers so.
func (w *world) answers(name string, c schema.Colour) error {
	m, err := w.model()
	if err != nil {
		return err
	}
	if got := m[name]; got.colour != c || got.trial {
		return fmt.Errorf("etcd holds %s for %s, want %s", got, name, c)
	}
	return w.converge(5 * time.Second)
}

// undoRefusals are why undo may rightly refuse.
var undoRefusals = []string{"is on a trial", "was a trial, which has ended", "has no change by bgctl to undo", "it was changed outside bgctl since"}

func drawUndo(r *rand.Rand) op {
	name := drawName(r)
	return op{desc: "undo " + name, run: func(w *world) error {
		args := []string{"undo", name}
		if w.undoYes {
			args = append(args, "--yes")
		}
		if res := w.bgctl(args...); res.code != 0 {
			for _, why := range undoRefusals {
				if strings.Contains(res.stderr.String(), why) {
					return nil
				}
			}
			return fmt.Errorf("I5: bgctl undo %s failed: %s", name, res)
		}
		return nil
	}}
}

func drawCompact(r *rand.Rand) op {
	return op{desc: "compact etcd at its revision", run: func(w *world) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := w.client.Get(ctx, "/", clientv3.WithCountOnly())
		if err == nil {
			_, err = w.client.Compact(ctx, resp.Header.Revision)
		}
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil // nothing written since the last compaction
		}
		return err
	}}
}

// strays are keys bgctl did not write, one in each of its namespaces and
// in the names' own, as etcdctl or another tool might put them.
var strays = []struct{ key, value string }{
	{"/bluegreen/stray-key", "x"},
	{"/bluegreen/app.example.org/notes", "written by hand"},
	{"/bluegreen-history/app.example.org/zzz-note", "{}"},
	{"/bluegreen-history/api.example.org/99999999999999999999", "{}"},
	{"/bluegreen-history/app.example.org/not-json", "{"},
	{"/bluegreen-release/app.example.org/state", "{}"},
	{"/bluegreen-release/api.example.org/junk", "junk"},
}

func drawStray(r *rand.Rand) op {
	s := strays[r.IntN(len(strays))]
	return op{desc: fmt.Sprintf("etcdctl put %s %q", s.key, s.value), run: func(w *world) error {
		w.put(s.key, s.value)
		return nil
	}}
}

func drawOutage(r *rand.Rand) op {
	d := []time.Duration{500 * time.Millisecond, 2 * time.Second, 6 * time.Second, 35 * time.Second}[r.IntN(4)]
	name := drawName(r)
	return op{desc: fmt.Sprintf("stop etcd for %v, start it again, switch %s", d, name), run: func(w *world) error {
		before, err := w.model()
		if err != nil {
			return err
		}
		w.etcd.stop()
		if err := w.duringOutage(before, d); err != nil {
			w.startEtcd()
			return err
		}
		w.startEtcd()
		return w.afterOutage(name)
	}}
}

// startEtcd starts etcd again after an outage, and has the test's own
// client dial it at once: gRPC's reconnection backoff grows to tens of
// seconds over a long outage, and the test is about the servers' recovery,
// not its own client's.
func (w *world) startEtcd() {
	w.etcd.start(w.t)
	w.client.ActiveConnection().ResetConnectBackoff()
}

// afterOutage checks I3 once etcd is back: within a few seconds every
// server says its answers are fresh again, and answers a flip made then.
func (w *world) afterOutage(name string) error {
	if err := w.converge(10 * time.Second); err != nil {
		return fmt.Errorf("I3: once etcd is back: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, server := range w.servers {
		for stale(server, name) {
			if time.Now().After(deadline) {
				return fmt.Errorf("I3: %s still says its answers for %s are stale 10s after etcd came back", server, name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	m, err := w.model()
	if err != nil {
		return err
	}
	to := m[name].colour.Other()
	if _, err := w.command([]string{name}, "switch", name, "--to", to.String()); err != nil {
		return err
	}
	if err := w.everyoneOn(name, to); err != nil {
		return fmt.Errorf("I3: a flip made once etcd is back: %v", err)
	}
	return nil
}

// duringOutage checks I3 while etcd is down for d: the servers answer as
// before, and after a few seconds their TXT state says the answers are
// stale.
func (w *world) duringOutage(before map[string]want, d time.Duration) error {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		if diffs := w.differences(before, w.askAll()); len(diffs) > 0 {
			return fmt.Errorf("I3: while etcd is down: %s", strings.Join(diffs, "; "))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d < 5*time.Second {
		return nil
	}
	for _, server := range w.servers {
		for _, n := range tortureNames {
			if !stale(server, n.name) {
				return fmt.Errorf("I3: %s answers %s %v into an etcd outage, and its TXT state does not say stale", server, n.name, d)
			}
		}
	}
	return nil
}

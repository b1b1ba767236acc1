package test

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/bluegreen-dns/bluegreen/test/devetcd"
)

// releaseShape is a whole release of app.example.org drawn from the seed:
// its plan, when the new colour's sites start failing and pass again, and
// whether someone pauses or aborts it, and when.
type releaseShape struct {
	steps     []int
	bake      time.Duration
	interval  time.Duration
	limit     int
	failAt    time.Duration // from the start; 0 for never
	healAt    time.Duration // from the start; 0 for never
	control   string        // "", "pause" or "abort"
	controlAt time.Duration
	outageAt  time.Duration // when etcd stops, from the start; 0 for never
	outageFor time.Duration // and for how long
}

func (s releaseShape) String() string {
	out := fmt.Sprintf("release steps %v bake %v interval %v failure_limit %d", s.steps, s.bake, s.interval, s.limit)
	if s.failAt > 0 {
		out += fmt.Sprintf(", sites fail at %v", s.failAt)
	}
	if s.healAt > 0 {
		out += fmt.Sprintf(", pass again at %v", s.healAt)
	}
	if s.control != "" {
		out += fmt.Sprintf(", %s at %v", s.control, s.controlAt)
	}
	if s.outageAt > 0 {
		out += fmt.Sprintf(", etcd down at %v for %v", s.outageAt, s.outageFor)
	}
	return out
}

func drawShape(r *rand.Rand, failing bool) releaseShape {
	s := releaseShape{
		steps:    [][]int{{100}, {50, 100}, {20, 100}, {10, 50, 100}}[r.IntN(4)],
		bake:     time.Duration(1+r.IntN(2)) * time.Second,
		interval: time.Duration(250*(1+r.IntN(2))) * time.Millisecond,
		limit:    1 + r.IntN(3),
	}
	length := time.Duration(len(s.steps))*s.bake + time.Second
	if failing {
		s.failAt = time.Duration(1 + r.Int64N(int64(length)))
		if r.IntN(2) == 0 {
			s.healAt = s.failAt + time.Duration(300+r.IntN(1500))*time.Millisecond
		}
	}
	switch r.IntN(6) {
	case 0:
		s.control, s.controlAt = "pause", time.Duration(1+r.Int64N(int64(length)))
	case 1:
		s.control, s.controlAt = "abort", time.Duration(1+r.Int64N(int64(length)))
	}
	return s
}

// plan is the shape's plan file, releasing app.example.org to to.
func (s releaseShape) plan(to schema.Colour, port string) string {
	steps := fmt.Sprint(s.steps)
	return fmt.Sprintf("names: [app.example.org]\nto: %s\nreason: torture\nsteps: [%s]\nbake: %v\nanalysis:\n  interval: %v\n  smoke: true\n  failure_limit: %d\n%s",
		to, strings.ReplaceAll(steps[1:len(steps)-1], " ", ", "), s.bake, s.interval, s.limit, smokeYAML(port))
}

func drawRelease(r *rand.Rand) op {
	s := drawShape(r, false)
	return op{desc: s.String(), run: func(w *world) error { return w.release(s) }}
}

func drawFailingRelease(r *rand.Rand) op {
	s := drawShape(r, true)
	return op{desc: s.String(), run: func(w *world) error { return w.release(s) }}
}

func drawOutageRelease(r *rand.Rand) op {
	s := drawShape(r, r.IntN(2) == 0)
	s.outageAt = time.Duration(1 + r.Int64N(int64(time.Duration(len(s.steps))*s.bake+time.Second)))
	s.outageFor = time.Duration(1+r.IntN(6)) * time.Second
	return op{desc: s.String(), run: func(w *world) error { return w.release(s) }}
}

// cleanApp leaves app.example.org with no canary share, as a release
// starts from, and returns the colour it answers.
func (w *world) cleanApp() (schema.Colour, error) {
	m, err := w.model()
	if err != nil {
		return 0, err
	}
	if m["app.example.org"].share > 0 {
		if _, err := w.command([]string{"app.example.org"}, "set", "app.example.org", "--canary", "0"); err != nil {
			return 0, err
		}
	}
	return m["app.example.org"].colour, nil
}

// release runs the shape's release in the test's process, with the new
// colour's sites failing and someone pausing or aborting it as drawn; then
// checks I2, and that the name ends wholly on one colour: the new one on
// exit 0, else the old one.
func (w *world) release(s releaseShape) error {
	from, err := w.cleanApp()
	if err != nil {
		return err
	}
	to := from.Other()
	plan := writePlan(w.t, s.plan(to, w.port))
	stop := w.scheduleFailures(s, lookupName("app.example.org").addrs(to))
	defer stop()
	controlled := w.scheduleControl(s)
	restarted := w.scheduleOutage(s)
	res := w.bgctl("release", "-f", plan, "--lease-ttl", "3s")
	if err := restarted(); err != nil {
		return err
	}
	if err := controlled(); err != nil {
		return err
	}
	if err := releaseHonest(res.stdout.String(), res.code); err != nil {
		return fmt.Errorf("%v\n%s", err, res)
	}
	if err := w.closingTrue(res.stdout.String()); err != nil {
		return fmt.Errorf("%v\n%s", err, res)
	}
	end := from
	if res.code == 0 {
		end = to
	}
	if res.code != 0 && s.outageAt > 0 { // the release may not have reached etcd to end its step: the lease ends it
		if err := w.leaseEnds("app.example.org", from, 15*time.Second); err != nil {
			return fmt.Errorf("release exit %d: %v\n%s", res.code, err, res)
		}
	}
	if err := w.everyoneOn("app.example.org", end); err != nil {
		return fmt.Errorf("release exit %d: %v\n%s", res.code, err, res)
	}
	return nil
}

var closingClaim = regexp.MustCompile(`(?:done|rolled back|stopped before)[^\n]*app\.example\.org answers (blue|green)`)

// closingTrue checks I6 on a release's closing line: the colour it says
// app.example.org answers is what every server answers every network.
func (w *world) closingTrue(out string) error {
	m := closingClaim.FindStringSubmatch(out)
	if m == nil {
		return nil
	}
	c, _ := schema.ParseColour(m[1])
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := w.askAll()
		var diffs []string
		for _, server := range w.servers {
			if d := (want{colour: c}).matches(got[server]["app.example.org"]); d != "" {
				diffs = append(diffs, server+": "+d)
			}
		}
		if len(diffs) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("I6: the release says app.example.org answers %s; 5s later %s", c, strings.Join(diffs, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scheduleOutage stops etcd at s.outageAt for s.outageFor; the func it
// returns waits until etcd runs again and says what went wrong.
func (w *world) scheduleOutage(s releaseShape) (wait func() error) {
	if s.outageAt == 0 {
		return func() error { return nil }
	}
	return at(s.outageAt, s.outageFor+30*time.Second, "etcd started again", func() error {
		w.etcd.Etcd.Close()
		time.Sleep(s.outageFor) // the outage's length, drawn from the seed
		e, err := devetcd.StartConfig(devetcd.Config("default", w.etcd.dir, w.etcd.addr, w.etcd.peer))
		w.etcd.Etcd = e
		return err
	})
}

// at runs do after d, unless the func it returns is called first; that
// func waits up to within for do to be done and returns its error.
func at(d, within time.Duration, what string, do func() error) (wait func() error) {
	done := make(chan error, 1)
	timer := time.AfterFunc(d, func() { done <- do() })
	return func() error {
		if timer.Stop() {
			return nil // the release ended before the moment came
		}
		select {
		case err := <-done:
			return err
		case <-time.After(within):
			return fmt.Errorf("%s: not done within %v", what, within)
		}
	}
}

// addrs are the addresses of colour c.
func (n tortureName) addrs(c schema.Colour) []string {
	if c == schema.Blue {
		return n.blue
	}
	return n.green
}

// scheduleFailures makes the sites at addrs fail at s.failAt and pass at
// s.healAt; the stop it returns cancels what has not happened and leaves
// them passing.
func (w *world) scheduleFailures(s releaseShape, addrs []string) (stop func()) {
	var mu sync.Mutex
	stopped := false
	set := func(failing bool) {
		mu.Lock()
		defer mu.Unlock()
		if !stopped {
			for _, a := range addrs {
				w.sites[a].failing.Store(failing)
			}
		}
	}
	var timers []*time.Timer
	if s.failAt > 0 {
		timers = append(timers, time.AfterFunc(s.failAt, func() { set(true) }))
	}
	if s.healAt > 0 {
		timers = append(timers, time.AfterFunc(s.healAt, func() { set(false) }))
	}
	return func() {
		for _, t := range timers {
			t.Stop()
		}
		set(false)
		mu.Lock()
		stopped = true
		mu.Unlock()
	}
}

// scheduleControl pauses (and resumes) or aborts the release at
// s.controlAt; the func it returns waits for that to be done and says
// what went wrong with it.
func (w *world) scheduleControl(s releaseShape) (wait func() error) {
	if s.control == "" {
		return func() error { return nil }
	}
	return at(s.controlAt, 30*time.Second, "bgctl "+s.control+" app.example.org", func() error {
		return w.control(s.control, s.outageAt > 0)
	})
}

// control runs abort, or pause then resume, against the release; finding
// no release running is no error: it may have ended; nor is finding no
// etcd while it is down.
func (w *world) control(action string, outage bool) error {
	actions := []string{action}
	if action == "pause" {
		actions = append(actions, "resume")
	}
	for _, a := range actions {
		res := w.bgctl(a, "app.example.org")
		gone := strings.Contains(res.stderr.String(), "no release of app.example.org is running")
		down := outage && strings.Contains(res.stderr.String(), "etcd at ")
		if res.code != 0 && !gone && !down {
			return fmt.Errorf("bgctl %s app.example.org: %s", a, res)
		}
	}
	return nil
}

func drawKilledRelease(r *rand.Rand) op {
	return op{desc: "release steps [50, 100] bake 5s as a process, killed at step 1", run: func(w *world) error {
		return w.killedRelease()
	}}
}

// killedRelease starts a release as a process of its own, kills it once
// its first step is in etcd, and checks I4: the step goes with its lease,
// and every client network gets the old colour back.
func (w *world) killedRelease() error {
	from, err := w.cleanApp()
	if err != nil {
		return err
	}
	s := releaseShape{steps: []int{50, 100}, bake: 5 * time.Second, interval: time.Second, limit: 1}
	p := startBgctl(w.t, w.etcd.endpoint, w.bgctlArgs("release", "-f", writePlan(w.t, s.plan(from.Other(), w.port)), "--lease-ttl", "2s")...)
	deadline := time.Now().Add(20 * time.Second)
	for {
		m, err := w.model()
		if err == nil && m["app.example.org"].trial {
			break
		}
		select {
		case <-p.exited:
			return fmt.Errorf("the release ended before its first step was seen: exit %d\n%s", p.code, p)
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no step of the release in etcd within 20s\n%s", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.cmd.Process.Kill()
	p.wait(w.t, 10*time.Second)
	return w.leaseEnds("app.example.org", from, 10*time.Second)
}

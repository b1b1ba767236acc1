package test

import (
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The torture test: from a seed it draws a sequence of operations (bgctl
// commands, whole releases, etcd going away, keys bgctl did not write)
// against a real etcd, CoreDNS servers and sites, and after each one
// checks the promises every combination must keep:
//
//	I1 after switch --to C or rollback returns, every client network on
//	   every server answers C;
//	I2 no release raises a share after a failed analysis, and it exits 0
//	   only if its last analysis passed;
//	I3 every answer is current within a few seconds of etcd being
//	   reachable, or the TXT state says it is stale;
//	I4 a trial or release step whose lease is gone is answered by nobody;
//	I5 no bgctl command fails, or deletes history, because of a key it did
//	   not write;
//	I6 what bgctl status says the servers answer is what they answer.
//
// make test runs a short run; make torture runs seed after seed for
// TORTURE_TIME, and make torture SEED=N replays one seed.

var (
	tortureSeed  = flag.Uint64("torture.seed", 0, "replay this seed (also TORTURE_SEED); 0 draws new ones")
	tortureTime  = flag.Duration("torture.time", 0, "run seed after seed for this long (also TORTURE_TIME); 0 for the short run")
	tortureSteps = flag.Int("torture.steps", 0, "steps per seed (also TORTURE_STEPS); 0 for the default")
	tortureOps   = flag.String("torture.ops", "", "draw only these kinds of op, comma-separated (also TORTURE_OPS); empty for all")
)

// shortSteps is the short run's length: it must stay well under a minute
// on a busy machine.
const shortSteps = 12

// pending are the ops the short run leaves out, each for the defect of
// issue 24 it finds until its fix is merged; make torture runs them all.
var pending = map[string]string{}

// tortureConfig reads the flags, or the environment in their place.
func tortureConfig(t *testing.T) (seed uint64, d time.Duration, steps int) {
	seed, d, steps = *tortureSeed, *tortureTime, *tortureSteps
	var err error
	if v := os.Getenv("TORTURE_SEED"); v != "" && seed == 0 {
		if seed, err = strconv.ParseUint(v, 10, 64); err != nil {
			t.Fatalf("TORTURE_SEED=%s: %v", v, err)
		}
	}
	if v := os.Getenv("TORTURE_TIME"); v != "" && d == 0 {
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("TORTURE_TIME=%s: %v", v, err)
		}
	}
	if v := os.Getenv("TORTURE_STEPS"); v != "" && steps == 0 {
		if steps, err = strconv.Atoi(v); err != nil {
			t.Fatalf("TORTURE_STEPS=%s: %v", v, err)
		}
	}
	return seed, d, steps
}

func TestTorture(t *testing.T) {
	seed, d, steps := tortureConfig(t)
	skip := onlyOps(t)
	switch {
	case seed != 0: // a replay: every op, as make torture draws them
		runSeed(t, seed, orDefault(steps, 40), skip, new(int))
	case d == 0: // the short run of make test: a seed of the day
		day := uint64(time.Now().UTC().Year()*10000 + int(time.Now().UTC().YearDay()))
		runSeed(t, day, orDefault(steps, shortSteps), pending, new(int))
	default:
		start, total, seeds, failed := time.Now(), 0, 0, 0
		for time.Since(start) < d {
			seed := rand.Uint64()>>1 + 1
			n := 0
			if !t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runSeed(t, seed, orDefault(steps, 40), skip, &n) }) {
				failed++
			}
			total, seeds = total+n, seeds+1
		}
		t.Logf("%d seeds (%d failed), %d steps in %v", seeds, failed, total, time.Since(start).Round(time.Second))
	}
}

// onlyOps is the kinds of op -torture.ops leaves out, nil without it.
func onlyOps(t *testing.T) map[string]string {
	list := *tortureOps
	if list == "" {
		list = os.Getenv("TORTURE_OPS")
	}
	if list == "" {
		return nil
	}
	skip := map[string]string{}
	for _, k := range opKinds {
		skip[k.kind] = "not in -torture.ops"
	}
	for _, kind := range strings.Split(list, ",") {
		if _, ok := skip[kind]; !ok {
			t.Fatalf("-torture.ops: no op %q", kind)
		}
		delete(skip, kind)
	}
	return skip
}

// orDefault is n, or def when n is 0.
func orDefault(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

// runSeed builds a world and runs steps ops drawn from seed, leaving out
// the kinds in skip, counting in ran the steps it ran. On a broken promise
// it fails with the seed, every step so far, and the servers' last log
// lines.
func runSeed(t *testing.T, seed uint64, steps int, skip map[string]string, ran *int) {
	r := rand.New(rand.NewPCG(seed, 0x70e7))
	auth := r.IntN(2) == 0
	start := time.Now()
	logs := quietLog(t)
	w := newWorld(t, auth, 2+r.IntN(2))
	var done []string
	fail := func(step int, err error) {
		t.Helper()
		t.Fatalf("seed %d (auth %v, %d servers), step %d: %v\nsteps:\n%s\nlast log lines:\n%s\nreplay: %s",
			seed, auth, len(w.servers), step, err, strings.Join(done, "\n"), tail(logs.String(), 30), replay(seed, steps, skip))
	}
	if err := w.converge(10 * time.Second); err != nil {
		fail(0, fmt.Errorf("the names not served: %v", err))
	}
	for i := 1; i <= steps; i++ {
		o := drawOp(r, skip)
		done = append(done, fmt.Sprintf("%3d. %s: %s", i, o.kind, o.desc))
		*ran = i
		if err := o.run(w); err != nil {
			fail(i, err)
		}
		if err := w.converge(5 * time.Second); err != nil {
			fail(i, fmt.Errorf("after the step: %v", err))
		}
		if err := w.statusAgrees(); err != nil {
			fail(i, err)
		}
	}
	t.Logf("seed %d (auth %v, %d servers): %d steps in %v", seed, auth, len(w.servers), steps, time.Since(start).Round(time.Millisecond))
}

// replay is the command that draws the same steps again.
func replay(seed uint64, steps int, skip map[string]string) string {
	cmd := fmt.Sprintf("make torture SEED=%d STEPS=%d", seed, steps)
	if len(skip) == 0 {
		return cmd
	}
	var kinds []string
	for _, k := range opKinds {
		if _, ok := skip[k.kind]; !ok {
			kinds = append(kinds, k.kind)
		}
	}
	return cmd + " OPS=" + strings.Join(kinds, ",")
}

// quietLog keeps what CoreDNS logs during the test in a buffer, for a
// failure to show, rather than on stderr: hundreds of lines a seed.
func quietLog(t *testing.T) *syncBuffer {
	b := &syncBuffer{}
	log.SetOutput(b)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	return b
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

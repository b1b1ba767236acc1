package test

import (
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/ctl"
)

// verdicts is a web check for a release's analysis: each GET answers
// {"errors": 0} (a pass) or {"errors": 1} (a failure), as fail says of the
// nth request since the test armed it, and logs what it answered. Each
// analysis asks it once, so the test decides each analysis's verdict.
type verdicts struct {
	url    string
	mu     sync.Mutex
	armed  bool
	n      int              // requests since armed
	fail   func(n int) bool // whether the nth request since armed fails
	before func(n int)      // runs before the nth answer; bgctl waits for it
	log    []string         // "pass" or "fail", each answer since armed
}

func startVerdicts(t *testing.T) *verdicts {
	t.Helper()
	v := &verdicts{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v.mu.Lock()
		defer v.mu.Unlock()
		failing := false
		if v.armed {
			v.n++
			if v.before != nil {
				v.before(v.n)
			}
			failing = v.fail(v.n)
			v.log = append(v.log, map[bool]string{true: "fail", false: "pass"}[failing])
		}
		fmt.Fprintf(w, `{"errors": %d}`, map[bool]int{true: 1, false: 0}[failing])
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	v.url = "http://" + l.Addr().String() + "/errors.json"
	return v
}

// arm starts counting requests, and failing those fail says.
func (v *verdicts) arm(fail func(n int) bool, before func(n int)) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.armed, v.fail, v.before = true, fail, before
}

// answered is what was answered since armed.
func (v *verdicts) answered() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return append([]string(nil), v.log...)
}

// rulePlan is a plan whose analysis is the verdicts' web check alone.
func rulePlan(t *testing.T, steps, bake, interval string, limit int, v *verdicts, hook *hook) string {
	return writePlan(t, fmt.Sprintf(`
names: [app.example.org]
to: green
steps: %s
bake: %s
analysis:
  interval: %s
  failure_limit: %d
  web:
    - name: errors
      url: %s
      json_path: errors
      max: 0
notify:
  webhook: %s
`, steps, bake, interval, limit, v.url, hook.url))
}

// inOrder fails the test unless each of want occurs in out, each after the
// one before.
func inOrder(t *testing.T, out string, want ...string) {
	t.Helper()
	rest := out
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Errorf("output lacks %q after %q:\n%s", w, out[:len(out)-len(rest)], out)
			return
		}
		rest = rest[i+len(w):]
	}
}

// With failure_limit 2, one failed analysis at the end of step 2 holds
// the step: step 3 is written only after an analysis passes again, and DNS
// stays at step 2's share meanwhile.
func TestReleaseHoldsAfterFailedAnalysis(t *testing.T) {
	etcd, udp, _, _ := releaseSetup(t)
	v := startVerdicts(t)
	var mu sync.Mutex
	var seen []string
	hook := startHook(t, func(n notification) {
		if n.Event != "step" {
			return
		}
		switch n.Step {
		case 2: // one analysis a step: the first of step 2 fails, the next passes
			v.arm(func(n int) bool { return n == 1 }, func(n int) {
				if n == 2 {
					mu.Lock()
					defer mu.Unlock()
					seen = append(seen, fmt.Sprintf("%d of 100 networks green at the analysis after the failure", greens(t, udp, "app.example.org", greenAddr1, greenAddr2)))
					if st := bgctl(t, etcd.endpoint, "status", "app.example.org").stdout.String(); !strings.Contains(st, "app.example.org: a release from blue to green is held: last analysis failed (1 of 2): ") {
						t.Errorf("bgctl status of a held release: %s", st)
					}
				}
			})
		case 3:
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, fmt.Sprintf("analyses before step 3: %v", v.answered()))
		}
	})
	plan := rulePlan(t, "[20, 60, 100]", "1s", "1s", 2, v, hook)
	if r := mustBgctl(t, etcd.endpoint, "release", "-f", plan, "--dry-run"); !strings.Contains(r.stdout.String(),
		"each step ends only on a passing analysis: a failed one holds the step, its bake clock stopped, until one passes (then the clock goes on) or 2 failed in a row roll back; bgctl exits 0 only if the last step's last analysis passed") {
		t.Errorf("the dry run does not say the rule: %s", r)
	}
	p := startBgctl(t, etcd.endpoint, "release", "-f", plan)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit %d, want 0: the analysis passed again\n%s", code, p)
	}
	mu.Lock()
	defer mu.Unlock()
	t.Logf("%s\n%s", strings.Join(seen, "\n"), p.stdout)
	if len(seen) != 2 || !regexp.MustCompile(`^([3-6][0-9]|70) of 100 networks green`).MatchString(seen[0]) || !regexp.MustCompile(`^analyses before step 3: \[fail( pass)+\]$`).MatchString(seen[1]) {
		t.Errorf("want step 2's share in DNS after the failure, and step 3 only after a pass: %q", seen)
	}
	inOrder(t, p.stdout.String(), "step 2/3: 60 % of clients on green", "analysis: failed: errors 1, over max 0",
		"step 2/3 held at 60 % on green", "analysis: ok: errors 0", "step 3/3: 100 % of clients on green", "done: app.example.org answers green")
	if got := strings.Join(hook.seen(), ","); got != "start,step 1/3 20,step 2/3 60,step 3/3 100,success" {
		t.Errorf("webhook events: %s", got)
	}
}

// With steps [100] and failure_limit 3, a backend that starts failing
// mid-bake and stays so rolls the release back, even though its bake time
// ends with fewer than 3 failures: never done, exit 1.
func TestReleaseFailingToTheEndRollsBack(t *testing.T) {
	etcd, udp, _, _ := releaseSetup(t)
	v := startVerdicts(t)
	hook := startHook(t, func(n notification) {
		if n.Event == "step" {
			v.arm(func(n int) bool { return n >= 3 }, nil) // 4 analyses in the bake: the last 2 fail
		}
	})
	p := startBgctl(t, etcd.endpoint, "release", "-f", rulePlan(t, "[100]", "2s", "500ms", 3, v, hook), "--dns", udp)
	code := p.wait(t, time.Minute)
	t.Logf("analyses since the step: %v\n%s", v.answered(), p.stdout)
	if code != 1 || strings.Contains(p.stdout.String(), "done:") ||
		!strings.Contains(p.stdout.String(), "failed analyses in a row: 3, failure_limit 3; last: errors 1, over max 0; rolled back at step 1/1: app.example.org answers blue again") {
		t.Errorf("exit %d, want 1 with a rollback after 3 failures in a row:\n%s", code, p)
	}
	if !strings.Contains(p.stdout.String(), "; "+udp+" answers blue for app.example.org (revision ") {
		t.Errorf("the closing line does not say what the server answers after the rollback:\n%s", p)
	}
	if got := strings.Join(hook.seen(), ","); got != "start,step 1/1 100,rollback" {
		t.Errorf("webhook events: %s", got)
	}
	waitFor(t, "every client back on blue", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 0 })
}

// A backend failing at the very end of the last step's bake holds the
// step: the release is not done until an analysis passes, and the status
// line says why it waits.
func TestReleaseHeldAtTheEnd(t *testing.T) {
	etcd, _, _, _ := releaseSetup(t)
	v := startVerdicts(t)
	var mu sync.Mutex
	var last []string
	hook := startHook(t, func(n notification) {
		switch n.Event {
		case "step": // bgctl starts the bake clock once this returns
			end, failed := time.Now().Add(2*time.Second), false
			v.arm(func(int) bool { // the first analysis from the bake's end on fails
				if !failed && time.Now().After(end) {
					failed = true
					return true
				}
				return false
			}, nil)
		case "success":
			mu.Lock()
			defer mu.Unlock()
			last = v.answered()
		}
	})
	plan := rulePlan(t, "[100]", "2s", "500ms", 2, v, hook)
	r := bgctlWith(t, ctl.IO{Live: true, Columns: func() int { return 200 }}, "--endpoints", etcd.endpoint, "release", "-f", plan)
	out := r.stdout.String()
	mu.Lock()
	defer mu.Unlock()
	t.Logf("analyses: %v\n%s", last, out)
	if r.code != 0 || strings.Count(strings.Join(last, " "), "fail") != 1 || last[len(last)-1] != "pass" {
		t.Errorf("exit %d, analyses before success %v: want 0, and success only after a pass that follows the failure:\n%s", r.code, last, r)
	}
	inOrder(t, out, "analysis: failed: errors 1, over max 0", "held: last analysis failed (1 of 2)", "analysis: ok: errors 0", "done: app.example.org answers green")
}

// etcd stopped mid-release: bgctl says etcd is out of reach, claims no
// analysis pass and no step it did not write, and its closing line says
// what the servers answer, which DNS confirms; the names go back to blue
// when etcd is back and drops the release's lease, as it says.
func TestReleaseEtcdStopped(t *testing.T) {
	etcd, udp, _, _ := releaseSetup(t)
	v := startVerdicts(t)
	stopped := make(chan time.Time, 1)
	hook := startHook(t, func(n notification) {
		if n.Event == "step" && n.Step == 1 {
			go func() { // bgctl goes on meanwhile: stopping takes a while
				etcd.stop()
				stopped <- time.Now()
			}()
		}
	})
	p := startBgctl(t, etcd.endpoint, "release", "-f", rulePlan(t, "[50, 100]", "30s", "300ms", 2, v, hook), // a bake longer than etcd takes to stop
		"--lease-ttl", "3s", "--command-timeout", "1s", "--dns", udp)
	select {
	case <-stopped:
	case <-time.After(time.Minute):
		t.Fatalf("step 1 not reached:\n%s", p)
	}
	code := p.wait(t, time.Minute)
	out := p.stdout.String()
	t.Logf("the release, as a person sees it:\n%s", p)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	down := strings.Index(out, "etcd at "+etcd.endpoint+" unreachable since ")
	if down < 0 {
		t.Fatalf("the output does not say etcd is unreachable")
	}
	if strings.Contains(out[down:], "analysis: ok") || strings.Contains(out, "step 2/2") || strings.Contains(out, "rolled back at") || strings.Contains(out, "answers blue again") {
		t.Errorf("with etcd stopped, the output claims a pass, step 2, or a rollback")
	}
	want := "stopped at step 1/2; the rollback could not be written: etcd at " + etcd.endpoint + " unreachable since "
	if !strings.Contains(out, want) || !strings.Contains(out, udp+" answers blue for app.example.org with 50 % of clients on green") {
		t.Errorf("the closing line does not say the release stopped at step 1, and what the server answers")
	}
	if g := greens(t, udp, "app.example.org", greenAddr1, greenAddr2); g < 30 || g > 70 {
		t.Errorf("%d of 100 networks green with etcd stopped, where bgctl says 50 %%", g)
	}
	etcd.start(t)
	took := waitFor(t, "every client back on blue once etcd is back", 30*time.Second, func() bool {
		return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 0
	})
	t.Logf("every client network answered blue %v after etcd was back (--lease-ttl 3s)", took)
}

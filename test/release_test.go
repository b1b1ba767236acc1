package test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/ctl"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The blue and green sites of app.example.org, on one port.
const (
	blueAddr   = "127.0.0.21"
	greenAddr1 = "127.0.0.22"
	greenAddr2 = "127.0.0.23"
)

// releaseSetup is an etcd, a CoreDNS and the app's sites, app.example.org
// blue with ttl 2 and a health check.
func releaseSetup(t *testing.T) (etcd *etcdServer, udp, port string, sites map[string]*site) {
	t.Helper()
	port = freePort(t)
	sites = startSites(t, port, blueAddr, greenAddr1, greenAddr2)
	etcd = startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", blueAddr, greenAddr1+","+greenAddr2)
	etcd.put(t, "/bluegreen/app.example.org/ttl", "2")
	etcd.put(t, "/bluegreen/app.example.org/check", "http://:"+port+"/health")
	_, udp, _ = startCoreDNS(t, corefile(etcd.endpoint, "check_interval 100ms\n\t\tcheck_timeout 50ms\n\t\tcheck_rise 1"))
	waitFor(t, "app.example.org served", 10*time.Second, func() bool { a, _ := aTTL(t, udp, "app.example.org"); return a == blueAddr })
	return etcd, udp, port, sites
}

// smokeYAML is the smoke tests of the seed article's smoke-tests.yml, for
// the sites' port.
func smokeYAML(port string) string {
	return fmt.Sprintf(`
smoke:
  - name: Health check
    url: http://{address}:%[1]s/health
    expect_status: 200
  - name: API response
    url: http://{address}:%[1]s/api/v1/status
    expect_status: 200
    expect_body_contains: ok
    max_response_time_ms: 500
`, port)
}

// A plan that could not run as written is refused before anything is
// written, naming its line.
func TestReleaseRefusesBadPlans(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.1", "10.0.2.1")
	before := etcdRevision(t, etcd.client)
	for _, c := range []struct{ plan, want string }{
		{"names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake_time: 5m\n", `plan.yaml:4: unknown field "bake_time", want one of names, to, reason, smoke`},
		{"names: [app.example.org]\nto: green\npreset: Canary10Percent\n", `plan.yaml:3: preset: "Canary10Percent" does not exist, want CanaryNPercentMMinutes`},
		{"names: [app.example.org, nope.example.org]\nto: green\npreset: AllAtOnce\n", "plan.yaml:1: names.1: nope.example.org is not managed: etcd holds no key under /bluegreen/nope.example.org/"},
		{"names: [app.example.org]\nto: blue\npreset: AllAtOnce\n", "plan.yaml:1: names.0: app.example.org answers blue already"},
		{"names: [app.example.org]\nto: gren\npreset: AllAtOnce\n", `plan.yaml:2: to: "gren" is not a colour`},
		{"names: [app.example.org]\nto: green\nsteps: [10, 60, 30, 100]\nbake: 1m\n", "plan.yaml:3: steps.2: 30 after 60: each step must send more clients than the one before"},
		{"names: [app.example.org]\nto: green\nsteps: [10, 60]\nbake: 1m\n", "plan.yaml:3: steps: the last step is 60: end with 100"},
		{"names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 5 minutes\n", `plan.yaml:4: "5 minutes" is not a duration`},
		{"names: [app.example.org]\nto: green\npreset: AllAtOnce\nsmoke:\n  - name: Health\n    url: http://green.internal/health\n", `plan.yaml:6: smoke.0.url: "http://green.internal/health" has no {address}`},
		{"names: [app.example.org]\nto: green\npreset: AllAtOnce\nsmoke:\n  - name: Health\n    url: http://{address}/\n    expect_stauts: 200\n", `plan.yaml:7: unknown field "expect_stauts", want one of name, url, expect_status`},
		{"names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 1m\nanalysis:\n  interval: 10s\n  health: true\n", "plan.yaml:7: analysis.health: needs --dns"},
		{"names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 1m\nanalysis:\n  interval: 2m\n  smoke: true\n", "plan.yaml:6: analysis.interval: 2m0s is longer than the bake time 1m0s"},
	} {
		r := bgctl(t, etcd.endpoint, "release", "-f", writePlan(t, c.plan))
		if r.code != 1 || !strings.Contains(r.stderr.String(), c.want) {
			t.Errorf("plan:\n%s\nwant exit 1 with %q, got %s", c.plan, c.want, r)
		}
	}
	if after := etcdRevision(t, etcd.client); after != before {
		t.Errorf("refused plans wrote to etcd: revision %d -> %d", before, after)
	}
}

// One failing smoke test stops the release before any client gets green:
// nothing is written, and DNS never answers green.
func TestReleaseSmokeGate(t *testing.T) {
	etcd, udp, port, sites := releaseSetup(t)
	hook := startHook(t, nil)
	plan := writePlan(t, "names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 1s\nnotify:\n  webhook: "+hook.url+"\n"+smokeYAML(port))

	r := mustBgctl(t, etcd.endpoint, "release", "-f", plan, "--dry-run")
	for _, want := range []string{"smoke: 2 tests against 2 addresses of green", "smoke: 4 passed", "step 1/2: 10 % of clients on green, watched 1s", "done: green for good", "nothing was written (--dry-run)"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("dry run lacks %q: %s", want, r)
		}
	}

	// The seed article's smoke-tests.yml, beside the plan.
	os.WriteFile(filepath.Join(filepath.Dir(plan), "smoke-tests.yml"), []byte(strings.ReplaceAll(`tests:
- name: Health check
  url: http://{address}:PORT/health
  expect_status: 200
- name: Auth flow
  url: http://{address}:PORT/api/v1/status
  method: POST
  expect_status: 200
`, "PORT", port)), 0o600)
	os.WriteFile(plan, []byte("names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 1s\nsmoke_file: smoke-tests.yml\nnotify:\n  webhook: "+hook.url+"\n"), 0o600)
	sites[greenAddr2].failing.Store(true)
	before := etcdRevision(t, etcd.client)
	var green atomic.Int64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { // a client that asks all along
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
			}
			if a, _ := aTTL(t, udp, "app.example.org"); a != blueAddr {
				green.Add(1)
			}
		}
	}()
	r = bgctl(t, etcd.endpoint, "release", "-f", plan)
	close(stop)
	<-done
	if r.code != 1 || !strings.Contains(r.stderr.String(), `2 of 4 smoke tests failed, first smoke test "Health check" against 127.0.0.23 (app.example.org): GET http://127.0.0.23:`+port+`/health: status 500, want 200`) ||
		!strings.Contains(r.stdout.String(), `FAILED smoke test "Auth flow" against 127.0.0.23 (app.example.org): POST http://127.0.0.23:`+port+`/api/v1/status: status 500`) ||
		!strings.Contains(r.stderr.String(), "nothing was written, blue goes on serving app.example.org") {
		t.Errorf("a failing smoke test: %s", r)
	}
	if n := green.Load(); n > 0 {
		t.Errorf("%d answers were not blue during a release stopped by its smoke tests", n)
	}
	if after := etcdRevision(t, etcd.client); after != before {
		t.Errorf("etcd revision %d -> %d: the release wrote", before, after)
	}
	if got := hook.seen(); strings.Join(got, ",") != "abort" {
		t.Errorf("webhook got %v, want abort", got)
	}

	// The analysis's other checks run once before the first step too, in a
	// dry run as well: a Prometheus out of reach, or a green address the
	// plugin finds down, stops the release before any client goes there.
	waitFor(t, "127.0.0.23 down in the plugin", 10*time.Second, func() bool {
		return strings.Contains(stateTXT(t, udp, "app.example.org"), "down=127.0.0.23")
	})
	dead := "http://127.0.0.1:" + freePort(t)
	os.WriteFile(plan, []byte("names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 1s\nanalysis:\n  interval: 1s\n  health: true\n  prometheus:\n    - name: error rate\n      url: "+dead+"\n      query: vector(0)\n      max: 0.01\n"), 0o600)
	for _, dry := range []bool{true, false} {
		args := []string{"release", "-f", plan, "--dns", udp}
		if dry {
			args = append(args, "--dry-run")
		}
		r = bgctl(t, etcd.endpoint, args...)
		if r.code != 1 || !strings.Contains(r.stderr.String(), "the analysis fails before any client is sent to green: health of app.example.org at "+udp+": green 127.0.0.23 is down; error rate: GET "+dead+"/api/v1/query") ||
			!strings.Contains(r.stderr.String(), "nothing was written") {
			t.Errorf("dry run %v, with analysis checks that fail: %s", dry, r)
		}
	}
	if after := etcdRevision(t, etcd.client); after != before {
		t.Errorf("etcd revision %d -> %d: a release stopped by its analysis wrote", before, after)
	}
}

// A release that passes walks every step, each seen in DNS with the
// lowered TTL, then leaves green on trial for the rollback window.
func TestReleaseWalksEveryStep(t *testing.T) {
	etcd, udp, port, _ := releaseSetup(t)
	var mu sync.Mutex // shares is appended to by the webhook's handler
	var shares []string
	hook := startHook(t, func(n notification) {
		mu.Lock()
		defer mu.Unlock()
		if n.Event != "step" {
			return
		}
		// bgctl waits for this: the step is written, and about to be baked.
		want := map[int][2]int{10: {1, 30}, 50: {30, 70}, 100: {100, 100}}[n.Canary]
		var got int
		waitFor(t, fmt.Sprintf("step %d in DNS", n.Step), 10*time.Second, func() bool {
			got = greens(t, udp, "app.example.org", greenAddr1, greenAddr2)
			return got >= want[0] && got <= want[1]
		})
		_, ttl := aTTL(t, udp, "app.example.org")
		shares = append(shares, fmt.Sprintf("%d%%: %d of 100 networks green, ttl %d", n.Canary, got, ttl))
	})
	plan := writePlan(t, fmt.Sprintf(`
names: [app.example.org]
to: green
reason: release 2.0
steps: [10, 50, 100]
bake: 1s
analysis:
  interval: 500ms
  smoke: true
  health: true
lower_ttl: 1
confirm_within: 1m
notify:
  webhook: %s
%s`, hook.url, smokeYAML(port)))
	r := mustBgctl(t, etcd.endpoint, "release", "-f", plan, "--dns", udp)
	mu.Lock()
	defer mu.Unlock()
	t.Logf("the release, as a person sees it:\n%s", r.stdout)
	t.Logf("each step in DNS: %s", strings.Join(shares, "; "))
	if want := []string{"10%: ", "50%: ", "100%: 100 of 100 networks green, ttl 1"}; len(shares) != 3 || !strings.HasPrefix(shares[0], want[0]) || !strings.HasPrefix(shares[1], want[1]) || shares[2] != want[2] {
		t.Errorf("steps in DNS: %v", shares)
	}
	for _, want := range []string{"app.example.org: ttl 2 -> 1 while the release runs", "step 2/3: 50 % of clients on green", "analysis: ok: smoke 4/4, health ok",
		"done: app.example.org answers green", "on trial until", "app.example.org: ttl 1 until bgctl confirm, then 2 again", "blue drained from caches by"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if got := strings.Join(hook.seen(), ","); got != "start,step 1/3 10,step 2/3 50,step 3/3 100,success" {
		t.Errorf("webhook events: %s", got)
	}
	if txt := stateTXT(t, udp, "app.example.org"); !strings.Contains(txt, "trial=green until") || !strings.Contains(txt, "active=green") {
		t.Errorf("after the release, TXT %s: want green on trial", txt)
	}
	mustBgctl(t, etcd.endpoint, "confirm", "app.example.org")
	waitFor(t, "green for good, ttl 2", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a != blueAddr && ttl == 2 })
	hist := mustBgctl(t, etcd.endpoint, "history", "app.example.org").stdout.String()
	for _, want := range []string{"release --filename=", ": ttl lowered", ": step 1/3, 10 % on green", ": step 3/3, 100 % on green", ": done", "release 2.0"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
}

// A backend that starts failing at step 2 rolls the release back at the
// first analysis that sees it.
func TestReleaseRollsBackWhenGreenFails(t *testing.T) {
	etcd, udp, port, sites := releaseSetup(t)
	failing := make(chan time.Time, 1)
	hook := startHook(t, func(n notification) {
		if n.Event == "step" && n.Step == 2 {
			sites[greenAddr1].failing.Store(true)
			failing <- time.Now()
		}
	})
	plan := writePlan(t, fmt.Sprintf(`
names: [app.example.org]
to: green
steps: [20, 60, 100]
bake: 5s
analysis:
  interval: 300ms
  failure_limit: 1
  smoke: true
notify:
  webhook: %s
%s`, hook.url, smokeYAML(port)))
	p := startBgctl(t, etcd.endpoint, "release", "-f", plan)
	var rolledBack time.Duration
	var failedAt time.Time
	select {
	case failedAt = <-failing:
	case <-time.After(20 * time.Second):
		t.Fatalf("step 2 not reached:\n%s", p)
	}
	waitFor(t, "every client back on blue", 20*time.Second, func() bool {
		if greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 0 {
			rolledBack = time.Since(failedAt)
			return true
		}
		return false
	})
	t.Logf("from green failing to every client network answered blue: %v (analysis interval 300ms)", rolledBack)
	if code := p.wait(t, 20*time.Second); code != 1 || strings.Count(p.stdout.String(), "analysis: failed") != 1 ||
		!strings.Contains(p.stdout.String(), `failed analyses in a row: 1, failure_limit 1; last: smoke test "Health check" against 127.0.0.22`) ||
		!strings.Contains(p.stdout.String(), "rolled back at step 2/3: app.example.org answers blue again (revision") {
		t.Errorf("exit %d, want 1 after one failed analysis and a rollback:\n%s", code, p)
	}
	t.Logf("the release, as a person sees it:\n%s", p.stdout)
	if got := strings.Join(hook.seen(), ","); got != "start,step 1/3 20,step 2/3 60,rollback" {
		t.Errorf("webhook events: %s", got)
	}
	if txt := stateTXT(t, udp, "app.example.org"); !strings.Contains(txt, "active=blue") || !strings.Contains(txt, "canary=0") || strings.Contains(txt, "trial=") {
		t.Errorf("after the rollback, TXT %s", txt)
	}
}

// pause, resume and abort from another process than the release's.
func TestReleasePauseResumeAbort(t *testing.T) {
	etcd, udp, _, _ := releaseSetup(t)
	plan := writePlan(t, "names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 2s\n")
	p := startBgctl(t, etcd.endpoint, "release", "-f", plan)
	step := func() string {
		resp, err := etcd.client.Get(context.Background(), "/bluegreen-release/app.example.org/state")
		if err != nil || len(resp.Kvs) == 0 {
			return ""
		}
		return string(resp.Kvs[0].Value)
	}
	waitFor(t, "step 1", 10*time.Second, func() bool { return strings.Contains(step(), `"step":1,`) })

	r := mustBgctl(t, etcd.endpoint, "pause", "app.example.org", "--reason", "looking at logs")
	if !strings.Contains(r.stdout.String(), "the release of app.example.org is paused, at step 1 of 2") {
		t.Errorf("pause: %s", r)
	}
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !strings.Contains(step(), `"step":1,`) { // the bake of 2s is long past
			t.Fatalf("the paused release went on: %s\n%s", step(), p)
		}
	}
	if r := mustBgctl(t, etcd.endpoint, "status", "app.example.org"); !strings.Contains(r.stdout.String(), "app.example.org: a release from blue to green is paused: ") ||
		!strings.Contains(r.stdout.String(), ", at step 1 of 2") {
		t.Errorf("status of a paused release: %s", r)
	}
	// While it runs, its names are its own: bgctl writes nothing to them.
	for _, args := range [][]string{{"switch", "app.example.org", "--to", "green"}, {"canary", "app.example.org", "50"}, {"set", "app.example.org", "--ttl", "60"}} {
		if r := bgctl(t, etcd.endpoint, args...); r.code != 1 || !strings.Contains(r.stderr.String(), "a release of app.example.org is running (") ||
			!strings.Contains(r.stderr.String(), "nothing was written; bgctl abort app.example.org stops it") {
			t.Errorf("bgctl %s during the release: %s", strings.Join(args, " "), r)
		}
	}
	mustBgctl(t, etcd.endpoint, "resume", "app.example.org")
	waitFor(t, "step 2", 10*time.Second, func() bool { return strings.Contains(step(), `"step":2,`) })
	r = mustBgctl(t, etcd.endpoint, "abort", "app.example.org", "--reason", "wrong build")
	if !strings.Contains(r.stdout.String(), "the release of app.example.org has ended") {
		t.Errorf("abort: %s", r)
	}
	if code := p.wait(t, 10*time.Second); code != 1 || !strings.Contains(p.stdout.String(), "paused with bgctl pause app.example.org by") ||
		!strings.Contains(p.stdout.String(), "resumed with bgctl resume app.example.org") ||
		!strings.Contains(p.stderr.String(), "aborted with bgctl abort app.example.org by") || !strings.Contains(p.stderr.String(), ": wrong build; rolled back at step 2/2") {
		t.Errorf("exit %d, want 1 after the abort:\n%s", code, p)
	}
	waitFor(t, "every client back on blue", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 0 })
	if r := bgctl(t, etcd.endpoint, "abort", "app.example.org"); r.code != 1 || !strings.Contains(r.stderr.String(), "no release of app.example.org is running") {
		t.Errorf("abort with no release: %s", r)
	}
}

// bgctl killed mid-release: etcd drops its lease, and the names go back to
// blue by themselves.
func TestReleaseKilled(t *testing.T) {
	etcd, udp, _, _ := releaseSetup(t)
	plan := writePlan(t, "names: [app.example.org]\nto: green\nsteps: [50, 100]\nbake: 1m\n")
	// The step's key is watched from before bgctl starts, so that no event
	// on it is missed however late the watch is set up, and for a minute
	// at most.
	const trial = "/bluegreen/app.example.org/trial"
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	w := etcd.client.Watch(ctx, trial, clientv3.WithRev(etcdRevision(t, etcd.client)+1))
	p := startBgctl(t, etcd.endpoint, "release", "-f", plan, "--lease-ttl", "2s")
	await := func(what string, deleted bool) {
		t.Helper()
		for wr := range w {
			for _, ev := range wr.Events {
				if (ev.Type == clientv3.EventTypeDelete) == deleted {
					return
				}
			}
		}
		t.Fatalf("%s: not seen within 1m of bgctl's start (%v):\nstdout:\n%s\nstderr:\n%s", what, ctx.Err(), p.stdout, p.stderr)
	}
	// Step 1 written, not just green answers: a health check timing out
	// on a busy machine fails blue over to green for a moment.
	await("step 1 in etcd", false)
	waitFor(t, "step 1 in DNS", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) > 0 })
	p.cmd.Process.Signal(syscall.SIGKILL)
	killed := time.Now()
	p.wait(t, 10*time.Second)
	await("etcd dropping step 1 after bgctl's SIGKILL (--lease-ttl 2s)", true)
	deleted := time.Since(killed)
	took := waitFor(t, "every client back on blue", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 0 })
	t.Logf("bgctl killed with SIGKILL, --lease-ttl 2s: etcd dropped the step %v later, every client network answered blue %v after that", deleted, took)
}

// Someone else's write to a name during its release (etcdctl, another
// tool) stops the release at once, and the release says where the name is
// now instead of claiming a rollback it did not make.
func TestReleaseStopsOnOutsideChange(t *testing.T) {
	etcd, udp, _, _ := releaseSetup(t)
	plan := writePlan(t, "names: [app.example.org]\nto: green\nsteps: [10, 100]\nbake: 1m\n")
	p := startBgctl(t, etcd.endpoint, "release", "-f", plan)
	waitFor(t, "step 1 in DNS", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) > 0 })
	at := etcd.put(t, "/bluegreen/app.example.org/active", "green")
	if code := p.wait(t, 10*time.Second); code != 1 ||
		!strings.Contains(p.stdout.String(), fmt.Sprintf("app.example.org changed in etcd during the release: someone else wrote to /bluegreen/app.example.org/active (revision %d)", at)) ||
		!strings.Contains(p.stdout.String(), "rolled back at step 1/2 (revision") || !strings.Contains(p.stdout.String(), "app.example.org answers green, as someone else wrote") ||
		strings.Contains(p.stdout.String(), "answers blue again") || strings.Contains(p.stdout.String(), "drained") {
		t.Errorf("exit %d, want 1 with the name left as the other writer put it:\n%s", code, p)
	}
	waitFor(t, "every client on green, as written", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 100 })
}

// abort of a release whose bgctl is gone does not wait for the lease to
// run out: it revokes the lease itself.
func TestReleaseAbortWhenBgctlIsGone(t *testing.T) {
	etcd, udp, _, _ := releaseSetup(t)
	plan := writePlan(t, "names: [app.example.org]\nto: green\nsteps: [50, 100]\nbake: 1m\n")
	p := startBgctl(t, etcd.endpoint, "release", "-f", plan, "--lease-ttl", "1m")
	waitFor(t, "step 1 in DNS", 10*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) > 0 })
	p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t, 10*time.Second)
	r := bgctl(t, etcd.endpoint, "abort", "app.example.org")
	if r.code != 1 || !strings.Contains(r.stderr.String(), "did not act within 10s (is its bgctl gone?): bgctl revoked its lease instead, so etcd dropped its steps and app.example.org answers blue again") {
		t.Errorf("abort of a release whose bgctl was killed: %s", r)
	}
	took := waitFor(t, "every client back on blue", 5*time.Second, func() bool { return greens(t, udp, "app.example.org", greenAddr1, greenAddr2) == 0 })
	t.Logf("every client network answered blue %v after abort returned", took)
}

// On a terminal the release keeps one status line below its events, no
// wider than the terminal, and leaves nothing of it behind.
func TestReleaseStatusLine(t *testing.T) {
	etcd, _, port, _ := releaseSetup(t)
	plan := writePlan(t, "names: [app.example.org]\nto: green\nsteps: [50, 100]\nbake: 2s\nanalysis:\n  interval: 500ms\n  smoke: true\n"+smokeYAML(port))
	const columns = 40
	r := bgctlWith(t, ctl.IO{Live: true, Columns: func() int { return columns }}, "--endpoints", etcd.endpoint, "release", "-f", plan)
	out := r.stdout.String()
	if r.code != 0 {
		t.Fatalf("release: %s", r)
	}
	const clear = "\r\033[K"
	var statuses []string
	for _, part := range strings.Split(out, clear) {
		// What is drawn after a clear: events (whole lines), then at most
		// one status line, without a newline, that the next clear removes.
		if i := strings.LastIndex(part, "\n"); i < len(part)-1 {
			statuses = append(statuses, part[i+1:])
		}
	}
	if len(statuses) < 4 {
		t.Fatalf("%d status lines drawn, want one at least every second:\n%q", len(statuses), out)
	}
	for _, s := range statuses {
		if n := len([]rune(s)); n >= columns {
			t.Errorf("status line of %d characters on a %d-column terminal: %q", n, columns, s)
		}
		if strings.ContainsAny(s, "\r\033") || !strings.HasPrefix(s, "step ") {
			t.Errorf("status line %q", s)
		}
	}
	if !slices.ContainsFunc(statuses, func(s string) bool { return strings.HasPrefix(s, "step 1/2: 50 % on green, 2s left, last") }) {
		t.Errorf("no status line shows step 1 with its time left and analysis: %q", statuses)
	}
	if !strings.HasSuffix(out, "\n") || strings.Contains(out, "·") {
		t.Errorf("the output ends in a status line, or is not ASCII: %q", out)
	}
}

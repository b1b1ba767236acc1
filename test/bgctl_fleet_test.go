package test

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/ctl"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// undo puts back what bgctl's last change changed, or what a name held at
// a revision of its history; it refuses when etcdctl changed a key since.
// retire takes a name down, and undo brings it back.
func TestBgctlUndoRetire(t *testing.T) {
	etcd := startEtcd(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--blue", "10.0.1.1", "--green", "10.0.2.1", "--active", "blue")
	green := func() string { a, _ := aTTL(t, udp, "green.app.example.org"); return a }
	waitFor(t, "green preview", 10*time.Second, func() bool { return green() == "10.0.2.1" })

	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--green", "10.0.2.2")
	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--green", "10.0.2.3", "--ttl", "9")
	waitFor(t, "green 10.0.2.3", 10*time.Second, func() bool { return green() == "10.0.2.3" })
	r := mustBgctl(t, etcd.endpoint, "undo", "app.example.org", "--yes")
	if !strings.Contains(r.stdout.String(), "app.example.org: green 10.0.2.3 -> 10.0.2.2 (revision") || !strings.Contains(r.stdout.String(), "app.example.org: ttl 9 -> (none)") {
		t.Errorf("undo: %s", r)
	}
	waitFor(t, "green 10.0.2.2 after undo", 10*time.Second, func() bool { return green() == "10.0.2.2" })

	hist := parseJSON[[]struct {
		Revision int64  `json:"revision"`
		Command  string `json:"command"`
	}](t, mustBgctl(t, etcd.endpoint, "history", "app.example.org", "-o", "json"))
	if len(hist) != 4 || hist[3].Command != "undo app.example.org" {
		t.Fatalf("history: %+v", hist)
	}
	mustBgctl(t, etcd.endpoint, "undo", "app.example.org", "--yes", "--to-revision", fmt.Sprint(hist[0].Revision))
	waitFor(t, "green 10.0.2.1, as at the first change", 10*time.Second, func() bool { return green() == "10.0.2.1" })

	etcd.put(t, "/bluegreen/app.example.org/green", "10.0.2.9") // outside bgctl
	r = bgctl(t, etcd.endpoint, "undo", "app.example.org")
	if r.code != 1 || !strings.Contains(r.stderr.String(), `/bluegreen/app.example.org/green holds "10.0.2.9", not "10.0.2.1" as bgctl's last change to it left it`) {
		t.Errorf("undo after an etcdctl put: %s", r)
	}
	if r := bgctl(t, etcd.endpoint, "undo", "app.example.org", "--to-revision", "1"); r.code != 1 || !strings.Contains(r.stderr.String(), "--to-revision 1: no history entry of app.example.org has that revision") {
		t.Errorf("undo to a revision not in the history: %s", r)
	}

	// Retire, asked at a terminal: the answer must be the name.
	in, out := io.Pipe()
	defer out.Close()
	done := make(chan ran)
	go func() {
		done <- bgctlWith(t, ctl.IO{Stdin: in, Terminal: true}, "--endpoints", etcd.endpoint, "retire", "app.example.org")
	}()
	out.Write([]byte("app.example.org\n"))
	if r := <-done; r.code != 0 || !strings.Contains(r.stderr.String(), "Type the name to confirm:") || !strings.Contains(r.stdout.String(), "app.example.org retired") {
		t.Fatalf("retire: %s", r)
	}
	waitFor(t, "NXDOMAIN after retire", 10*time.Second, func() bool {
		return query(t, "udp", udp, "app.example.org", 1).Rcode == 3
	})
	mustBgctl(t, etcd.endpoint, "undo", "app.example.org", "--yes")
	waitFor(t, "served again after undo", 10*time.Second, func() bool { a, _ := aTTL(t, udp, "app.example.org"); return a == "10.0.1.1" })

	// Someone changes the name while the operator reads the question: the
	// transaction's conditions see it, and nothing is deleted.
	in, out = io.Pipe()
	defer out.Close()
	asked := &syncBuffer{}
	go func() {
		done <- bgctlWith(t, ctl.IO{Stdin: in, Stderr: asked, Terminal: true}, "--endpoints", etcd.endpoint, "retire", "app.example.org")
	}()
	waitFor(t, "the question", 10*time.Second, func() bool { return strings.Contains(asked.String(), "Type the name to confirm:") })
	etcd.put(t, "/bluegreen/app.example.org/canary", "5")
	out.Write([]byte("app.example.org\n"))
	if r := <-done; r.code != 1 || !strings.Contains(r.stderr.String(), "app.example.org changed in etcd since bgctl read it at revision") {
		t.Errorf("retire with a change in between: %s", r)
	}
	if a, _ := aTTL(t, udp, "app.example.org"); a != "10.0.1.1" {
		t.Errorf("after a refused retire, app.example.org answers %q", a)
	}
}

// --dns asks each server; a stopped one is reported as such, promptly, not
// waited for.
func TestBgctlFleet(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.1", "10.0.2.1")
	_, one, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	two, twoAddr, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	fleet := one + "," + twoAddr

	st := parseJSON[statusJSON](t, mustBgctl(t, etcd.endpoint, "status", "-o", "json", "--dns", fleet))
	for _, s := range st[0].Servers {
		if s.Error != "" || s.Answers != "blue" {
			t.Errorf("status --dns of a running fleet: %+v", s)
		}
	}
	r := mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green", "--dns", fleet)
	for _, srv := range []string{one, twoAddr} {
		if !strings.Contains(r.stdout.String(), srv+" answers green for app.example.org after") {
			t.Errorf("switch --dns: %s lacks %s", r, srv)
		}
	}
	t.Logf("every server answering the switch:\n%s", r.stdout)

	stopCoreDNS(two)
	start := time.Now()
	r = bgctl(t, etcd.endpoint, "status", "--dns", fleet, "--dns-timeout", "5s")
	// On loopback a stopped server's port refuses at once; the kernel may
	// rate-limit those refusals, and then a query times out instead.
	stopped := regexp.MustCompile(regexp.QuoteMeta(twoAddr) + `  app.example.org  -        -      -         -       no answer: (connection refused|timed out)`)
	if took := time.Since(start); r.code != 1 || !stopped.MatchString(r.stdout.String()) ||
		!strings.Contains(r.stdout.String(), one+"  app.example.org  green") || !strings.Contains(r.stderr.String(), "not every server answers") {
		t.Errorf("status --dns with a server stopped (took %v): %s", took, r)
	}
	r = bgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "blue", "--dns", fleet, "--dns-timeout", "2s")
	if r.code != 1 || !strings.Contains(r.stdout.String(), one+" answers blue for app.example.org after") ||
		!regexp.MustCompile(regexp.QuoteMeta(twoAddr)+`: no answer: (connection refused|timed out) for app.example.org after 2s`).MatchString(r.stdout.String()) ||
		!strings.Contains(r.stderr.String(), "but "+twoAddr+" did not answer it within --dns-timeout 2s") {
		t.Errorf("switch --dns with a server stopped: %s", r)
	}
}

// bgctl over TLS, as a user whose role may read and write only its prefix,
// its history and its releases, as the README sets it up; a user who may only read is
// refused, and the password is asked for at a terminal.
func TestBgctlTLSRole(t *testing.T) {
	p := newPKI(t)
	endpoint, root := startTLSEtcd(t, p, false)
	mustPut(t, root, appKeys...)
	setUpRoles(t, root)
	_, udp, _ := startCoreDNS(t, corefile(endpoint, "tls "+p.ca+"\n\t\tcredentials coredns C0redns-pw"))
	tlsFlags := []string{"--endpoints", endpoint, "--cacert", p.ca}

	r := bgctlWith(t, ctl.IO{}, append(tlsFlags, "--user", "release:Rel3ase-pw", "switch", "app.example.org", "--to", "green", "--confirm-within", "1m", "--dns", udp)...)
	if r.code != 0 {
		t.Fatalf("switch as release: %s", r)
	}
	r = bgctlWith(t, ctl.IO{Stdin: strings.NewReader("Rel3ase-pw\n"), Terminal: true}, append(tlsFlags, "--user", "release", "confirm", "app.example.org")...)
	if r.code != 0 || !strings.Contains(r.stderr.String(), "Password of etcd user release:") {
		t.Fatalf("confirm as release, asked for the password: %s", r)
	}
	r = bgctlWith(t, ctl.IO{}, append(tlsFlags, "--user", "release:Rel3ase-pw", "history", "app.example.org", "-o", "json")...)
	if hist := parseJSON[[]struct {
		User string `json:"user"`
	}](t, r); r.code != 0 || len(hist) != 2 || hist[0].User != "release" {
		t.Errorf("history as release: %s", r)
	}

	// A release, on its own lease, back to blue and rolled back by Ctrl-C:
	// the role lets bgctl put, keep and revoke it.
	plan := writePlan(t, "names: [app.example.org]\nto: blue\nsteps: [50, 100]\nbake: 1m\n")
	rctx, interrupt := context.WithCancel(context.Background())
	done := make(chan ran)
	go func() {
		io := ctl.IO{Stdout: &syncBuffer{}, Stderr: &syncBuffer{}, Stdin: strings.NewReader(""), Getenv: func(string) string { return "" }}
		code := ctl.Main(rctx, append(tlsFlags, "--user", "release:Rel3ase-pw", "release", "-f", plan), io)
		done <- ran{code: code, stdout: io.Stdout.(*syncBuffer), stderr: io.Stderr.(*syncBuffer)}
	}()
	waitFor(t, "the release's first step", 10*time.Second, func() bool { return strings.Contains(stateTXT(t, udp, "app.example.org"), "canary=50") })
	interrupt()
	if r := <-done; r.code != 1 || !strings.Contains(r.stderr.String(), "interrupted (bgctl got a signal); rolled back at step 1/2: app.example.org answers green again (revision") {
		t.Errorf("a release as release, interrupted: %s", r)
	}

	r = bgctlWith(t, ctl.IO{}, append(tlsFlags, "--user", "coredns:C0redns-pw", "switch", "app.example.org", "--to", "blue")...)
	if r.code != 1 || !strings.Contains(r.stderr.String(), "permission denied") || strings.Contains(r.stderr.String(), "C0redns-pw") {
		t.Errorf("switch as a user who may only read: %s", r)
	}
	if r := bgctlWith(t, ctl.IO{}, append(tlsFlags, "--user", "release", "status")...); r.code != 2 || !strings.Contains(r.stderr.String(), "stdin is not a terminal to ask at") {
		t.Errorf("--user without a password, no terminal: %s", r)
	}
	if a, _ := aTTL(t, udp, "app.example.org"); a != "10.0.2.100" {
		t.Errorf("app.example.org answers %s, want green's 10.0.2.100", a)
	}
}

// setUpRoles sets etcd up as the README does, and enables authentication:
// the user release with the role bgctl, the user coredns with the role
// bluegreen-read, and root.
func setUpRoles(t *testing.T, root *clientv3.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, step := range []func() error{
		func() error { _, err := root.RoleAdd(ctx, "bgctl"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "bgctl", "/bluegreen/", clientv3.GetPrefixRangeEnd("/bluegreen/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := root.RoleGrantPermission(ctx, "bgctl", "/bluegreen-history/", clientv3.GetPrefixRangeEnd("/bluegreen-history/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error {
			_, err := root.RoleGrantPermission(ctx, "bgctl", "/bluegreen-release/", clientv3.GetPrefixRangeEnd("/bluegreen-release/"), clientv3.PermissionType(clientv3.PermReadWrite))
			return err
		},
		func() error { _, err := root.UserAdd(ctx, "release", "Rel3ase-pw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "release", "bgctl"); return err },
		func() error { _, err := root.RoleAdd(ctx, "bluegreen-read"); return err },
		func() error {
			_, err := root.RoleGrantPermission(ctx, "bluegreen-read", "/bluegreen/", clientv3.GetPrefixRangeEnd("/bluegreen/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := root.UserAdd(ctx, "coredns", "C0redns-pw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "coredns", "bluegreen-read"); return err },
		func() error { _, err := root.UserAdd(ctx, "root", "R00t-pw"); return err },
		func() error { _, err := root.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := root.AuthEnable(ctx); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
}

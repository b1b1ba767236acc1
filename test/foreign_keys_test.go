package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/ctl"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Keys in bgctl's own namespaces that bgctl did not write, put as etcdctl
// puts them: bgctl skips them with a warning, counts none, deletes none,
// and no command fails because of them.

const appHistory = "/bluegreen-history/app.example.org/"

// historyEntries is bgctl history -o json, and what bgctl said.
func historyEntries(t *testing.T, endpoint string) ([]struct {
	Revision int64  `json:"revision"`
	Command  string `json:"command"`
}, ran) {
	t.Helper()
	r := mustBgctl(t, endpoint, "history", "app.example.org", "-o", "json")
	return parseJSON[[]struct {
		Revision int64  `json:"revision"`
		Command  string `json:"command"`
	}](t, r), r
}

// getValue is key's value in etcd, and whether it is there.
func getValue(t *testing.T, c *clientv3.Client, key string) (string, bool) {
	t.Helper()
	resp, err := c.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) == 0 {
		return "", false
	}
	return string(resp.Kvs[0].Value), true
}

func TestHistoryForeignKeys(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
		lastKey          bool // sorts after every entry: each write sees it, and warns
		foreign          bool // not bgctl's: history warns
	}{
		{"a number past int64", appHistory + "99999999999999999999", "{}", true, true},
		{"a note sorting last", appHistory + "zzz-note", "remember the milk", true, true},
		{"a note sorting among the numbers", appHistory + "00000000000000000001-note\x1b[2J", "hi", false, true},
		{"a note sorting last among the digits", appHistory + "0\x7f\x1b[2J", "hi", true, true},
		{"an entry that is not JSON", appHistory + "00000000000000000050", "not json", false, true},
		{"a plausible number far ahead", appHistory + "00000000001000000000", `{"time":"2026-01-01T00:00:00Z","command":"set app.example.org","changes":[]}`, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etcd := startEtcd(t)
			mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--blue", "10.0.1.1", "--green", "10.0.2.1", "--active", "blue")
			mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green")
			etcd.put(t, tc.key, tc.value)

			warning := fmt.Sprintf("Warning: skipping %q: not a history entry of bgctl", tc.key)
			want := []string{"set app.example.org --active=blue --blue=10.0.1.1 --green=10.0.2.1", "switch app.example.org --to=green"}
			for _, run := range []struct{ args, recorded string }{
				{"switch app.example.org --to blue", "switch app.example.org --to=blue"},
				{"canary app.example.org 10", "canary app.example.org 10"},
				{"canary app.example.org 0", "canary app.example.org 0"},
				{"rollback app.example.org", "rollback app.example.org"},
				{"undo app.example.org", "undo app.example.org"}, // asked at a terminal, answered y
			} {
				r := bgctlWith(t, ctl.IO{Stdin: strings.NewReader("y\n"), Terminal: true}, append([]string{"--endpoints", etcd.endpoint}, strings.Fields(run.args)...)...)
				if r.code != 0 {
					t.Fatalf("bgctl %s with %q in the history: %s", run.args, tc.key, r)
				}
				// Writes see the key that sorts last; undo reads every entry.
				warns := tc.lastKey || (tc.foreign && strings.HasPrefix(run.args, "undo"))
				if strings.Contains(r.stderr.String(), warning) != warns {
					t.Errorf("bgctl %s: warning %q shown: %v, want %v\n%s", run.args, warning, !warns, warns, r)
				}
				want = append(want, run.recorded)
			}
			if v, _ := getValue(t, etcd.client, "/bluegreen/app.example.org/active"); v != "blue" {
				t.Errorf("active %q after undoing the rollback, want blue", v)
			}

			hist, r := historyEntries(t, etcd.endpoint)
			var got []string
			for _, e := range hist {
				got = append(got, e.Command)
			}
			if !tc.foreign {
				got = slices.DeleteFunc(got, func(c string) bool { return c == "set app.example.org" }) // the planted one, a well-formed entry
			}
			if !slices.Equal(got, want) {
				t.Errorf("history after the stray key:\n got %q\nwant %q", got, want)
			}
			if strings.Contains(r.stderr.String(), warning) != tc.foreign {
				t.Errorf("history: warning %q shown: %v, want %v\n%s", warning, !tc.foreign, tc.foreign, r)
			}
			if strings.ContainsAny(r.stderr.String(), "\x1b\x7f") {
				t.Errorf("history printed a control character from etcd: %q", r.stderr)
			}
			if v, ok := getValue(t, etcd.client, tc.key); !ok || v != tc.value {
				t.Errorf("the stray key %q after the writes: %q, %v; want it left as it was", tc.key, v, ok)
			}
		})
	}
}

// A number at the very top of int64, planted: bgctl cannot number past it,
// and says which key to remove rather than failing as if someone wrote
// meanwhile.
func TestHistoryNumberAtTheTop(t *testing.T) {
	etcd := startEtcd(t)
	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--blue", "10.0.1.1", "--green", "10.0.2.1", "--active", "blue")
	top := appHistory + "09223372036854775807"
	etcd.put(t, top, "{}")
	before := etcdRevision(t, etcd.client)
	r := bgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green")
	if r.code != 1 || !strings.Contains(r.stderr.String(), fmt.Sprintf("the newest history entry of app.example.org is %q, the highest number there is", top)) ||
		!strings.Contains(r.stderr.String(), "nothing was written; remove it with etcdctl del "+top) {
		t.Errorf("switch with a history number at the top: %s", r)
	}
	if after := etcdRevision(t, etcd.client); after != before {
		t.Errorf("etcd went from revision %d to %d: the refused switch wrote", before, after)
	}
	if hist, _ := historyEntries(t, etcd.endpoint); len(hist) != 1 {
		t.Errorf("history: %+v, want the one set", hist)
	}
	etcd.del(t, top)
	mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green")
}

// A history entry put with etcdctl is not undone: undo checks each entry
// against what etcd held at its revision. Undo shows what it writes and
// asks, or takes --yes.
func TestUndoChecksAndAsks(t *testing.T) {
	etcd := startEtcd(t)
	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--blue", "10.0.1.1", "--green", "10.0.2.1", "--active", "blue")
	mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green")
	forged := appHistory + "00000000000000000003"
	etcd.put(t, forged, fmt.Sprintf(`{"time":%q,"user":"mallory","command":"set app.example.org --green=10.6.6.6","changes":[{"key":"green","from":"10.6.6.6","to":"10.0.2.1"}]}`, time.Now().UTC().Format(time.RFC3339)))
	before := etcdRevision(t, etcd.client)
	r := bgctl(t, etcd.endpoint, "undo", "app.example.org", "--yes")
	if r.code != 1 || !strings.Contains(r.stderr.String(), fmt.Sprintf(`history entry %q (revision %d) says "/bluegreen/app.example.org/green" went from "10.6.6.6" to "10.0.2.1", but etcd held "10.0.2.1" before revision %d and "10.0.2.1" at it: bgctl did not write that entry; nothing was written; remove it with etcdctl del %s`, forged, before, before, forged)) {
		t.Errorf("undo of a forged entry: %s", r)
	}
	if after := etcdRevision(t, etcd.client); after != before {
		t.Errorf("etcd went from revision %d to %d: undo of a forged entry wrote", before, after)
	}
	etcd.del(t, forged)

	// Not at a terminal, without --yes: what it would write, and no write.
	before = etcdRevision(t, etcd.client)
	r = bgctl(t, etcd.endpoint, "undo", "app.example.org")
	if r.code != 2 || !strings.Contains(r.stdout.String(), `"/bluegreen/app.example.org/active": "green" -> "blue"`) ||
		!strings.Contains(r.stderr.String(), "undo of app.example.org writes the keys above: give --yes (stdin is not a terminal to ask at); nothing was written") {
		t.Errorf("undo without --yes, not at a terminal: %s", r)
	}
	// At a terminal: no unless y.
	for _, answer := range []string{"\n", "n\n", "yess\n"} {
		r := bgctlWith(t, ctl.IO{Stdin: strings.NewReader(answer), Terminal: true}, "--endpoints", etcd.endpoint, "undo", "app.example.org")
		if r.code != 1 || !strings.Contains(r.stderr.String(), "Write these keys? [y/N]") || !strings.Contains(r.stderr.String(), "app.example.org not undone: the answer was not y; nothing was written") {
			t.Errorf("undo answered %q: %s", answer, r)
		}
	}
	if after := etcdRevision(t, etcd.client); after != before {
		t.Errorf("etcd went from revision %d to %d: an undo not agreed to wrote", before, after)
	}
	if r := bgctlWith(t, ctl.IO{Stdin: strings.NewReader("y\n"), Terminal: true}, "--endpoints", etcd.endpoint, "undo", "app.example.org"); r.code != 0 ||
		!strings.Contains(r.stdout.String(), "app.example.org: active green -> blue (revision") {
		t.Errorf("undo answered y: %s", r)
	}

	// Compacted: the entry cannot be checked, and only --yes writes.
	mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green")
	if _, err := etcd.client.Compact(context.Background(), etcdRevision(t, etcd.client), clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if r := bgctlWith(t, ctl.IO{Stdin: strings.NewReader("y\n"), Terminal: true}, "--endpoints", etcd.endpoint, "undo", "app.example.org"); r.code != 2 ||
		!strings.Contains(r.stderr.String(), "bgctl cannot check it against what etcd held: give --yes to write all the same; nothing was written") {
		t.Errorf("undo of a compacted entry without --yes: %s", r)
	}
	r = mustBgctl(t, etcd.endpoint, "undo", "app.example.org", "--yes")
	if !strings.Contains(r.stderr.String(), "Warning: etcd has compacted revision") || !strings.Contains(r.stdout.String(), "app.example.org: active green -> blue (revision") {
		t.Errorf("undo --yes of a compacted entry: %s", r)
	}
}

// A release state key put without a lease is no release: writes go ahead,
// status warns of it, pause refuses, and abort deletes it and says that is
// all it did.
func TestStaleReleaseState(t *testing.T) {
	etcd := startEtcd(t)
	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--blue", "10.0.1.1", "--green", "10.0.2.1", "--active", "blue")
	state := "/bluegreen-release/app.example.org/state"
	etcd.put(t, state, `{"plan":"p.yaml","names":["app.example.org"],"from":"blue","to":"green","step":1,"steps":2,"state":"running","user":"x","host":"h","pid":1}`)
	etcd.put(t, "/bluegreen-release/notes\x1b", "hi")

	for _, args := range [][]string{{"switch", "app.example.org", "--to", "green"}, {"canary", "app.example.org", "10"}, {"set", "app.example.org", "--ttl", "60"}} {
		mustBgctl(t, etcd.endpoint, args...)
	}
	r := mustBgctl(t, etcd.endpoint, "status", "app.example.org")
	if !strings.Contains(r.stderr.String(), `Warning: skipping "/bluegreen-release/app.example.org/state": stale: it has no lease`) ||
		!strings.Contains(r.stderr.String(), `Warning: skipping "/bluegreen-release/notes\x1b": not a key of bgctl's releases`) || strings.Contains(r.stdout.String(), "a release from") {
		t.Errorf("status with a stale state key: %s", r)
	}
	if r := bgctl(t, etcd.endpoint, "pause", "app.example.org"); r.code != 1 ||
		!strings.Contains(r.stderr.String(), `no release of app.example.org is running: "/bluegreen-release/app.example.org/state" is stale, it has no lease`) {
		t.Errorf("pause with a stale state key: %s", r)
	}
	r = mustBgctl(t, etcd.endpoint, "abort", "app.example.org")
	if !strings.Contains(r.stdout.String(), `no release of app.example.org was running: "/bluegreen-release/app.example.org/state" was stale, it has no lease`) ||
		!strings.Contains(r.stdout.String(), "bgctl deleted it (revision") || !strings.Contains(r.stdout.String(), "revoked no lease and rolled nothing back: app.example.org: 90 % on green, 10 % on blue") {
		t.Errorf("abort with a stale state key: %s", r)
	}
	if _, ok := getValue(t, etcd.client, state); ok {
		t.Errorf("%s still there after abort", state)
	}
	if r := bgctl(t, etcd.endpoint, "abort", "app.example.org"); r.code != 1 || !strings.Contains(r.stderr.String(), "no release of app.example.org is running") {
		t.Errorf("abort again: %s", r)
	}
}

// A release starts over a stale state key, and puts its own on its lease.
func TestReleaseOverStaleState(t *testing.T) {
	etcd, _, _, _ := releaseSetup(t)
	etcd.put(t, "/bluegreen-release/app.example.org/state", `{"plan":"old.yaml","names":["app.example.org"],"state":"running"}`)
	plan := writePlan(t, "names: [app.example.org]\nto: green\nsteps: [100]\nbake: 1s\n")
	if r := bgctl(t, etcd.endpoint, "release", "-f", plan); r.code != 0 {
		t.Fatalf("release over a stale state key: %s", r)
	}
	if v, ok := getValue(t, etcd.client, "/bluegreen-release/app.example.org/state"); ok {
		t.Errorf("the state key outlived the release: %q", v)
	}
}

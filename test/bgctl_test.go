package test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/ctl"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

var revisionRE = regexp.MustCompile(`"revision=[0-9]+"`)

// ran is what one bgctl command did.
type ran struct {
	code           int
	stdout, stderr *syncBuffer
}

func (r ran) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// bgctl runs bgctl in the test's process against etcd at endpoint, as
// BGCTL_ENDPOINTS gives it, and returns what it did.
func bgctl(t *testing.T, endpoint string, args ...string) ran {
	t.Helper()
	return bgctlWith(t, ctl.IO{Getenv: func(k string) string {
		if k == "BGCTL_ENDPOINTS" {
			return endpoint
		}
		return ""
	}}, args...)
}

// bgctlWith runs bgctl with the given IO; its output goes to buffers.
func bgctlWith(t *testing.T, io ctl.IO, args ...string) ran {
	t.Helper()
	r := ran{stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	if b, ok := io.Stderr.(*syncBuffer); ok { // the test reads it while bgctl runs
		r.stderr = b
	}
	io.Stdout, io.Stderr = r.stdout, r.stderr
	if io.Getenv == nil {
		io.Getenv = func(string) string { return "" }
	}
	if io.Stdin == nil {
		io.Stdin = strings.NewReader("")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r.code = ctl.Main(ctx, args, io)
	return r
}

// mustBgctl runs bgctl and fails the test unless it exits 0.
func mustBgctl(t *testing.T, endpoint string, args ...string) ran {
	t.Helper()
	r := bgctl(t, endpoint, args...)
	if r.code != 0 {
		t.Fatalf("bgctl %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// statusJSON is bgctl status -o json, parsed.
type statusJSON []struct {
	Name     string            `json:"name"`
	Revision int64             `json:"revision"`
	Active   string            `json:"active"`
	Blue     string            `json:"blue"`
	Green    string            `json:"green"`
	TTL      string            `json:"ttl"`
	Canary   string            `json:"canary"`
	Check    string            `json:"check"`
	Trial    string            `json:"trial"`
	Answers  string            `json:"answers"`
	Ignored  map[string]string `json:"ignored"`
	Servers  []struct {
		Server   string `json:"server"`
		Answers  string `json:"answers"`
		Revision int64  `json:"revision"`
		Synced   int64  `json:"synced"`
		Error    string `json:"error"`
	} `json:"servers"`
}

func parseJSON[T any](t *testing.T, r ran) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.stdout.String()), &v); err != nil {
		t.Fatalf("%v in %s", err, r)
	}
	return v
}

func etcdRevision(t *testing.T, c *clientv3.Client) int64 {
	t.Helper()
	resp, err := c.Get(context.Background(), "/", clientv3.WithCountOnly())
	if err != nil {
		t.Fatal(err)
	}
	return resp.Header.Revision
}

// aTTL is the addresses and TTL of an A answer.
func aTTL(t *testing.T, udp, name string) (string, uint32) {
	t.Helper()
	m := query(t, "udp", udp, name, dns.TypeA)
	var addrs []string
	var ttl uint32
	for _, rr := range m.Answer {
		if a, ok := rr.(*dns.A); ok {
			addrs, ttl = append(addrs, a.A.String()), a.Hdr.Ttl
		}
	}
	slices.Sort(addrs)
	return strings.Join(addrs, ","), ttl
}

// bgctl set makes a name the plugin serves; a value the plugin would ignore
// is refused with the key and the reason, and nothing is written; status
// flags what etcdctl wrote that the plugin ignores, with the plugin's own
// reason, and shows what a server answers.
func TestBgctlSetStatusRefusals(t *testing.T) {
	etcd := startEtcd(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))

	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--blue", "10.0.1.1", "--green", "10.0.2.1", "--active", "blue")
	waitFor(t, "app.example.org served", 10*time.Second, func() bool { a, _ := aTTL(t, udp, "app.example.org"); return a == "10.0.1.1" })

	before := etcdRevision(t, etcd.client)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"set", "app.example.org", "--ttl", "7200"}, 1, `"/bluegreen/app.example.org/ttl = 7200": ttl 7200 is above the maximum of 3600 seconds`},
		{[]string{"set", "app.example.org", "--green", "10.0.2.300"}, 1, `"10.0.2.300" is neither an IP address nor a hostname`},
		{[]string{"set", "app.example.org", "--check", "tcp://db:80"}, 1, "names a host"},
		{[]string{"set", "app.example.org", "--active", "GREEN"}, 1, `"GREEN" is not a colour`},
		{[]string{"set", "new.example.org", "--blue", "10.0.1.1", "--active", "green"}, 1, "/bluegreen/new.example.org/active = green\": green has no target"},
		{[]string{"set", "blue.app.example.org", "--blue", "10.0.1.1"}, 2, "is the blue view of app.example.org"},
		{[]string{"set", "app.example.org"}, 2, "give at least one of"},
		{[]string{"set", "app.example.org", "--bogus", "1"}, 2, "unknown flag: --bogus"},
		{[]string{"switch", "app.example.org", "--to", "purple"}, 2, `"purple" is not a colour`},
		{[]string{"switch", "app.example.org"}, 2, "--to is required"},
		{[]string{"switch", "app.example.org", "--to", "green", "--lower-ttl", "5"}, 2, "--lower-ttl needs --confirm-within"},
		{[]string{"canary", "app.example.org", "110"}, 1, `"/bluegreen/app.example.org/canary = 110": "110" is not a canary share`},
		{[]string{"switch", "app.example.org", "--to", "green", "--confirm-within", "0"}, 2, "--confirm-within 0s: want at least 1s"},
		{[]string{"switch", "app.example.org", "--to", "green", "--confirm-within", "1m", "--lower-ttl", "60", "--dns", udp}, 2, "--lower-ttl 60 is above app.example.org's TTL of 5 s: it would raise it"},
		{[]string{"status", "-o", "yaml"}, 2, "-o yaml: want table or json"},
		{[]string{"--endpoints", "http://u:s3cret@127.0.0.1:2379", "status"}, 2, "--endpoints http://REDACTED@127.0.0.1:2379: want http://HOST:PORT"},
		{[]string{"--endpoints", "http://127.0.0.1:1", "--dial-timeout", "100ms", "status"}, 1, "no connection to etcd at http://127.0.0.1:1 within --dial-timeout 100ms"},
		{[]string{"promote", "app.example.org"}, 1, "has no canary share"},
		{[]string{"confirm", "app.example.org"}, 1, "app.example.org has no trial to confirm"},
		{[]string{"status", "nope.example.org"}, 1, "nope.example.org is not managed: etcd holds no key under /bluegreen/nope.example.org/"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"retire", "app.example.org"}, 2, "give --yes (stdin is not a terminal to ask at)"},
		{[]string{"--prefix", "bluegreen", "status"}, 2, "--prefix \"bluegreen\": want a path that starts and ends with /"},
	} {
		r := bgctl(t, etcd.endpoint, tc.args...)
		if r.code != tc.code || !strings.Contains(r.stderr.String(), tc.want) {
			t.Errorf("bgctl %s: %s\nwant exit %d and %q", strings.Join(tc.args, " "), r, tc.code, tc.want)
		}
	}
	if after := etcdRevision(t, etcd.client); after != before {
		t.Errorf("etcd went from revision %d to %d: a refused command wrote", before, after)
	}
	if r := bgctl(t, etcd.endpoint, "switch", "--help"); r.code != 0 || !strings.Contains(r.stdout.String(), "--confirm-within duration") || !strings.Contains(r.stdout.String(), "--endpoints") {
		t.Errorf("switch --help: %s", r)
	}

	// What etcdctl put that the plugin ignores: status says so, with the
	// reason the plugin gives in its TXT state.
	etcd.put(t, "/bluegreen/app.example.org/canary", "150")
	etcd.put(t, "/bluegreen/app.example.org/actve", "green")
	var txt string
	waitFor(t, "both keys ignored in the TXT state", 10*time.Second, func() bool {
		txt = strings.ReplaceAll(stateTXT(t, udp, "app.example.org"), `\"`, `"`)
		return strings.Contains(txt, "ignored=canary") && strings.Contains(txt, "ignored=actve")
	})
	st := parseJSON[statusJSON](t, mustBgctl(t, etcd.endpoint, "status", "-o", "json", "--dns", udp))
	if len(st) != 1 || st[0].Name != "app.example.org" || st[0].Active != "blue" || st[0].Blue != "10.0.1.1" || st[0].Green != "10.0.2.1" || st[0].Canary != "150" || st[0].Answers != "blue" {
		t.Fatalf("status: %+v", st)
	}
	for field, why := range st[0].Ignored {
		if !strings.Contains(txt, `"ignored=`+field+": "+why+`"`) {
			t.Errorf("status says the plugin ignores %s: %s; the plugin's TXT state: %s", field, why, txt)
		}
	}
	if len(st[0].Ignored) != 2 {
		t.Errorf("status ignored %v, want canary and actve", st[0].Ignored)
	}
	if s := st[0].Servers; len(s) != 1 || s[0].Server != udp || s[0].Answers != "blue" || s[0].Synced < st[0].Revision || s[0].Error != "" {
		t.Errorf("status --dns: %+v, want the server caught up", s)
	}
	table := mustBgctl(t, etcd.endpoint, "status").stdout.String()
	if !strings.Contains(table, "app.example.org: the plugin ignores /bluegreen/app.example.org/canary: \"150\" is not a canary share") {
		t.Errorf("status table does not flag the canary:\n%s", table)
	}
}

// A switch flips every name given in one transaction, prints when the old
// colour is gone from caches, and is in the history with who, why and what
// changed; rollback goes back. The history survives a compaction, and keeps
// the last 100 changes of a name.
func TestBgctlSwitchHistory(t *testing.T) {
	etcd := startEtcd(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	etcd.putName(t, "app.example.org", "blue", "10.0.1.1", "10.0.2.1")
	etcd.putName(t, "api.example.org", "blue", "10.0.1.2", "10.0.2.2")
	etcd.put(t, "/bluegreen/idle.example.org/blue", "10.0.1.3")
	etcd.put(t, "/bluegreen/idle.example.org/active", "blue")
	waitFor(t, "the names served", 10*time.Second, func() bool { a, _ := aTTL(t, udp, "idle.example.org"); return a == "10.0.1.3" })

	r := bgctl(t, etcd.endpoint, "switch", "idle.example.org", "app.example.org", "--to", "green")
	if r.code != 1 || !strings.Contains(r.stderr.String(), "idle.example.org: green has no target (/bluegreen/idle.example.org/green is not set") {
		t.Errorf("a switch to a colour without a target: %s", r)
	}
	if a, _ := aTTL(t, udp, "app.example.org"); a != "10.0.1.1" {
		t.Errorf("app.example.org answers %s after a refused switch of it and another name", a)
	}

	r = mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "api.example.org", "--to", "green", "--reason", "release 2.0", "--dns", udp)
	out := r.stdout.String()
	for _, want := range []string{"app.example.org: blue -> green (revision", "api.example.org: blue -> green (revision", "blue drained from caches by", ", TTL 5 s", udp + " answers green for app.example.org after"} {
		if !strings.Contains(out, want) {
			t.Errorf("switch output lacks %q:\n%s", want, out)
		}
	}
	var revs []string
	for _, n := range []string{"app.example.org", "api.example.org"} {
		revs = append(revs, revisionRE.FindString(stateTXT(t, udp, n)))
		if a, _ := aTTL(t, udp, n); !strings.HasPrefix(a, "10.0.2.") {
			t.Errorf("%s answers %s after the switch", n, a)
		}
	}
	if revs[0] != revs[1] {
		t.Errorf("the names switched at %v: want one transaction", revs)
	}

	mustBgctl(t, etcd.endpoint, "rollback", "app.example.org", "--reason", "5xx")
	waitFor(t, "the rollback", 10*time.Second, func() bool { a, _ := aTTL(t, udp, "app.example.org"); return a == "10.0.1.1" })

	type entry struct {
		Revision int64     `json:"revision"`
		Time     time.Time `json:"time"`
		User     string    `json:"user"`
		Command  string    `json:"command"`
		Reason   string    `json:"reason"`
		Changes  []struct {
			Key  string  `json:"key"`
			From *string `json:"from"`
			To   *string `json:"to"`
		} `json:"changes"`
	}
	hist := parseJSON[[]entry](t, mustBgctl(t, etcd.endpoint, "history", "app.example.org", "-o", "json"))
	if len(hist) != 2 || hist[0].Command != `switch app.example.org api.example.org --reason="release 2.0" --to=green` || hist[0].Reason != "release 2.0" ||
		hist[0].User == "" || time.Since(hist[0].Time) > time.Minute || hist[1].Command != "rollback app.example.org --reason=5xx" ||
		len(hist[0].Changes) != 1 || hist[0].Changes[0].Key != "active" || *hist[0].Changes[0].From != "blue" {
		t.Fatalf("history: %+v", hist)
	}
	if want := fmt.Sprintf(`"revision=%d"`, hist[0].Revision); revs[0] != want {
		t.Errorf("history says the switch was at revision %d, the plugin %s", hist[0].Revision, revs[0])
	}

	// etcd compacts away old revisions; the history is ordinary keys.
	if _, err := etcd.client.Compact(context.Background(), etcdRevision(t, etcd.client), clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
	if again := parseJSON[[]entry](t, mustBgctl(t, etcd.endpoint, "history", "app.example.org", "-o", "json")); len(again) != 2 || again[1].Revision != hist[1].Revision {
		t.Errorf("history after a compaction: %+v", again)
	}

	for i := range 105 { // 105 more changes: the first ones go
		mustBgctl(t, etcd.endpoint, "set", "api.example.org", "--ttl", fmt.Sprint(10+i))
	}
	if hist := parseJSON[[]entry](t, mustBgctl(t, etcd.endpoint, "history", "api.example.org", "-o", "json")); len(hist) != 100 || hist[99].Command != "set api.example.org --ttl=114" || hist[0].Command != "set api.example.org --ttl=15" {
		t.Errorf("history of 106 changes: %d entries, from %q to %q; want the last 100", len(hist), hist[0].Command, hist[len(hist)-1].Command)
	}
}

// bgctl canary sends a share of client networks to the idle colour; bgctl
// promote flips without moving any of them.
func TestBgctlCanaryPromote(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	colours := func() []string {
		var out []string
		for i := range 200 {
			out = append(out, strings.Join(answers(queryFrom(t, udp, "app.example.org", netip.AddrFrom4([4]byte{10, byte(i / 250), byte(i % 250), 0}))), ""))
		}
		return out
	}
	count := func(cs []string, want string) int {
		n := 0
		for _, c := range cs {
			if c == want {
				n++
			}
		}
		return n
	}

	mustBgctl(t, etcd.endpoint, "canary", "app.example.org", "30")
	waitFor(t, "canary=30", 10*time.Second, func() bool { return strings.Contains(stateTXT(t, udp, "app.example.org"), `"canary=30"`) })
	before := colours()
	if n := count(before, "A 10.0.2.100"); n < 30 || n > 90 {
		t.Fatalf("with canary 30, %d of 200 client networks get green", n)
	}
	r := mustBgctl(t, etcd.endpoint, "promote", "app.example.org")
	if !strings.Contains(r.stdout.String(), "app.example.org: active blue -> green (revision") || !strings.Contains(r.stdout.String(), "app.example.org: canary 30 -> 70 (revision") {
		t.Errorf("promote: %s", r)
	}
	waitFor(t, "green active, canary 70", 10*time.Second, func() bool {
		txt := stateTXT(t, udp, "app.example.org")
		return strings.Contains(txt, `"active=green"`) && strings.Contains(txt, `"canary=70"`)
	})
	moved := 0
	for i, c := range colours() {
		if c != before[i] {
			moved++
		}
	}
	if moved > 0 {
		t.Errorf("promote moved %d of 200 client networks", moved)
	}
}

package test

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// What switch, rollback, confirm, canary and promote print about where
// client networks are is checked against what the plugin answers 400 client
// networks, each asking through a resolver that sends its /24.

const (
	splitName  = "app.example.org"
	splitBlue  = "10.0.1.100"
	splitGreen = "10.0.2.100"
	splitNets  = 400
)

// split is etcd with splitName on blue, a CoreDNS serving it, and the
// colour the server answers each client network as of the last command.
type split struct {
	etcd    *etcdServer
	udp     string
	colours []string
}

func newSplit(t *testing.T) *split {
	t.Helper()
	etcd := startEtcd(t)
	etcd.putName(t, splitName, "blue", splitBlue, splitGreen)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	waitSynced(t, etcd, udp)
	return &split{etcd: etcd, udp: udp, colours: clientColours(t, udp)}
}

// bgctl runs a bgctl command that must succeed, waits until the server
// has what it wrote, and checks that its output holds want and says what
// the server answers: how many client networks moved, and where they are.
func (s *split) bgctl(t *testing.T, want string, args ...string) ran {
	t.Helper()
	r := mustBgctl(t, s.etcd.endpoint, args...)
	waitSynced(t, s.etcd, s.udp)
	before := s.colours
	s.colours = clientColours(t, s.udp)
	printedMatches(t, r, before, s.colours)
	if !strings.Contains(r.stdout.String(), want) {
		t.Errorf("bgctl %s does not say %q:\n%s", strings.Join(args, " "), want, r)
	}
	return r
}

// waitSynced waits until the server's answers are complete up to etcd's
// revision now.
func waitSynced(t *testing.T, etcd *etcdServer, udp string) {
	t.Helper()
	rev := etcdRevision(t, etcd.client)
	re := regexp.MustCompile(`"synced=([0-9]+)"`)
	waitFor(t, fmt.Sprintf("the server synced to revision %d", rev), 10*time.Second, func() bool {
		m := re.FindStringSubmatch(stateTXT(t, udp, splitName))
		if m == nil {
			return false
		}
		synced, _ := strconv.ParseInt(m[1], 10, 64)
		return synced >= rev
	})
}

// clientColours is the colour the server answers each client network.
func clientColours(t *testing.T, udp string) []string {
	t.Helper()
	out := make([]string, splitNets)
	for i := range out {
		net := netip.AddrFrom4([4]byte{100, 64 + byte(i/250), byte(i % 250), 0})
		switch got := strings.Join(answers(queryFrom(t, udp, splitName, net)), " "); got {
		case "A " + splitBlue:
			out[i] = "blue"
		case "A " + splitGreen:
			out[i] = "green"
		default:
			t.Fatalf("client network %s/24 got %q", net, got)
		}
	}
	return out
}

// percentOn is the percentage of client networks on colour.
func percentOn(cs []string, colour string) float64 {
	n := 0
	for _, c := range cs {
		if c == colour {
			n++
		}
	}
	return float64(n*100) / float64(len(cs))
}

// percentMoved is the percentage of client networks whose colour changed.
func percentMoved(before, after []string) float64 {
	n := 0
	for i := range before {
		if before[i] != after[i] {
			n++
		}
	}
	return float64(n*100) / float64(len(before))
}

var (
	movedRE = regexp.MustCompile(`(no client network|([0-9]+) % of client networks) moved[^:]*: ([0-9]+) % on (blue|green)(, ([0-9]+) % on (blue|green))?`)
	// A split share printed and one measured over splitNets networks: the
	// plugin's slots are a hash, so a share of a few hundred networks is
	// near the nominal one, not on it. All or none is exact.
	splitSlack = 6.0
)

// printedMatches checks that what bgctl printed of splitName's client
// networks (how many moved, and where they are) is what the server answered
// before and after the command.
func printedMatches(t *testing.T, r ran, before, after []string) {
	t.Helper()
	m := movedRE.FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Errorf("bgctl says nothing of where client networks are:\n%s", r)
		return
	}
	near := func(what string, printed int, measured float64) {
		exact := printed == 0 || printed == 100
		if d := float64(printed) - measured; (exact && d != 0) || d > splitSlack || d < -splitSlack {
			t.Errorf("bgctl prints %d %% %s, the server answers %.1f %% so:\n%s", printed, what, measured, r)
		}
	}
	t.Logf("bgctl: %q; the server: %.2f %% moved, %.2f %% on blue", m[0], percentMoved(before, after), percentOn(after, "blue"))
	moved, _ := strconv.Atoi(m[2])
	near("of client networks moved", moved, percentMoved(before, after))
	shares := map[string]int{m[4]: atoi(m[3])}
	if m[7] != "" {
		shares[m[7]] = atoi(m[6])
	}
	for _, c := range []string{"blue", "green"} {
		near("on "+c, shares[c], percentOn(after, c))
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// allOn fails unless every client network is on colour.
func allOn(t *testing.T, cs []string, colour, after string) {
	t.Helper()
	if n := percentOn(cs, colour); n != 100 {
		t.Errorf("after %s, %.1f %% of %d client networks are on %s, want all", after, n, len(cs), colour)
	}
}

// After canary 10 and promote, green is active with canary 90: a rollback
// goes back to blue, the colour every client had before the canary, for
// every client network, and history records the canary key it cleared.
func TestRollbackAfterCanaryPromote(t *testing.T) {
	s := newSplit(t)
	s.bgctl(t, "10 % of client networks moved: 90 % on blue, 10 % on green", "canary", splitName, "10")
	split := s.colours
	s.bgctl(t, "no client network moved: 10 % on green, 90 % on blue", "promote", splitName)
	if n := percentMoved(split, s.colours); n != 0 {
		t.Errorf("promote moved %.1f %% of client networks", n)
	}
	r := s.bgctl(t, "app.example.org: green -> blue (revision", "rollback", splitName, "--dns", s.udp)
	if !strings.Contains(r.stdout.String(), "moved (canary 90 cleared): 100 % on blue") {
		t.Errorf("rollback does not say it cleared the canary:\n%s", r)
	}
	allOn(t, s.colours, "blue", "canary 10, promote, rollback")

	hist := mustBgctl(t, s.etcd.endpoint, "history", splitName).stdout.String()
	if last := strings.TrimSpace(hist[strings.LastIndex(strings.TrimSpace(hist), "\n")+1:]); !strings.Contains(last, "rollback") || !strings.Contains(last, "canary 90 -> (none)") || !strings.Contains(last, "active green -> blue") {
		t.Errorf("history of the rollback: %q", last)
	}
}

// canary 10 alone: a rollback sends everyone to the active colour.
func TestRollbackCanaryToActive(t *testing.T) {
	s := newSplit(t)
	s.bgctl(t, "", "canary", splitName, "10")
	s.bgctl(t, "(canary 10 cleared): 100 % on blue", "rollback", splitName)
	allOn(t, s.colours, "blue", "canary 10, rollback")
}

// A switch to the active colour while a canary splits the name is no
// "already answers": it ends the split. --keep-canary keeps it, and says so.
func TestSwitchCanaryClearOrKeep(t *testing.T) {
	s := newSplit(t)
	s.bgctl(t, "", "canary", splitName, "30")
	r := s.bgctl(t, "(canary 30 cleared): 100 % on blue", "switch", splitName, "--to", "blue")
	allOn(t, s.colours, "blue", "switch --to the active colour with canary 30")
	if strings.Contains(r.stdout.String(), "already answers") {
		t.Errorf("switch to the active colour with a canary:\n%s", r)
	}
	if r := mustBgctl(t, s.etcd.endpoint, "switch", splitName, "--to", "blue"); !strings.Contains(r.stdout.String(), "app.example.org already answers blue\n") {
		t.Errorf("a switch that changes nothing:\n%s", r)
	}

	s.bgctl(t, "", "canary", splitName, "30")
	s.bgctl(t, "(canary 30 kept): 70 % on green, 30 % on blue", "switch", splitName, "--to", "green", "--keep-canary")
	if n := percentOn(s.colours, "blue"); n < 30-splitSlack || n > 30+splitSlack {
		t.Errorf("after switch --to green --keep-canary with canary 30, %.1f %% of client networks on blue", n)
	}
}

// A trial over a canary puts every client network on its colour while it
// lives; when it ends, by rollback or by its lease running out, the split
// comes back, every network where it was. confirm keeps what the trial
// answered: the canary key goes.
func TestTrialOverCanary(t *testing.T) {
	s := newSplit(t)
	s.bgctl(t, "", "canary", splitName, "30")
	split := s.colours
	same := func(what string) {
		t.Helper()
		if n := percentMoved(split, s.colours); n != 0 {
			t.Errorf("after %s, %.1f %% of client networks are not where canary 30 had them", what, n)
		}
	}

	s.bgctl(t, "goes back by itself to 70 % on blue, 30 % on green", "switch", splitName, "--to", "green", "--confirm-within", "1m")
	allOn(t, s.colours, "green", "a trial of green over canary 30")
	s.bgctl(t, "trial of green ended, back to blue (revision", "rollback", splitName)
	same("rollback of the trial")

	// The trial of the active colour ends the split too, while it lives.
	watch := s.etcd.client.Watch(context.Background(), "/bluegreen/"+splitName+"/trial")
	s.bgctl(t, "(canary 30 held at 0 during the trial): 100 % on blue", "switch", splitName, "--to", "blue", "--confirm-within", "2s")
	allOn(t, s.colours, "blue", "a trial of the active colour over canary 30")
	for deleted := false; !deleted; {
		select {
		case resp := <-watch:
			for _, ev := range resp.Events {
				deleted = deleted || ev.Type == clientv3.EventTypeDelete
			}
		case <-time.After(30 * time.Second):
			t.Fatal("etcd did not delete the trial key within 30 s of its lease running out")
		}
	}
	waitSynced(t, s.etcd, s.udp)
	s.colours = clientColours(t, s.udp)
	same("the trial's lease ran out")

	s.bgctl(t, "", "switch", splitName, "--to", "green", "--confirm-within", "1m")
	s.bgctl(t, "green confirmed, no longer a trial (revision", "confirm", splitName)
	allOn(t, s.colours, "green", "confirm of a trial over canary 30")
	if resp, err := s.etcd.client.Get(context.Background(), "/bluegreen/"+splitName+"/canary"); err != nil || len(resp.Kvs) != 0 {
		t.Errorf("the canary key after confirm: %v %v", resp.Kvs, err)
	}
}

// A canary bgctl did not write (etcdctl), or an active key changed outside
// bgctl since the canary, leaves rollback no way to tell which colour
// clients had before the split: it refuses, writes nothing, and names the
// choice.
func TestRollbackCanaryWithoutHistory(t *testing.T) {
	s := newSplit(t)
	refused := func(what string) {
		t.Helper()
		before := etcdRevision(t, s.etcd.client)
		r := bgctl(t, s.etcd.endpoint, "rollback", splitName)
		if r.code != 1 || !strings.Contains(r.stderr.String(), "bgctl cannot tell which colour every client had before the split: choose one, bgctl switch app.example.org --to blue or bgctl switch app.example.org --to green") {
			t.Errorf("rollback of %s: %s", what, r)
		}
		if after := etcdRevision(t, s.etcd.client); after != before {
			t.Errorf("the refused rollback of %s wrote: etcd at revision %d, was %d", what, after, before)
		}
	}
	s.etcd.put(t, "/bluegreen/"+splitName+"/canary", "30")
	refused("a canary written with etcdctl")

	mustBgctl(t, s.etcd.endpoint, "canary", splitName, "0")
	mustBgctl(t, s.etcd.endpoint, "canary", splitName, "30")
	s.etcd.put(t, "/bluegreen/"+splitName+"/active", "green")
	refused("a canary after which etcdctl changed the active key")
}

package test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// The model of what each name answers comes from its keys in etcd, read
// and parsed with the schema package as bgctl reads them: the colour of
// the trial while its key (and so its lease) lives, else the active key;
// and the share of client networks sent to the other colour. The checks
// below compare it, and what bgctl prints, with the servers' answers.

// want is what a name answers every client network with, but share
// percent of them that get the other colour.
type want struct {
	colour schema.Colour
	share  uint8
	trial  bool
}

func (w want) String() string {
	s := w.colour.String()
	if w.share > 0 {
		s += fmt.Sprintf(" with %d %% on %s", w.share, w.colour.Other())
	}
	if w.trial {
		s += " (trial)"
	}
	return s
}

// majority is the colour most client networks get; ok is false at 50 %.
func (w want) majority() (schema.Colour, bool) {
	switch {
	case w.share < 50:
		return w.colour, true
	case w.share > 50:
		return w.colour.Other(), true
	}
	return 0, false
}

// model reads what every name should answer from etcd.
func (w *world) model() (map[string]want, error) {
	out := map[string]want{}
	for _, n := range tortureNames {
		// Once etcd is back from an outage, the client's reconnection
		// backoff can take some seconds.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		resp, err := w.client.Get(ctx, "/bluegreen/"+n.name+"/", clientv3.WithPrefix())
		cancel()
		if err != nil {
			return nil, fmt.Errorf("reading %s: %v", n.name, err)
		}
		keys := map[string]string{}
		var lease int64
		for _, kv := range resp.Kvs {
			field := strings.TrimPrefix(string(kv.Key), "/bluegreen/"+n.name+"/")
			keys[field] = string(kv.Value)
			if field == schema.FieldTrial {
				lease = kv.Lease
			}
		}
		if out[n.name], err = wantOf(n.name, keys, lease); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// wantOf is what a name with these keys answers.
func wantOf(name string, keys map[string]string, trialLease int64) (want, error) {
	var wt want
	c, err := schema.ParseColour(keys[schema.FieldActive])
	if err != nil {
		return wt, fmt.Errorf("%s: active: %v", name, err)
	}
	wt.colour = c
	if v, ok := keys[schema.FieldCanary]; ok {
		if wt.share, err = schema.ParseCanary(v); err != nil {
			return wt, fmt.Errorf("%s: canary: %v", name, err)
		}
	}
	if v, ok := keys[schema.FieldTrial]; ok {
		tr, err := schema.ParseTrial(v, trialLease, 3600)
		if err != nil {
			return wt, fmt.Errorf("%s: trial: %v", name, err)
		}
		wt.colour, wt.trial = tr.Colour, true
		if tr.HasCanary {
			wt.share = tr.Canary
		}
	}
	return wt, nil
}

// shareSlack is how far the networks sent to the other colour may be from
// the share: the split is a hash of each network, so 100 networks fall
// around the share, not on it.
const shareSlack = 20

// matches says how s differs from w; "" when it does not.
func (w want) matches(s seen) string {
	other := s.colours[w.colour.Other()]
	switch {
	case len(s.odd) > 0:
		return "answers of no colour"
	case w.share == 0 && other > 0:
		return fmt.Sprintf("%d networks on %s", other, w.colour.Other())
	case w.share == 100 && s.colours[w.colour] > 0:
		return fmt.Sprintf("%d networks still on %s", s.colours[w.colour], w.colour)
	case w.share > 0 && w.share < 100 && (other < int(w.share)-shareSlack || other > int(w.share)+shareSlack):
		return fmt.Sprintf("%d networks on %s, want about %d", other, w.colour.Other(), w.share)
	}
	return ""
}

// converge waits up to within for every server to answer every name as
// etcd says; it returns what differs at the deadline.
func (w *world) converge(within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		m, err := w.model()
		var diffs []string
		if err == nil {
			diffs = w.differences(m, w.askAll())
			if len(diffs) == 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			if err != nil {
				return fmt.Errorf("etcd: %v", err)
			}
			return fmt.Errorf("after %v: %s", within, strings.Join(diffs, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// differences lists each server and name whose answers are not m's.
func (w *world) differences(m map[string]want, got map[string]map[string]seen) []string {
	var diffs []string
	for _, server := range w.servers {
		for _, n := range tortureNames {
			if d := m[n.name].matches(got[server][n.name]); d != "" {
				staleness := "TXT state not stale"
				if stale(server, n.name) {
					staleness = "TXT state says stale"
				}
				diffs = append(diffs, fmt.Sprintf("%s %s answers %s, etcd says %s: %s; %s", server, n.name, got[server][n.name], m[n.name], d, staleness))
			}
		}
	}
	return diffs
}

// everyoneOn checks I1: after a switch or rollback to c, etcd holds c for
// name with no share elsewhere, and every network on every server gets c.
func (w *world) everyoneOn(name string, c schema.Colour) error {
	m, err := w.model()
	if err != nil {
		return err
	}
	if got := m[name]; got != (want{colour: c}) {
		return fmt.Errorf("I1: after the command etcd holds %s for %s, want every client network on %s", got, name, c)
	}
	if err := w.converge(5 * time.Second); err != nil {
		return fmt.Errorf("I1: %s not on %s everywhere: %v", name, c, err)
	}
	return nil
}

var (
	stepLine     = regexp.MustCompile(`step (\d+)/(\d+): (\d+) % of clients on`)
	analysisLine = regexp.MustCompile(`analysis(?: before the first step)?: (ok|failed)`)
)

// releaseHonest checks I2 on what a release printed and its exit code:
// no step raises the share while the latest analysis failed, and exit 0
// only after a passing last analysis and a done.
func releaseHonest(out string, code int) error {
	share, failing, analysed := 0, false, false
	for _, line := range strings.Split(out, "\n") {
		if m := analysisLine.FindStringSubmatch(line); m != nil {
			failing, analysed = m[1] == "failed", true
		}
		if m := stepLine.FindStringSubmatch(line); m != nil {
			s, _ := strconv.Atoi(m[3])
			if s > share && failing {
				return fmt.Errorf("I2: %q raises the share after a failed analysis", strings.TrimSpace(line))
			}
			share = s
		}
	}
	if code == 0 && (failing || !analysed || !strings.Contains(out, "done:")) {
		return fmt.Errorf("I2: exit 0, but the last analysis did not pass (analysed %v, last failed %v)", analysed, failing)
	}
	return nil
}

// statusAgrees checks I6: what bgctl status says each server answers (and
// what it says etcd makes of each name) is what the servers answer.
func (w *world) statusAgrees() error {
	r := w.bgctl("status", "-o", "json", "--dns", strings.Join(w.servers, ","))
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout.String()), &st); err != nil {
		return fmt.Errorf("I6: bgctl status -o json: %v in %s", err, r)
	}
	m, err := w.model()
	if err != nil {
		return err
	}
	got := w.askAll()
	for _, s := range st {
		wt, ok := m[s.Name]
		if !ok {
			continue
		}
		if c, sure := wt.majority(); sure && s.Answers != c.String() {
			return fmt.Errorf("I6: bgctl status says %s answers %s; etcd says %s", s.Name, s.Answers, wt)
		}
		if wt.share > 50-shareSlack && wt.share < 50+shareSlack {
			continue // which colour most of 100 networks get is the hash's to say
		}
		for _, sv := range s.Servers {
			g := got[sv.Server][s.Name]
			if c, sure := majorityOf(g); sure && sv.Answers != c.String() {
				return fmt.Errorf("I6: bgctl status says %s answers %s for %s; it answers %s", sv.Server, sv.Answers, s.Name, g)
			}
		}
	}
	return nil
}

// majorityOf is the colour most networks got; ok is false on a tie or
// when some got no colour.
func majorityOf(s seen) (schema.Colour, bool) {
	b, g := s.colours[schema.Blue], s.colours[schema.Green]
	if len(s.odd) > 0 || b == g {
		return 0, false
	}
	if b > g {
		return schema.Blue, true
	}
	return schema.Green, true
}

// historyCount is how many history entries etcd holds for name, -1 when
// it cannot say: I5 wants a bgctl write never to delete what it keeps
// (up to 100 entries a name).
func (w *world) historyCount(name string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := w.client.Get(ctx, "/bluegreen-history/"+name+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil {
		return -1
	}
	return int(resp.Count)
}

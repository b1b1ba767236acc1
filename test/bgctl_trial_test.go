package test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// A trial flip is answered while its lease lives; unconfirmed, etcd drops
// the lease when it runs out and the server goes back to the old colour, and
// to the old ttl, by itself. Confirmed, it stays, with the old ttl back.
func TestBgctlTrialRevertsOnLeaseExpiry(t *testing.T) {
	etcd := startEtcd(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	etcd.putName(t, "app.example.org", "blue", "10.0.1.1", "10.0.2.1")
	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--ttl", "2")
	waitFor(t, "ttl 2", 10*time.Second, func() bool { _, ttl := aTTL(t, udp, "app.example.org"); return ttl == 2 })

	watch := etcd.client.Watch(context.Background(), "/bluegreen/app.example.org/trial")
	r := mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green", "--confirm-within", "2s", "--lower-ttl", "1", "--dns", udp)
	if a, ttl := aTTL(t, udp, "app.example.org"); a != "10.0.2.1" || ttl != 1 {
		t.Fatalf("during the trial: %s with ttl %d, want 10.0.2.1 with ttl 1\n%s", a, ttl, r)
	}
	txt := stateTXT(t, udp, "app.example.org")
	until := regexp.MustCompile(`"trial=green until ([^"]+)"`).FindStringSubmatch(txt)
	if until == nil {
		t.Fatalf("TXT state during the trial: %s", txt)
	}
	deadline, err := time.Parse(time.RFC3339, until[1])
	if err != nil {
		t.Fatal(err)
	}
	if got := metricValue(t, "coredns_bluegreen_trial_until_timestamp_seconds", "name", "app.example.org", "colour", "green"); got != float64(deadline.Unix()) {
		t.Errorf("trial_until_timestamp_seconds = %v, want %d", got, deadline.Unix())
	}

	// Nobody confirms. etcd deletes the trial key when the lease runs out.
	var deleted time.Time
	for deleted.IsZero() {
		resp := <-watch
		for _, ev := range resp.Events {
			if ev.Type == clientv3.EventTypeDelete {
				deleted = time.Now()
			}
		}
	}
	waitFor(t, "blue back", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a == "10.0.1.1" && ttl == 2 })
	back := time.Now()
	t.Logf("trial reverted in DNS %v after the test's watch saw etcd delete the trial key; %v after the until the trial states (%s), the time bgctl says it is over by",
		back.Sub(deleted).Round(time.Microsecond), back.Sub(deadline).Round(time.Millisecond), until[1])
	if got := metricValue(t, "coredns_bluegreen_trial_until_timestamp_seconds", "name", "app.example.org"); got != 0 {
		t.Errorf("trial_until_timestamp_seconds after the revert = %v, want no series", got)
	}
	if st := parseJSON[statusJSON](t, mustBgctl(t, etcd.endpoint, "status", "-o", "json")); st[0].Trial != "" || st[0].Active != "blue" || st[0].Answers != "blue" {
		t.Errorf("status after the revert: %+v", st[0])
	}
	// The trial is over: undo has nothing of it to put back, and says so
	// rather than undo the change before it.
	if r := bgctl(t, etcd.endpoint, "undo", "app.example.org"); r.code != 1 || !strings.Contains(r.stderr.String(), "was a trial, which has ended") {
		t.Errorf("undo after a trial reverted: %s", r)
	}

	// Confirmed in time: green stays, with its own ttl.
	mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green", "--confirm-within", "1m", "--lower-ttl", "1")
	r = mustBgctl(t, etcd.endpoint, "confirm", "app.example.org")
	if !strings.Contains(r.stdout.String(), "app.example.org: green confirmed, no longer a trial (revision") || !strings.Contains(r.stdout.String(), "ttl 1 -> 2") {
		t.Errorf("confirm: %s", r)
	}
	waitFor(t, "green confirmed with ttl 2", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a == "10.0.2.1" && ttl == 2 })
	if st := parseJSON[statusJSON](t, mustBgctl(t, etcd.endpoint, "status", "-o", "json")); st[0].Trial != "" || st[0].Active != "green" {
		t.Errorf("status after confirm: %+v", st[0])
	}
}

// TTL-aware cutover: the ttl is lowered first, the flip waits for the old
// TTL to pass, answers carry the lowered TTL while the trial lasts, and the
// old ttl comes back on confirm and on rollback. A change by someone else
// while bgctl waits stops the switch, and the lowered ttl goes with it.
func TestBgctlLowerTTL(t *testing.T) {
	etcd := startEtcd(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ttl 5"))
	etcd.putName(t, "app.example.org", "blue", "10.0.1.1", "10.0.2.1")
	mustBgctl(t, etcd.endpoint, "set", "app.example.org", "--ttl", "3")

	start := time.Now()
	done := make(chan ran)
	go func() {
		done <- bgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "green", "--confirm-within", "1m", "--lower-ttl", "1")
	}()
	lowered := waitFor(t, "blue with ttl 1", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a == "10.0.1.1" && ttl == 1 })
	flipped := waitFor(t, "green with ttl 1", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a == "10.0.2.1" && ttl == 1 })
	r := <-done
	if r.code != 0 {
		t.Fatalf("switch --lower-ttl: %s", r)
	}
	t.Logf("TTL phases: ttl 1 answered %v after the start, green %v later (old ttl 3 s)\n%s", lowered.Round(time.Millisecond), flipped.Round(time.Millisecond), r.stdout)
	if since := time.Since(start); since < 3*time.Second {
		t.Errorf("the flip came %v after the start: before the old TTL of 3 s had passed", since)
	}
	for _, want := range []string{"app.example.org: ttl 3 -> 1 until the trial ends (revision", "waiting 3s, until", "for answers with the old ttl to expire from caches",
		"app.example.org: blue -> green on trial until", "blue drained from caches by", "TTL 1 s"} {
		if !strings.Contains(r.stdout.String(), want) {
			t.Errorf("switch --lower-ttl output lacks %q", want)
		}
	}
	mustBgctl(t, etcd.endpoint, "confirm", "app.example.org")
	waitFor(t, "green with ttl 3", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a == "10.0.2.1" && ttl == 3 })

	// Roll back during a trial: the old colour and ttl, at once.
	mustBgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "blue", "--confirm-within", "1m", "--lower-ttl", "1")
	r = mustBgctl(t, etcd.endpoint, "rollback", "app.example.org")
	if !strings.Contains(r.stdout.String(), "app.example.org: trial of blue ended, back to green (revision") || !strings.Contains(r.stdout.String(), "blue drained from caches by") {
		t.Errorf("rollback of a trial: %s", r)
	}
	waitFor(t, "green with ttl 3 after the rollback", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a == "10.0.2.1" && ttl == 3 })

	// Someone else changes the name while bgctl waits: the switch stops,
	// and the lowered ttl goes.
	go func() {
		done <- bgctl(t, etcd.endpoint, "switch", "app.example.org", "--to", "blue", "--confirm-within", "1m", "--lower-ttl", "1")
	}()
	waitFor(t, "ttl 1", 10*time.Second, func() bool { _, ttl := aTTL(t, udp, "app.example.org"); return ttl == 1 })
	etcd.put(t, "/bluegreen/app.example.org/canary", "10")
	r = <-done
	if r.code != 1 || !strings.Contains(r.stderr.String(), "app.example.org changed in etcd while bgctl waited") || !strings.Contains(r.stderr.String(), "the trial's lease was revoked") {
		t.Errorf("a change while bgctl waited: %s", r)
	}
	waitFor(t, "green with ttl 3 after the switch gave up", 10*time.Second, func() bool { a, ttl := aTTL(t, udp, "app.example.org"); return a == "10.0.2.1" && ttl == 3 })
}

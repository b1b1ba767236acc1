package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// These tests replace etcd's history under a running plugin, as operators
// do: a restore from a backup, a wiped data directory, another cluster
// behind the same address; and make a watch stop delivering while it stays
// open. Each time the answers must catch up with what etcd holds.

// TestRestoreFromBackup restores etcd from a backup taken before later
// changes, with etcd's own snapshot save and restore: its revision goes
// back, and what was put after the backup is gone.
func TestRestoreFromBackup(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	logs := captureLog(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, ""))
	backup := etcd.saveSnapshot(t)

	// After the backup: a flip and 20 more puts.
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	for i := range 10 {
		etcd.put(t, fmt.Sprintf("/bluegreen/late%d.example.org/blue", i), "10.0.3.1")
		etcd.put(t, fmt.Sprintf("/bluegreen/late%d.example.org/active", i), "blue")
	}
	waitFor(t, "the last put before the restore", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "late9.example.org", dns.TypeA)), []string{"A 10.0.3.1"})
	})
	before := metricValue(t, "coredns_bluegreen_revision", "prefix", "/bluegreen/")
	relists := metricValue(t, "coredns_bluegreen_relists_total", "reason", "revision_went_back")
	l := startLoad(t, 2, udp, "app.example.org", []string{"A 10.0.1.100"}, []string{"A 10.0.2.100"}, []string{"A 10.0.1.200"})

	etcd.restore(t, backup)
	rev := etcd.put(t, "/bluegreen/app.example.org/blue", "10.0.1.200") // the restored app is blue
	took := waitFor(t, "the first put after the restore", 20*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.1.200"})
	})
	t.Logf("restored etcd went back from revision %v to %d; the first put after it answered %v after the put returned (%v after etcd was back)",
		before, rev, took, time.Since(etcd.started).Round(time.Millisecond))

	if m := query(t, "udp", udp, "late3.example.org", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Errorf("a name put after the backup: %s %v, want NXDOMAIN", dns.RcodeToString[m.Rcode], m.Answer)
	}
	if got := metricValue(t, "coredns_bluegreen_relists_total", "reason", "revision_went_back") - relists; got != 1 {
		t.Errorf("lists for a revision gone back counted %v, want 1", got)
	}
	want := fmt.Sprintf("behind revision %v that the answers come from: restored from a backup, or its data wiped?: listing /bluegreen/ again", before)
	if !strings.Contains(logs.String(), "[ERROR] plugin/bluegreen: etcd at [") || !strings.Contains(logs.String(), want) {
		t.Errorf("no error log naming both revisions, %q", want)
	}
	if txt := stateTXT(t, udp, "app.example.org"); strings.Contains(txt, "stale") || !strings.Contains(txt, fmt.Sprintf(`"revision=%d"`, rev)) {
		t.Errorf("TXT state after the restore: %s", txt)
	}
	l.stopAndCheck(t, "during the restore")
}

// TestWipedEtcd starts etcd again with an empty data directory and new
// names: the old ones go, the new ones come.
func TestWipedEtcd(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	etcd.putName(t, "old.example.org", "blue", "10.0.3.100", "10.0.4.100")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, ""))
	relists := metricValue(t, "coredns_bluegreen_relists_total", "reason", "revision_went_back")

	etcd.wipe(t)
	etcd.put(t, "/bluegreen/new.example.org/green", "10.0.6.100")
	etcd.put(t, "/bluegreen/new.example.org/active", "green")
	took := waitFor(t, "a name put after the wipe", 20*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "new.example.org", dns.TypeA)), []string{"A 10.0.6.100"})
	})
	t.Logf("a name put after the wipe answered %v after the put returned", took)
	for _, name := range []string{"app.example.org", "old.example.org"} {
		if m := query(t, "udp", udp, name, dns.TypeA); m.Rcode != dns.RcodeNameError {
			t.Errorf("%s, gone with the wipe: %s %v, want NXDOMAIN", name, dns.RcodeToString[m.Rcode], m.Answer)
		}
	}
	if got := metricValue(t, "coredns_bluegreen_relists_total", "reason", "revision_went_back") - relists; got != 1 {
		t.Errorf("lists for a revision gone back counted %v, want 1", got)
	}
}

// TestHistoryReplacedWhileCutOff replaces etcd's data while the plugin is
// cut off from it, and puts enough that the new revision passes the old
// one: the revision no longer tells, what etcd holds does. With the same
// member the cluster id is the same too; another member is another cluster.
func TestHistoryReplacedWhileCutOff(t *testing.T) {
	for _, tc := range []struct {
		name, reason string
		sameMember   bool
	}{
		{"wiped, same member", "diverged", true},
		{"another cluster at the same address", "cluster_changed", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			etcd := startEtcd(t)
			etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
			etcd.put(t, "/bluegreen/app.example.org/active", "green")
			p := startProxy(t, etcd.addr)
			_, udp, _ := startCoreDNS(t, corefile("http://"+p.addr, ""))
			if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.2.100"}) {
				t.Fatalf("before: %v", got)
			}
			old := metricValue(t, "coredns_bluegreen_revision", "prefix", "/bluegreen/")
			relists := metricValue(t, "coredns_bluegreen_relists_total", "reason", tc.reason)

			p.cut()
			if !tc.sameMember {
				etcd.peer = "127.0.0.1:" + freePort(t)
			}
			etcd.wipe(t)
			// The new history changes app at revisions the plugin has
			// seen, then passes them with keys of another prefix.
			etcd.putName(t, "app.example.org", "blue", "10.0.7.100", "10.0.8.100")
			var rev int64
			for i := 0; rev <= int64(old)+5; i++ {
				rev = etcd.put(t, "/other/filler", fmt.Sprint(i))
			}
			p.restore(t)
			back := time.Now()
			waitFor(t, "the new history", 20*time.Second, func() bool {
				return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.7.100"})
			})
			t.Logf("old revision %v, new %d: the new history answered %v after the partition healed", old, rev, time.Since(back).Round(time.Millisecond))
			if got := metricValue(t, "coredns_bluegreen_relists_total", "reason", tc.reason) - relists; got != 1 {
				t.Errorf("lists for %s counted %v, want 1", tc.reason, got)
			}
		})
	}
}

// TestStalledWatch makes the plugin's watch deliver nothing while its
// stream stays open and etcd answers every other request: a flip must
// still be answered, once the heartbeat finds the watch behind.
func TestStalledWatch(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	p := startStallProxy(t, etcd.addr)
	logs := captureLog(t)
	_, udp, _ := startCoreDNS(t, corefile("http://"+p.addr, ""))
	blueA, greenA := []string{"A 10.0.1.100"}, []string{"A 10.0.2.100"}
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	waitFor(t, "a flip through the watch", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), greenA)
	})
	relists := metricValue(t, "coredns_bluegreen_relists_total", "reason", "watch_stalled")
	l := startLoad(t, 2, udp, "app.example.org", blueA, greenA)

	if n := p.stallWatches(); n != 1 {
		t.Fatalf("%d watch streams to stall, want 1", n)
	}
	etcd.put(t, "/bluegreen/app.example.org/active", "blue")
	took := waitFor(t, "a flip made while the watch is stalled", 30*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), blueA)
	})
	t.Logf("a flip made while the watch delivered nothing answered %v after the put returned", took)
	if got := metricValue(t, "coredns_bluegreen_relists_total", "reason", "watch_stalled") - relists; got != 1 {
		t.Errorf("lists for a stalled watch counted %v, want 1", got)
	}
	for _, want := range []string{"has delivered nothing past revision", "are stale since"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks %q", want)
		}
	}

	// The new watch delivers.
	etcd.put(t, "/bluegreen/app.example.org/active", "green")
	took = waitFor(t, "a flip through the new watch", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), greenA)
	})
	t.Logf("then a flip answered %v after the put returned", took)
	if txt := stateTXT(t, udp, "app.example.org"); strings.Contains(txt, "stale") {
		t.Errorf("TXT state after the new watch: %s", txt)
	}
	l.stopAndCheck(t, "while the watch stalled")
}

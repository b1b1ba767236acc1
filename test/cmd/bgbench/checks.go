package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// checkCase is one CoreDNS serving the checks benchmark's names: without a
// check key, or with one on every name and these Corefile options.
type checkCase struct {
	label   string
	prefix  string
	options string
}

// checkRow is what one case measured once its checks had settled.
type checkRow struct {
	checkCase
	goroutines float64
	heap       float64   // bytes in use after a GC
	idleCPU    float64   // share of one core with no queries, over checkIdle
	probeRate  float64   // probes a second meanwhile
	startRates []float64 // probes each second from the start until the checks settled
	settled    time.Duration
	load       []latencies // one per round at o.checkRate
	loadProbes []float64   // probes a second during each of those rounds
	steal      []float64   // the share of the machine's CPU time stolen by the hypervisor in each round
}

// checkIdle is how long each case is watched with no queries: the default
// check_interval, in which every settled address is probed once.
const checkIdle = 30 * time.Second

// checks serves n names with two addresses each, blue 127.1.x.y and green
// 127.2.x.y, from one CoreDNS process per case: unchecked, then with a tcp
// check on every name (2n addresses probed), at the default interval and
// at 10s. A child process listens on the blue addresses; the green ones are
// a closed port, so half the addresses are down.
//
// The cases' processes run side by side, but only one at a time: the
// others are stopped (SIGSTOP), so that their probes do not load the one
// measured. Their load rounds take turns, so that the machine's noise
// falls on all alike.
func checks(client *clientv3.Client, endpoint, dir string, o options) ([]checkRow, error) {
	n := o.checkNames
	stopBackends, port, err := startBackends(n)
	if err != nil {
		return nil, err
	}
	defer stopBackends()
	cases := []checkCase{
		{"unchecked", "/unchecked/", ""},
		{"checked, default interval (30s)", "/checked/", ""},
		{"checked, check_interval 10s", "/checked/", "check_interval 10s"},
	}
	for _, c := range cases[:2] {
		check := ""
		if c.prefix == "/checked/" {
			check = "tcp://:" + port
		}
		if err := seedPrefix(client, c.prefix, n, blueBackend, greenBackend, check); err != nil {
			return nil, err
		}
	}
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("n%d.example.org.", i)
	}
	rows := make([]checkRow, len(cases))
	servers := make([]*checkServer, len(cases))
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.stop()
			}
		}
	}()
	for i, c := range cases {
		step("checks: %s", c.label)
		rows[i].checkCase = c
		if servers[i], err = startCheckServer(c, endpoint, dir, o, n); err != nil {
			return nil, fmt.Errorf("checks, %s: %w", c.label, err)
		}
		if err := servers[i].idle(&rows[i], n); err != nil {
			return nil, fmt.Errorf("checks, %s: %w", c.label, err)
		}
		servers[i].pause()
	}
	for round := range o.checkRounds {
		for j := range cases {
			i := (round + j) % len(cases) // each round starts with the next case
			s, row := servers[i], &rows[i]
			step("checks: round %d/%d, %s", round+1, o.checkRounds, row.label)
			if err := s.resume(row.probeRate); err != nil {
				return nil, fmt.Errorf("checks, %s: %w", row.label, err)
			}
			probes, start := s.probes(), time.Now()
			total, steal := machineTicks()
			l, err := paced("127.0.0.1:"+s.dns, names, o.checkRate, o.duration)
			if err != nil {
				return nil, err
			}
			total2, steal2 := machineTicks()
			row.steal = append(row.steal, (steal2-steal)/max(total2-total, 1))
			row.load = append(row.load, l)
			row.loadProbes = append(row.loadProbes, (s.probes()-probes)/time.Since(start).Seconds())
			s.pause()
		}
	}
	return rows, nil
}

// checkServer is the CoreDNS process of one case, with ports of its own.
type checkServer struct {
	dns, metrics, pprof string
	pid                 int
	end                 func()
	paused              bool
}

func startCheckServer(c checkCase, endpoint, dir string, o options, names int) (*checkServer, error) {
	s := &checkServer{dns: freePort(), metrics: freePort(), pprof: freePort()}
	corefile := filepath.Join(dir, "Corefile.checks."+s.dns)
	conf := fmt.Sprintf("example.org:%s {\n    bind 127.0.0.1\n    bluegreen {\n        endpoint %s\n        prefix %s\n        %s\n    }\n}\n"+
		"metrics.invalid:%s {\n    bind 127.0.0.1\n    prometheus 127.0.0.1:%s\n    pprof 127.0.0.1:%s\n}\n",
		s.dns, endpoint, c.prefix, c.options, freePort(), s.metrics, s.pprof)
	if err := os.WriteFile(corefile, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	var err error
	if s.end, s.pid, err = startCoreDNS(o.coredns, corefile, s.metrics, names); err != nil {
		return nil, err
	}
	return s, nil
}

// idle measures s with no queries into row: for a checked case, how its
// first probes spread until they settled (every green address down), then,
// an interval later, its CPU, probes, goroutines and heap.
func (s *checkServer) idle(row *checkRow, names int) error {
	if row.prefix == "/checked/" {
		begun := time.Now()
		deadline := begun.Add(3 * time.Minute)
		probes, last := max(s.probes(), 0), begun
		for metric(s.metrics, "coredns_bluegreen_healthy_addresses") != float64(names) {
			if time.Now().After(deadline) {
				return fmt.Errorf("checks had not settled after 3 minutes: %v healthy addresses, want %d", metric(s.metrics, "coredns_bluegreen_healthy_addresses"), names)
			}
			time.Sleep(time.Second)
			now := max(s.probes(), 0)
			row.startRates = append(row.startRates, (now-probes)/time.Since(last).Seconds())
			probes, last = now, time.Now()
		}
		row.settled = time.Since(begun)
		time.Sleep(checkIdle) // and past the quick probes of the last to settle
	}

	// Two scrapes only: with a series per checked name, a scrape costs
	// CoreDNS CPU of its own.
	probes := s.probes()
	cpu, start := cpuSeconds(s.pid), time.Now()
	time.Sleep(checkIdle)
	elapsed := time.Since(start).Seconds()
	row.idleCPU = (cpuSeconds(s.pid) - cpu) / elapsed
	row.probeRate = max(s.probes()-probes, 0) / elapsed
	row.goroutines = metric(s.metrics, "go_goroutines")
	var err error
	row.heap, err = heapAfterGC(s.pprof)
	return err
}

// probes is how many probes s has made.
func (s *checkServer) probes() float64 {
	return metric(s.metrics, "coredns_bluegreen_check_duration_seconds_count")
}

func (s *checkServer) pause() {
	syscall.Kill(s.pid, syscall.SIGSTOP)
	s.paused = true
}

// resume continues s, and waits until it has run the probes it missed
// while it was stopped: until a second's probes are back to about its rate
// with no queries.
func (s *checkServer) resume(rate float64) error {
	syscall.Kill(s.pid, syscall.SIGCONT)
	s.paused = false
	deadline := time.Now().Add(time.Minute)
	for last := s.probes(); ; {
		time.Sleep(time.Second)
		now := s.probes()
		if now-last <= 1.5*rate+1 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still catching up on missed probes a minute after it resumed: %.0f in the last second", now-last)
		}
		last = now
	}
}

// stop ends s; a stopped process is continued first, or it could not act on
// the signal to end.
func (s *checkServer) stop() {
	if s.paused {
		syscall.Kill(s.pid, syscall.SIGCONT)
	}
	s.end()
}

// listenOn is the child process that plays the backends: it accepts TCP
// connections on port of 127.1.x.y, the first n of them, until it is
// stopped. A process of its own, so that its work is neither CoreDNS's nor
// the load generator's.
func listenOn(n int, port string) error {
	for i := range n {
		l, err := net.Listen("tcp", net.JoinHostPort(blueBackend(i), port))
		if err != nil {
			return fmt.Errorf("listening on %d addresses (raise ulimit -n if it says too many open files): %w", n, err)
		}
		go func() {
			for {
				conn, err := l.Accept()
				if err != nil {
					return
				}
				conn.Close()
			}
		}()
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	return nil
}

// startBackends runs listenOn in a child process, and waits until the last
// address accepts. The backends stand for other machines: they run as
// SCHED_IDLE, only on CPU that CoreDNS and the load generator leave idle.
func startBackends(n int) (stop func(), port string, err error) {
	port = freePort()
	stop, _, err = startChild("chrt", "--idle", "0", os.Args[0], "listen", strconv.Itoa(n), port)
	if err != nil {
		return nil, "", err
	}
	last := net.JoinHostPort(blueBackend(n-1), port)
	for deadline := time.Now().Add(time.Minute); ; {
		conn, err := net.Dial("tcp", last)
		if err == nil {
			conn.Close()
			return stop, port, nil
		}
		if time.Now().After(deadline) {
			stop()
			return nil, "", fmt.Errorf("the backends do not accept on %s: %w", last, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The checks benchmark's addresses of name i: blue 127.1.x.y, which the
// backends listen on, and green 127.2.x.y, on a closed port.
func blueBackend(i int) string  { return address(127, 1<<16|i) }
func greenBackend(i int) string { return address(127, 2<<16|i) }

var heapAllocLine = regexp.MustCompile(`# HeapAlloc = ([0-9]+)`)

// heapAfterGC is CoreDNS's heap in use right after a garbage collection,
// from the pprof plugin.
func heapAfterGC(pprofPort string) (float64, error) {
	resp, err := http.Get("http://127.0.0.1:" + pprofPort + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	m := heapAllocLine.FindSubmatch(body)
	if m == nil {
		return 0, fmt.Errorf("no HeapAlloc in CoreDNS's heap profile")
	}
	return strconv.ParseFloat(string(m[1]), 64)
}

func (r *report) checksMarkdown(w func(string, ...any)) {
	if len(r.checks) < 2 {
		return
	}
	o := r.opts
	w("## Health checks at scale\n\n")
	w("%d names, each with a blue address 127.1.x.y and a green one 127.2.x.y, served by one CoreDNS process per case with nothing else in it: without a `check` key, then with `check tcp://:PORT` on every name, %d addresses probed: the green half on a closed port (down), the blue half on a port that a child process of bgbench listens on (up); that process stands for other machines, so it runs only on CPU nothing else wants (`chrt --idle`). ", o.checkNames, 2*o.checkNames)
	w("The processes run side by side, but only one at a time: the others are stopped with SIGSTOP, so that their probes do not load the one measured. ")
	w("From its start until its checks have settled (every green address down), the probes each process made each second; an interval later, its CPU over %v with no queries (one default interval, in which every settled address is probed once), its goroutines and its heap after a GC. ", checkIdle)
	w("Then %d rounds of %v at %d A queries a second over the names, from a paced Go client (dnsperf gives no percentiles; a latency ends when the kernel receives the answer, not when the client, which shares the cores, reads it), the cases taking turns in each round, each round starting with the next case; a process resumed from SIGSTOP first runs the probes it missed, and its round starts once its probes are back to their rate. ", o.checkRounds, o.duration, o.checkRate)
	w("On loopback, CoreDNS's kernel also does the backends' half of every TCP handshake, which a remote backend does itself.\n\n")
	w("|")
	for _, row := range r.checks {
		w(" | %s", row.label)
	}
	w(" |\n|---|")
	for range r.checks {
		w("---|")
	}
	w("\n")
	line := func(what string, f func(checkRow) string) {
		w("| %s", what)
		for _, row := range r.checks {
			w(" | %s", f(row))
		}
		w(" |\n")
	}
	base := r.checks[0]
	line("goroutines", func(row checkRow) string { return fmt.Sprintf("%.0f", row.goroutines) })
	line("heap after GC", func(row checkRow) string { return fmt.Sprintf("%.1f MiB", row.heap/(1<<20)) })
	line("CPU with no queries", func(row checkRow) string { return fmt.Sprintf("%.1f %% of a core", 100*row.idleCPU) })
	line("probes a second with no queries", func(row checkRow) string { return fmt.Sprintf("%.0f", max(row.probeRate, 0)) })
	line("probes in the busiest second from the start to settled", func(row checkRow) string {
		if len(row.startRates) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.0f of %d addresses; settled in %v", slices.Max(row.startRates), 2*o.checkNames, row.settled.Round(time.Second))
	})
	line("query latency p50 (median of rounds)", func(row checkRow) string {
		return rnd(medianDuration(row.load, func(l latencies) time.Duration { return l.p50 })).String()
	})
	line("query latency p99 (median of rounds)", func(row checkRow) string {
		return rnd(medianDuration(row.load, func(l latencies) time.Duration { return l.p99 })).String()
	})
	line("p99 over the unchecked p99 of the same round (median of rounds)", func(row checkRow) string { return fmt.Sprintf("%.2f", p99Ratio(row, base)) })
	line("query latency max (all rounds)", func(row checkRow) string {
		var m time.Duration
		for _, l := range row.load {
			m = max(m, l.max)
		}
		return rnd(m).String()
	})
	line("p99 of each round", func(row checkRow) string {
		var v []string
		for _, l := range row.load {
			v = append(v, rnd(l.p99).String())
		}
		return strings.Join(v, ", ")
	})
	// A virtual machine's host may run other guests on its cores: the
	// time it takes from this one shows as steal, and a round with much
	// of it has a noisy p99 whatever the case.
	line("CPU time the hypervisor took from the machine (steal) in each round", func(row checkRow) string {
		var v []string
		for _, s := range row.steal {
			v = append(v, fmt.Sprintf("%.0f %%", 100*s))
		}
		return strings.Join(v, ", ")
	})
	line("probes a second under load (median of rounds)", func(row checkRow) string { return fmt.Sprintf("%.0f", median(row.loadProbes)) })
	line("queries sent, lost, failed", func(row checkRow) string {
		sent, lost, failed := 0, 0, 0
		for _, l := range row.load {
			sent, lost, failed = sent+l.sent, lost+l.lost, failed+l.failed
		}
		return fmt.Sprintf("%d, %d, %d", sent, lost, failed)
	})
	c := r.checks[1]
	w("\nAt the default interval, against the targets: %+.0f goroutines (at most 64 probe workers and their scheduler), %+.1f MB of heap (at most 50), %.1f %% of a core with no queries (at most 10 %%), query p99 %.2f times the unchecked one (at most 1.5).\n\n",
		c.goroutines-base.goroutines, (c.heap-base.heap)/1e6, 100*c.idleCPU, p99Ratio(c, base))
}

// p99Ratio compares row's query p99 with base's round by round, each round's
// cases minutes apart at most: the median of the rounds' ratios.
func p99Ratio(row, base checkRow) float64 {
	v := make([]float64, len(row.load))
	for i := range v {
		v[i] = float64(row.load[i].p99) / float64(base.load[i].p99)
	}
	return median(v)
}

func medianDuration(runs []latencies, f func(latencies) time.Duration) time.Duration {
	v := make([]float64, len(runs))
	for i, l := range runs {
		v[i] = float64(f(l))
	}
	return time.Duration(median(v))
}

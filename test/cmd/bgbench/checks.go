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
}

// checkIdle is how long each case is watched with no queries: the default
// check_interval, in which every settled address is probed once.
const checkIdle = 30 * time.Second

// checks serves n names with two addresses each, blue 127.1.x.y and green
// 127.2.x.y, from one CoreDNS process per case: unchecked, then with a tcp
// check on every name (2n addresses probed), at the default interval and
// at 10s. A child process listens on the blue addresses; the green ones are
// a closed port, so half the addresses are down.
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
	var rows []checkRow
	for _, c := range cases {
		step("checks: %s", c.label)
		row, err := measureCase(c, endpoint, dir, names, o)
		if err != nil {
			return nil, fmt.Errorf("checks, %s: %w", c.label, err)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func measureCase(c checkCase, endpoint, dir string, names []string, o options) (checkRow, error) {
	row := checkRow{checkCase: c}
	dnsPort := freePort()
	corefile := filepath.Join(dir, "Corefile.checks")
	conf := fmt.Sprintf("example.org:%s {\n    bind 127.0.0.1\n    bluegreen {\n        endpoint %s\n        prefix %s\n        %s\n    }\n}\n"+
		"metrics.invalid:%s {\n    bind 127.0.0.1\n    prometheus 127.0.0.1:%s\n    pprof 127.0.0.1:%s\n}\n",
		dnsPort, endpoint, c.prefix, c.options, freePort(), metricsPort, pprofPort)
	if err := os.WriteFile(corefile, []byte(conf), 0o644); err != nil {
		return row, err
	}
	stop, pid, err := startCoreDNS(o.coredns, corefile, dnsPort, len(names))
	if err != nil {
		return row, err
	}
	defer stop()
	if c.prefix == "/checked/" {
		// Settled once every green address is down. Meanwhile, the probes
		// made each second show how their first runs are spread.
		begun := time.Now()
		deadline := begun.Add(3 * time.Minute)
		probes, last := max(metric("coredns_bluegreen_check_duration_seconds_count"), 0), begun
		for metric("coredns_bluegreen_healthy_addresses") != float64(len(names)) {
			if time.Now().After(deadline) {
				return row, fmt.Errorf("checks had not settled after 3 minutes: %v healthy addresses, want %d", metric("coredns_bluegreen_healthy_addresses"), len(names))
			}
			time.Sleep(time.Second)
			now := max(metric("coredns_bluegreen_check_duration_seconds_count"), 0)
			row.startRates = append(row.startRates, (now-probes)/time.Since(last).Seconds())
			probes, last = now, time.Now()
		}
		row.settled = time.Since(begun)
		time.Sleep(checkIdle) // and past the quick probes of the last to settle
	}

	// Two scrapes only: with a series per checked name, a scrape costs
	// CoreDNS CPU of its own.
	probes := metric("coredns_bluegreen_check_duration_seconds_count")
	cpu, start := cpuSeconds(pid), time.Now()
	time.Sleep(checkIdle)
	elapsed := time.Since(start).Seconds()
	row.idleCPU = (cpuSeconds(pid) - cpu) / elapsed
	row.probeRate = (metric("coredns_bluegreen_check_duration_seconds_count") - probes) / elapsed
	row.goroutines = metric("go_goroutines")
	if row.heap, err = heapAfterGC(); err != nil {
		return row, err
	}

	for range o.rounds {
		l, err := paced("127.0.0.1:"+dnsPort, names, o.checkRate, o.duration)
		if err != nil {
			return row, err
		}
		row.load = append(row.load, l)
	}
	return row, nil
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
// address accepts.
func startBackends(n int) (stop func(), port string, err error) {
	port = freePort()
	stop, _, err = startChild(os.Args[0], "listen", strconv.Itoa(n), port)
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
func heapAfterGC() (float64, error) {
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
	w("%d names, each with a blue address 127.1.x.y and a green one 127.2.x.y, served by one CoreDNS process per case with nothing else in it: without a `check` key, then with `check tcp://:PORT` on every name, %d addresses probed: the green half on a closed port (down), the blue half on a port that a child process of bgbench listens on (up). ", o.checkNames, 2*o.checkNames)
	w("From the start until the checks have settled (every green address down), the probes CoreDNS made each second; an interval later, its CPU over %v with no queries (one default interval, in which every settled address is probed once), its goroutines and its heap after a GC; then %d rounds of %v at %d A queries a second over the names, from a paced Go client (dnsperf gives no percentiles). ", checkIdle, o.rounds, o.duration, o.checkRate)
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
	p99 := func(row checkRow) time.Duration {
		return medianDuration(row.load, func(l latencies) time.Duration { return l.p99 })
	}
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
	line("query latency p99 (median of rounds)", func(row checkRow) string { return rnd(p99(row)).String() })
	line("p99 over the unchecked p99", func(row checkRow) string { return fmt.Sprintf("%.2f", float64(p99(row))/float64(p99(base))) })
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
	line("queries sent, lost, failed", func(row checkRow) string {
		sent, lost, failed := 0, 0, 0
		for _, l := range row.load {
			sent, lost, failed = sent+l.sent, lost+l.lost, failed+l.failed
		}
		return fmt.Sprintf("%d, %d, %d", sent, lost, failed)
	})
	c := r.checks[1]
	w("\nAt the default interval, against the targets: %+.0f goroutines (at most 64 probe workers and their scheduler), %+.1f MB of heap (at most 50), %.1f %% of a core with no queries (at most 10 %%), query p99 %.2f times the unchecked one (at most 1.5).\n\n",
		c.goroutines-base.goroutines, (c.heap-base.heap)/1e6, 100*c.idleCPU, float64(p99(c))/float64(p99(base)))
}

func medianDuration(runs []latencies, f func(latencies) time.Duration) time.Duration {
	v := make([]float64, len(runs))
	for i, l := range runs {
		v[i] = float64(f(l))
	}
	return time.Duration(median(v))
}

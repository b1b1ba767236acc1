package main

import (
	"fmt"
	"maps"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

type report struct {
	opts    options
	started time.Time
	qps     map[string]map[string][]float64 // data set -> contender -> one per round
	cpu     map[string]map[string][]float64 // CoreDNS CPU ms per 1000 queries, likewise
	lost    map[string]map[string]int
	sets    []string
	flips   []time.Duration
	churn   churnResult
	scale   []scaleRow
	checks  []checkRow

	profile                  string // pprof's top, quiet
	quietShares, churnShares shares
}

// add records one dnsperf run, and the CPU seconds CoreDNS used meanwhile.
func (r *report) add(set, contender string, res perfResult, cpu float64) {
	if r.qps == nil {
		r.qps, r.cpu, r.lost = map[string]map[string][]float64{}, map[string]map[string][]float64{}, map[string]map[string]int{}
	}
	if r.qps[set] == nil {
		r.qps[set], r.cpu[set], r.lost[set] = map[string][]float64{}, map[string][]float64{}, map[string]int{}
		r.sets = append(r.sets, set)
	}
	r.qps[set][contender] = append(r.qps[set][contender], res.qps)
	r.cpu[set][contender] = append(r.cpu[set][contender], 1e6*cpu/float64(max(res.sent, 1)))
	r.lost[set][contender] += res.lost
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.opts
	w("# bluegreen benchmarks\n\n")
	w("Written by `make bench` (`bin/bgbench`) on %s; the run took %v.\n\n", r.started.UTC().Format("2006-01-02 15:04 MST"), time.Since(r.started).Round(time.Second))
	w("## Machine\n\n%s\n", machine())
	w("## How\n\n")
	w("One CoreDNS process (`bin/coredns`, built by `make build`) serves four server blocks on loopback ports, one contender each, with nothing else in the block:\n\n")
	w("* *hosts*: the same names from a hosts file in memory (`reload 0`, `no_reverse`): the in-memory anchor;\n")
	w("* *etcd*: the same names as SkyDNS records in the same etcd, which it reads on every query: the per-query-read anchor;\n")
	w("* *whoami*: no lookup at all: CoreDNS's own ceiling;\n")
	w("* *bluegreen*: the names in etcd, answered from memory.\n\n")
	w("etcd (embedded, fsync off to seed quickly) runs in a child process. Each contender is loaded with\n`dnsperf -s 127.0.0.1 -p PORT -d QUERIES -l %d -c 4 -q 200` (UDP, A queries), one contender at a time, in %d rounds; each round starts with the next contender, so that the machine's noise falls on all alike. QUERIES is `app.example.org A` (one name), or %d names `nN.example.org A` in random order. Figures are medians over the rounds.\n\n", int(o.duration.Seconds()), o.rounds, o.names)

	w("## Queries per second\n\n")
	w("| data set | hosts | etcd | whoami | bluegreen | bluegreen / hosts | bluegreen / whoami | bluegreen / etcd | queries lost |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, set := range r.sets {
		m := map[string]float64{}
		lost := 0
		for _, c := range contenders {
			m[c] = median(r.qps[set][c])
			lost += r.lost[set][c]
		}
		w("| %s | %.0f | %.0f | %.0f | %.0f | %.3f | %.3f | %.1f | %d |\n", set, m["hosts"], m["etcd"], m["whoami"], m["bluegreen"],
			m["bluegreen"]/m["hosts"], m["bluegreen"]/m["whoami"], m["bluegreen"]/m["etcd"], lost)
	}
	w("\nWhat a query costs CoreDNS: its CPU time during each run over the queries sent, in ms per 1000 queries (medians). On a machine whose speed drifts from run to run, this compares the contenders' cost better than their rates do; at saturation the rate is the CPU available over this cost, so the last columns compare like the rate ratios above.\n\n")
	w("| data set | hosts | etcd | whoami | bluegreen | hosts / bluegreen | whoami / bluegreen | etcd / bluegreen |\n|---|---|---|---|---|---|---|---|\n")
	for _, set := range r.sets {
		m := map[string]float64{}
		for _, c := range contenders {
			m[c] = median(r.cpu[set][c])
		}
		w("| %s | %.2f | %.2f | %.2f | %.2f | %.3f | %.3f | %.1f |\n", set, m["hosts"], m["etcd"], m["whoami"], m["bluegreen"],
			m["hosts"]/m["bluegreen"], m["whoami"]/m["bluegreen"], m["etcd"]/m["bluegreen"])
	}
	w("\nEvery round, queries per second:\n\n| data set | contender | rounds |\n|---|---|---|\n")
	for _, set := range r.sets {
		for _, c := range contenders {
			var v []string
			for _, q := range r.qps[set][c] {
				v = append(v, fmt.Sprintf("%.0f", q))
			}
			w("| %s | %s | %s |\n", set, c, strings.Join(v, ", "))
		}
	}

	s := sortedCopy(r.flips)
	w("\n## Flip latency\n\n")
	w("%d flips of `app.example.org`, alternating colours: from the moment `Put` returns to the first answer from CoreDNS showing the new colour, querying back to back over UDP (one query takes tens of microseconds, which bounds the resolution).\n\n", len(s))
	w("| p50 | p90 | p99 | max |\n|---|---|---|---|\n| %v | %v | %v | %v |\n\n", rnd(percentile(s, 0.5)), rnd(percentile(s, 0.9)), rnd(percentile(s, 0.99)), rnd(percentile(s, 1)))
	w("![flip latency distribution](%s)\n\n", o.svg)

	c := r.churn
	w("## Churn\n\n")
	w("Queries over the %d names at full load for %v in all, quiet, and again while %d goroutines flip random names of the set at %d per second in all: %d rounds of a quiet run then a churn run, %v each, taking turns so that the machine's noise falls on both alike. Then %v at half the quiet rate, quiet and with flips.\n\n",
		o.names, o.churn, flippers, o.flipRate, churnRounds, o.churn/churnRounds, o.churn)
	w("| | queries per second (median) | every round | queries sent | queries lost |\n|---|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		runs []perfResult
	}{
		{"quiet, full load", c.quiet},
		{"churn, full load", c.busy},
		{fmt.Sprintf("quiet, %d per second (half)", c.pacedQPS), []perfResult{c.quietPaced}},
		{fmt.Sprintf("churn, %d per second (half)", c.pacedQPS), []perfResult{c.busyPaced}},
	} {
		var rounds []string
		sent, lost := 0, 0
		for _, res := range row.runs {
			rounds = append(rounds, fmt.Sprintf("%.0f", res.qps))
			sent, lost = sent+res.sent, lost+res.lost
		}
		w("| %s | %.0f | %s | %d | %d |\n", row.name, median(qpsOf(row.runs)), strings.Join(rounds, ", "), sent, lost)
	}
	w("\nAt full load dnsperf keeps 200 queries outstanding and overruns the server's UDP socket now and then, churn or not; the runs at half the quiet rate count losses below saturation.\n\n")
	w("Flips made: %d in %v (%.0f per second), %d failed. Query rate under churn at full load: %.1f%% of the quiet rate (medians).\n\n",
		c.flips, c.flipping.Round(time.Millisecond), float64(c.flips)/c.flipping.Seconds(), c.flipErrors, 100*median(qpsOf(c.busy))/median(qpsOf(c.quiet)))
	w("The machine has %d cores for everything. CPU seconds each process used during the full-load runs, %v quiet and %v with churn (dnsperf, not counted, takes about a core):\n\n| process | quiet | churn |\n|---|---|---|\n", runtime.NumCPU(), o.churn, o.churn)
	for _, name := range slices.Sorted(maps.Keys(c.cpuQuiet)) {
		w("| %s | %.1f | %.1f |\n", name, c.cpuQuiet[name], c.cpuBusy[name])
	}
	sent := func(runs []perfResult) (n int) {
		for _, r := range runs {
			n += r.sent
		}
		return n
	}
	w("\nCoreDNS CPU per thousand queries: %.2f ms quiet, %.2f ms under churn.\n\n",
		1000*c.cpuQuiet["CoreDNS"]/float64(sent(c.quiet))*1000, 1000*c.cpuBusy["CoreDNS"]/float64(sent(c.busy))*1000)
	w("Where CoreDNS's CPU went, from CPU profiles at full load over the %d names, quiet (%v) and during churn (%v); each column counts the samples whose stack includes the named code:\n\n", o.names, o.duration, o.churn/churnRounds/2)
	w("| | bluegreen's ServeDNS | bluegreen's watcher | etcd client | garbage collector |\n|---|---|---|---|---|\n")
	for _, row := range []struct {
		name string
		s    shares
	}{{"quiet", r.quietShares}, {"churn", r.churnShares}} {
		w("| %s | %s | %s | %s | %s |\n", row.name, row.s.serve, row.s.watcher, row.s.client, row.s.gc)
	}
	w("\n")

	w("## Scale\n\n")
	w("bluegreen started in the benchmark's own process over a prefix of N names (3 keys each): the time from starting CoreDNS to the first list being served, and the heap still in use after it (after GC, minus the heap before).\n\n")
	w("| names | initial sync | heap | heap per name |\n|---|---|---|---|\n")
	for _, row := range r.scale {
		w("| %d | %v | %.1f MiB | %.0f B |\n", row.names, row.sync.Round(time.Millisecond), float64(row.heap)/(1<<20), row.heapPerName)
	}

	r.checksMarkdown(w)

	w("\n## Where the time goes\n\n")
	w("A CPU profile of CoreDNS for %v while dnsperf loads bluegreen with the %d names. bluegreen's ServeDNS, with all it calls (writing the reply included): %s of the samples. The rest is CoreDNS's server reading and unpacking queries and the runtime, which every contender pays, *whoami* included.\n\n```\n%s```\n", o.duration, o.names, r.quietShares.serve, r.profile)

	w("\n## Go benchmarks\n\n`go test -run '^$' -bench . -benchmem .` (the plugin's query path, no network):\n\n```\n%s```\n", goBench())
	return b.String()
}

func rnd(d time.Duration) time.Duration {
	if d < time.Millisecond {
		return d.Round(time.Microsecond)
	}
	return d.Round(10 * time.Microsecond)
}

func machine() string {
	model := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := ""
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = strings.Fields(strings.SplitN(string(data), "\n", 2)[0])[1] + " kB memory"
	}
	dnsperf, _ := exec.Command("dnsperf", "-h").CombinedOutput()
	version := "dnsperf"
	for _, line := range strings.Split(string(dnsperf), "\n") {
		if strings.HasPrefix(line, "Version") {
			version = "dnsperf " + strings.TrimPrefix(line, "Version ")
		}
	}
	return fmt.Sprintf("* %s, %d cores, %s\n* %s, %s/%s; %s; CoreDNS v1.15.0\n", model, runtime.NumCPU(), mem, runtime.Version(), runtime.GOOS, runtime.GOARCH, version)
}

func goBench() string {
	out, err := exec.Command("go", "test", "-run", "^$", "-bench", ".", "-benchmem", ".").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("go test -bench failed: %v\n%s", err, out)
	}
	var keep []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Benchmark") || strings.HasPrefix(line, "cpu:") {
			keep = append(keep, line)
		}
	}
	return strings.Join(keep, "\n") + "\n"
}

// histogramSVG draws the flip latencies as a histogram.
func histogramSVG(d []time.Duration) string {
	s := sortedCopy(d)
	if len(s) == 0 {
		return ""
	}
	const width, height, bins = 640, 300, 40
	hi := percentile(s, 0.99) * 2
	counts := make([]int, bins)
	for _, v := range s {
		i := int(float64(v) / float64(hi) * bins)
		counts[min(i, bins-1)]++ // the last bin holds everything beyond
	}
	most := slices.Max(counts)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height+40)
	fmt.Fprintf(&b, `<text x="10" y="16">Flip latency, %d flips: Put returned to first new answer (p50 %v, p99 %v, max %v)</text>`+"\n", len(s), rnd(percentile(s, 0.5)), rnd(percentile(s, 0.99)), rnd(s[len(s)-1]))
	barW := float64(width-40) / bins
	for i, c := range counts {
		h := float64(c) / float64(most) * float64(height-40)
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#3a7bd5"/>`+"\n", 20+float64(i)*barW, float64(height)-h, barW-1, h)
	}
	fmt.Fprintf(&b, `<line x1="20" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", height, width-20, height)
	for _, f := range []float64{0, 0.25, 0.5, 0.75, 1} {
		x := 20 + f*float64(width-40)
		fmt.Fprintf(&b, `<text x="%.0f" y="%d" text-anchor="middle">%v</text>`+"\n", x, height+16, rnd(time.Duration(f*float64(hi))))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">latency (last bar: %v and beyond)</text>`+"\n", width-20, height+34, rnd(hi*(bins-1)/bins))
	b.WriteString("</svg>\n")
	return b.String()
}

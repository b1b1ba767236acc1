package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// startCoreDNS runs the binary with the Corefile, which exports metrics on
// metricsPort, and waits until bluegreen serves wantNames names.
func startCoreDNS(binary, corefile, metricsPort string, wantNames int) (stop func(), pid int, err error) {
	stop, pid, err = startChild(binary, "-quiet", "-conf", corefile)
	if err != nil {
		return nil, 0, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for metric(metricsPort, "coredns_bluegreen_names") != float64(wantNames) {
		if time.Now().After(deadline) {
			stop()
			return nil, 0, fmt.Errorf("CoreDNS did not serve %d names within 2 minutes", wantNames)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return stop, pid, nil
}

// metric reads one unlabelled-or-summed series from the metrics CoreDNS
// exports on port; -1 when it cannot.
func metric(port, name string) float64 {
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	sum, found := 0.0, false
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, name+" ") || strings.HasPrefix(line, name+"{") {
			f := strings.Fields(line)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum, found = sum+v, true
		}
	}
	if !found {
		return -1
	}
	return sum
}

type perfResult struct {
	qps        float64
	sent, lost int
}

var (
	qpsLine  = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	sentLine = regexp.MustCompile(`Queries sent:\s+([0-9]+)`)
	lostLine = regexp.MustCompile(`Queries lost:\s+([0-9]+)`)
)

// dnsperf loads 127.0.0.1:port with the queries in file for d, as fast as
// it can, or at maxQPS when that is not 0.
func dnsperf(port, file string, d time.Duration, maxQPS ...int) (perfResult, error) {
	args := []string{"-s", "127.0.0.1", "-p", port, "-d", file, "-l", strconv.Itoa(int(d.Seconds())), "-c", "4", "-q", "200"}
	if len(maxQPS) == 1 {
		args = append(args, "-Q", strconv.Itoa(maxQPS[0]))
	}
	out, err := exec.Command("dnsperf", args...).CombinedOutput()
	if err != nil {
		return perfResult{}, fmt.Errorf("dnsperf: %v\n%s", err, out)
	}
	var r perfResult
	m, s, l := qpsLine.FindSubmatch(out), sentLine.FindSubmatch(out), lostLine.FindSubmatch(out)
	if m == nil || s == nil || l == nil {
		return r, fmt.Errorf("dnsperf said:\n%s", out)
	}
	r.qps, _ = strconv.ParseFloat(string(m[1]), 64)
	r.sent, _ = strconv.Atoi(string(s[1]))
	r.lost, _ = strconv.Atoi(string(l[1]))
	return r, nil
}

// flipLatencies flips app.example.org n times and measures, for each, the
// time from Put returning to the first answer showing the new colour.
func flipLatencies(client *clientv3.Client, addr string, n int) ([]time.Duration, error) {
	c := &dns.Client{Timeout: time.Second}
	q := new(dns.Msg)
	q.SetQuestion("app.example.org.", dns.TypeA)
	want := map[string]string{"blue": "10.0.1.100", "green": "10.0.2.100"}
	var out []time.Duration
	for i := range n {
		colour := []string{"green", "blue"}[i%2]
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := client.Put(ctx, "/bluegreen/app.example.org/active", colour)
		cancel()
		if err != nil {
			return nil, err
		}
		put := time.Now()
		for {
			r, _, err := c.Exchange(q, addr)
			if err == nil && len(r.Answer) == 1 && r.Answer[0].(*dns.A).A.String() == want[colour] {
				break
			}
			if time.Since(put) > 10*time.Second {
				return nil, fmt.Errorf("flip %d to %s not answered within 10s", i, colour)
			}
		}
		out = append(out, time.Since(put))
	}
	return out, nil
}

// churnRounds splits the full-load comparison into quiet and churn runs
// taking turns, as the throughput comparison does, so that the machine's
// noise falls on both alike.
const churnRounds = 3

type churnResult struct {
	quiet, busy           []perfResult // full load, one per round
	quietPaced, busyPaced perfResult   // at pacedQPS
	pacedQPS              int
	flips                 int64
	flipErrors            int64
	flipping              time.Duration // how long flips ran in all
	// CPU seconds each process used during the quiet and the busy full-load runs.
	cpuQuiet, cpuBusy map[string]float64
	profile           string // of CoreDNS during the first busy run
}

// cpuDuring runs f and returns the CPU seconds each process used meanwhile.
func cpuDuring(procs map[string]int, f func() error) (map[string]float64, error) {
	before := map[string]float64{}
	for name, pid := range procs {
		before[name] = cpuSeconds(pid)
	}
	err := f()
	used := map[string]float64{}
	for name, pid := range procs {
		used[name] = cpuSeconds(pid) - before[name]
	}
	return used, err
}

// churn measures the query rate over the many-names set at full load, in
// rounds of a quiet run then one while names are flipped at o.flipRate per
// second. Then it sends half the quiet rate, quiet and with flips, to count
// lost queries below saturation: at full load dnsperf overruns the UDP
// socket now and then, churn or not.
func churn(client *clientv3.Client, port, many string, o options, procs map[string]int) (churnResult, error) {
	r := churnResult{cpuQuiet: map[string]float64{}, cpuBusy: map[string]float64{}}
	f := &flipper{client: client, names: o.names, rate: o.flipRate}
	run := func(into *[]perfResult, cpu map[string]float64, profile bool) error {
		used, err := cpuDuring(procs, func() error {
			d := o.churn / churnRounds
			load := func() error {
				res, err := dnsperf(port, many, d)
				*into = append(*into, res)
				return err
			}
			if !profile {
				return load()
			}
			var err error
			r.profile, err = profileDuring(pprofPort, d/2, load)
			return err
		})
		for name, s := range used {
			cpu[name] += s
		}
		return err
	}
	for round := range churnRounds {
		if err := run(&r.quiet, r.cpuQuiet, false); err != nil {
			return r, err
		}
		f.start()
		err := run(&r.busy, r.cpuBusy, round == 0)
		f.stop()
		if err != nil {
			return r, err
		}
	}
	var err error
	r.pacedQPS = int(median(qpsOf(r.quiet)) / 2)
	if r.quietPaced, err = dnsperf(port, many, o.churn, r.pacedQPS); err != nil {
		return r, err
	}
	f.start()
	r.busyPaced, err = dnsperf(port, many, o.churn, r.pacedQPS)
	f.stop()
	r.flips, r.flipErrors, r.flipping = f.flips.Load(), f.errors.Load(), f.elapsed
	return r, err
}

func qpsOf(runs []perfResult) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		out[i] = r.qps
	}
	return out
}

// flipper flips random names of the many-names set at rate per second,
// between start and stop.
type flipper struct {
	client        *clientv3.Client
	names, rate   int
	next          atomic.Int64 // which flip comes next, over all runs
	flips, errors atomic.Int64
	elapsed       time.Duration

	cancel  context.CancelFunc
	wg      sync.WaitGroup
	started time.Time
}

// flippers put at once: one Put round trip is near a millisecond.
const flippers = 8

func (f *flipper) start() {
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel, f.started = cancel, time.Now()
	for range flippers {
		f.wg.Go(func() {
			t := time.NewTicker(time.Second * flippers / time.Duration(f.rate))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				i := int(f.next.Add(1))
				name := fmt.Sprintf("/bluegreen/n%d.example.org/active", i%f.names)
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := f.client.Put(pctx, name, []string{"green", "blue"}[(i/f.names)%2])
				pcancel()
				if err != nil && ctx.Err() == nil {
					f.errors.Add(1)
					continue
				}
				f.flips.Add(1)
			}
		})
	}
}

func (f *flipper) stop() {
	f.cancel()
	f.wg.Wait()
	f.elapsed += time.Since(f.started)
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return sorted[i]
}

func sortedCopy(d []time.Duration) []time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s
}

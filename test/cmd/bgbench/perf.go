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

// startCoreDNS runs the binary with the Corefile and waits until bluegreen
// serves wantNames names.
func startCoreDNS(binary, corefile, port string, wantNames int) (stop func(), pid int, err error) {
	stop, pid, err = startChild(binary, "-quiet", "-conf", corefile)
	if err != nil {
		return nil, 0, err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for metric("coredns_bluegreen_names") != float64(wantNames) {
		if time.Now().After(deadline) {
			stop()
			return nil, 0, fmt.Errorf("CoreDNS did not serve %d names within 2 minutes", wantNames)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return stop, pid, nil
}

// metric reads one unlabelled-or-summed series from CoreDNS's metrics; -1
// when it cannot.
func metric(name string) float64 {
	resp, err := http.Get("http://127.0.0.1:" + metricsPort + "/metrics")
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

type churnResult struct {
	quiet, busy           perfResult // full load
	quietPaced, busyPaced perfResult // at pacedQPS
	pacedQPS              int
	flips                 int64
	flipErrors            int64
	elapsed               time.Duration
	// CPU seconds each process used during the quiet and the busy full-load runs.
	cpuQuiet, cpuBusy map[string]float64
	profile           string // of CoreDNS during the busy run
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

// churn measures the query rate over the many-names set quietly, then while
// names are flipped at o.flipRate per second. Each time it also sends half
// the quiet rate, to count lost queries below saturation: at full load
// dnsperf overruns the UDP socket now and then, churn or not.
func churn(client *clientv3.Client, port, many string, o options, procs map[string]int) (churnResult, error) {
	var r churnResult
	var err error
	r.cpuQuiet, err = cpuDuring(procs, func() (err error) { r.quiet, err = dnsperf(port, many, o.churn); return err })
	if err != nil {
		return r, err
	}
	r.pacedQPS = int(r.quiet.qps / 2)
	if r.quietPaced, err = dnsperf(port, many, o.churn, r.pacedQPS); err != nil {
		return r, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var flips, flipErrors atomic.Int64
	const flippers = 8 // several at once: one Put round trip is near a millisecond
	start := time.Now()
	for f := range flippers {
		wg.Go(func() {
			t := time.NewTicker(time.Second * flippers / time.Duration(o.flipRate))
			defer t.Stop()
			for i := f; ; i += flippers {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				name := fmt.Sprintf("/bluegreen/n%d.example.org/active", i%o.names)
				pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
				_, err := client.Put(pctx, name, []string{"green", "blue"}[(i/o.names)%2])
				pcancel()
				if err != nil && ctx.Err() == nil {
					flipErrors.Add(1)
					continue
				}
				flips.Add(1)
			}
		})
	}
	r.cpuBusy, err = cpuDuring(procs, func() (err error) {
		r.profile, err = profileDuring(pprofPort, o.churn/2, func() (err error) { r.busy, err = dnsperf(port, many, o.churn); return err })
		return err
	})
	if err == nil {
		r.busyPaced, err = dnsperf(port, many, o.churn, r.pacedQPS)
	}
	cancel()
	wg.Wait()
	r.elapsed = time.Since(start)
	r.flips, r.flipErrors = flips.Load(), flipErrors.Load()
	return r, err
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

// Command bgbench is make bench: it measures bluegreen beside the systems an
// operator would otherwise use, on this machine, in one run, and writes the
// figures to BENCHMARKS.md.
//
// One CoreDNS process (bin/coredns) serves four server blocks on loopback
// ports, one contender each: hosts (in memory), etcd (reads etcd per query),
// whoami (no lookup at all: CoreDNS's ceiling) and bluegreen. etcd runs in a
// child process. dnsperf loads one contender at a time, the contenders taking
// turns round after round, so that the machine's noise falls on all alike.
package main

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/bluegreen-dns/bluegreen/test/devetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

type options struct {
	coredns  string
	out      string
	svg      string
	rounds   int
	duration time.Duration
	names    int
	flips    int
	churn    time.Duration
	flipRate int

	checkNames  int
	checkRate   int
	checkRounds int
}

func main() {
	switch {
	case len(os.Args) == 4 && os.Args[1] == "etcd":
		runEtcd(os.Args[2], os.Args[3])
		return
	case len(os.Args) == 4 && os.Args[1] == "listen":
		n, _ := strconv.Atoi(os.Args[2])
		if err := listenOn(n, os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	case len(os.Args) == 5 && os.Args[1] == "sync":
		names, _ := strconv.Atoi(os.Args[4])
		if err := measureSync(os.Args[2], os.Args[3], names); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	var o options
	flag.StringVar(&o.coredns, "coredns", "bin/coredns", "the CoreDNS binary")
	flag.StringVar(&o.out, "out", "BENCHMARKS.md", "where to write the report")
	flag.StringVar(&o.svg, "svg", "docs/flip-latency.svg", "where to draw the flip latencies")
	flag.IntVar(&o.rounds, "rounds", 5, "rounds of the throughput comparison")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of one dnsperf run")
	flag.IntVar(&o.names, "names", 100000, "names of the many-names data set")
	flag.IntVar(&o.flips, "flips", 1000, "flips whose latency is measured")
	flag.DurationVar(&o.churn, "churn", 30*time.Second, "length of the churn test")
	flag.IntVar(&o.flipRate, "flip-rate", 1000, "flips per second during the churn test")
	flag.IntVar(&o.checkNames, "check-names", 10000, "names of the health checks comparison, two addresses each")
	flag.IntVar(&o.checkRate, "check-rate", 20000, "queries per second while latency is measured in the health checks comparison")
	flag.IntVar(&o.checkRounds, "check-rounds", 10, "rounds of the health checks comparison: a p99 moves more from round to round than a rate")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bgbench:", err)
		os.Exit(1)
	}
}

// runEtcd is the child process that holds etcd, so that its CPU and memory
// are not the benchmark's.
func runEtcd(dir, addr string) {
	cfg := devetcd.Config("bench", dir, addr, "127.0.0.1:0")
	cfg.UnsafeNoFsync = true // seeding 400k keys should take seconds, not minutes
	e, err := devetcd.StartConfig(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, os.Interrupt)
	<-stop
	e.Close()
}

func run(o options) error {
	dir, err := os.MkdirTemp("", "bgbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	r := &report{opts: o, started: time.Now()}

	etcdAddr := "127.0.0.1:" + freePort()
	stopEtcd, etcdPID, err := startChild(os.Args[0], "etcd", filepath.Join(dir, "etcd"), etcdAddr)
	if err != nil {
		return err
	}
	defer stopEtcd()
	client, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + etcdAddr}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		return err
	}
	defer client.Close()
	if err := waitEtcd(client); err != nil {
		return err
	}

	step("seeding etcd and the hosts file with %d names", o.names)
	hostsFile := filepath.Join(dir, "hosts")
	if err := seed(client, hostsFile, o.names); err != nil {
		return err
	}
	one, many := filepath.Join(dir, "one.txt"), filepath.Join(dir, "many.txt")
	if err := queryFiles(one, many, o.names); err != nil {
		return err
	}

	ports := map[string]string{}
	for _, c := range contenders {
		ports[c] = freePort()
	}
	corefile := filepath.Join(dir, "Corefile")
	if err := os.WriteFile(corefile, []byte(benchCorefile(ports, hostsFile, "http://"+etcdAddr)), 0o644); err != nil {
		return err
	}
	stopCoreDNS, corednsPID, err := startCoreDNS(o.coredns, corefile, metricsPort, o.names+1)
	if err != nil {
		return err
	}
	defer stopCoreDNS()

	for i := range o.rounds {
		for _, set := range []struct{ name, file string }{{"one name", one}, {fmt.Sprintf("%d names", o.names), many}} {
			// Each round starts with another contender: A B C D, B C D A, ...
			for j := range contenders {
				c := contenders[(i+j)%len(contenders)]
				step("round %d/%d, %s: %s", i+1, o.rounds, set.name, c)
				var res perfResult
				cpu, err := cpuDuring(map[string]int{"CoreDNS": corednsPID}, func() (err error) {
					res, err = dnsperf(ports[c], set.file, o.duration)
					return err
				})
				if err != nil {
					return fmt.Errorf("%s: %w", c, err)
				}
				r.add(set.name, c, res, cpu["CoreDNS"])
			}
		}
	}

	step("CPU profile of bluegreen under load")
	quiet, err := profileDuring(pprofPort, o.duration, func() error {
		_, err := dnsperf(ports["bluegreen"], many, o.duration+2*time.Second)
		return err
	})
	if err != nil {
		return err
	}
	defer os.Remove(quiet)
	if r.profile, err = pprofTop(quiet); err != nil {
		return err
	}
	if r.quietShares, err = pprofShares(quiet); err != nil {
		return err
	}

	step("%d flips", o.flips)
	if r.flips, err = flipLatencies(client, "127.0.0.1:"+ports["bluegreen"], o.flips); err != nil {
		return err
	}

	step("churn: %d flips/s for %v under load", o.flipRate, o.churn)
	procs := map[string]int{"CoreDNS": corednsPID, "etcd": etcdPID, "bgbench (dnsperf aside)": os.Getpid()}
	if r.churn, err = churn(client, ports["bluegreen"], many, o, procs); err != nil {
		return err
	}
	defer os.Remove(r.churn.profile)
	if r.churnShares, err = pprofShares(r.churn.profile); err != nil {
		return err
	}

	stopCoreDNS()
	step("scale: sync time and heap for 1k, 10k, %d names", o.names)
	if r.scale, err = scale(client, "http://"+etcdAddr, o.names); err != nil {
		return err
	}

	step("checks: %d names checked beside %d unchecked", o.checkNames, o.checkNames)
	if r.checks, err = checks(client, "http://"+etcdAddr, dir, o); err != nil {
		return err
	}

	if err := os.MkdirAll(filepath.Dir(o.svg), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(o.svg, []byte(histogramSVG(r.flips)), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(o.out, []byte(r.markdown()), 0o644); err != nil {
		return err
	}
	step("wrote %s and %s", o.out, o.svg)
	return nil
}

var contenders = []string{"hosts", "etcd", "whoami", "bluegreen"}

func benchCorefile(ports map[string]string, hostsFile, endpoint string) string {
	return fmt.Sprintf(`example.org:%s {
    bind 127.0.0.1
    hosts %s {
        reload 0
        no_reverse
    }
}
example.org:%s {
    bind 127.0.0.1
    etcd {
        path /skydns
        endpoint %s
    }
}
example.org:%s {
    bind 127.0.0.1
    whoami
}
example.org:%s {
    bind 127.0.0.1
    bluegreen {
        endpoint %s
    }
}
# Metrics, which tell when bluegreen has synced, from a block of their own:
# in a contender's block the prometheus plugin would time every query.
metrics.invalid:%s {
    bind 127.0.0.1
    prometheus 127.0.0.1:%s
    pprof 127.0.0.1:%s
}
`, ports["hosts"], hostsFile, ports["etcd"], endpoint, ports["whoami"], ports["bluegreen"], endpoint, freePort(), metricsPort, pprofPort)
}

// metricsPort is where CoreDNS exports its metrics, pprofPort its profiles.
var metricsPort, pprofPort = freePort(), freePort()

func step(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func freePort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
}

// startChild runs a command until the returned stop is called.
func startChild(name string, args ...string) (stop func(), pid int, err error) {
	cmd := exec.Command(name, args...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, 0, fmt.Errorf("starting %s: %w", name, err)
	}
	done := false
	return func() {
		if !done {
			done = true
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	}, cmd.Process.Pid, nil
}

// cpuSeconds is the CPU time a process has used, user and system.
func cpuSeconds(pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: utime and
	// stime are the 12th and 13th, in clock ticks of 1/100 s.
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+1:]))
	utime, _ := strconv.ParseFloat(f[11], 64)
	stime, _ := strconv.ParseFloat(f[12], 64)
	return (utime + stime) / 100
}

// machineTicks is the machine's CPU time so far, in clock ticks of all its
// CPUs, and the part of it the hypervisor gave to other guests while this
// one wanted it (steal).
func machineTicks() (total, steal float64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	// cpu user nice system idle iowait irq softirq steal ...
	f := strings.Fields(strings.SplitN(string(data), "\n", 2)[0])
	for i, v := range f[1:min(len(f), 9)] {
		t, _ := strconv.ParseFloat(v, 64)
		total += t
		if i == 7 {
			steal = t
		}
	}
	return total, steal
}

func waitEtcd(client *clientv3.Client) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.Get(ctx, "/")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("etcd did not answer: %w", err)
		}
	}
}

// seed writes n+1 names (app and n0..n{n-1}) for bluegreen, the same for the
// etcd plugin under /skydns, and a hosts file.
func seed(client *clientv3.Client, hostsFile string, n int) error {
	var hosts strings.Builder
	var ops []clientv3.Op
	flush := func() error {
		if len(ops) == 0 {
			return nil
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, err := client.Txn(ctx).Then(ops...).Commit()
		ops = ops[:0]
		return err
	}
	add := func(name, blue, green string) error {
		ops = append(ops,
			clientv3.OpPut("/bluegreen/"+name+"/blue", blue),
			clientv3.OpPut("/bluegreen/"+name+"/green", green),
			clientv3.OpPut("/bluegreen/"+name+"/active", "blue"),
			clientv3.OpPut("/skydns/"+reverse(name)+"/a", `{"host":"`+blue+`"}`))
		fmt.Fprintf(&hosts, "%s %s\n", blue, name)
		if len(ops) >= 100 {
			return flush()
		}
		return nil
	}
	if err := add("app.example.org", "10.0.1.100", "10.0.2.100"); err != nil {
		return err
	}
	for i := range n {
		if err := add(fmt.Sprintf("n%d.example.org", i), address(10, i), address(11, i)); err != nil {
			return err
		}
	}
	if err := flush(); err != nil {
		return err
	}
	return os.WriteFile(hostsFile, []byte(hosts.String()), 0o644)
}

func address(first, i int) string {
	return fmt.Sprintf("%d.%d.%d.%d", first, i>>16&255, i>>8&255, i&255)
}

// reverse turns a.example.org into org/example/a, the etcd plugin's layout.
func reverse(name string) string {
	labels := strings.Split(name, ".")
	for i, j := 0, len(labels)-1; i < j; i, j = i+1, j-1 {
		labels[i], labels[j] = labels[j], labels[i]
	}
	return strings.Join(labels, "/")
}

// queryFiles writes dnsperf's inputs: one name, and n names in random order.
func queryFiles(one, many string, n int) error {
	if err := os.WriteFile(one, []byte("app.example.org A\n"), 0o644); err != nil {
		return err
	}
	var b strings.Builder
	for _, i := range rand.Perm(n) {
		fmt.Fprintf(&b, "n%d.example.org A\n", i)
	}
	return os.WriteFile(many, []byte(b.String()), 0o644)
}

// Package test holds bluegreen's server-level tests: a real CoreDNS server
// started from a Corefile, a real (embedded) etcd server, and a DNS client
// over UDP and TCP. It is its own module so that what only tests need stays
// out of what a CoreDNS build pulls in with the plugin.
package test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen"
	"github.com/bluegreen-dns/bluegreen/ctl"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	ctest "github.com/coredns/coredns/test"
	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMain(m *testing.M) {
	if os.Getenv(bgctlProcess) == "1" { // the test binary run as bgctl, by startBgctl
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := ctl.Main(ctx, os.Args[1:], ctl.Stdio())
		stop()
		os.Exit(code)
	}
	dnsserver.Directives = bluegreen.InsertDirective(dnsserver.Directives)
	os.Exit(m.Run())
}

// startCoreDNS starts a CoreDNS server from corefile and stops it, shutdown
// callbacks included, at cleanup. It returns the UDP and TCP addresses.
func startCoreDNS(t *testing.T, corefile string) (inst *caddy.Instance, udp, tcp string) {
	t.Helper()
	inst, udp, tcp, err := ctest.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("starting CoreDNS: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { stopCoreDNS(inst) })
	return inst, udp, tcp
}

// stopCoreDNS stops inst the way CoreDNS itself does: Stop alone does not run
// the shutdown callbacks that stop the plugin's watcher.
func stopCoreDNS(inst *caddy.Instance) {
	inst.Stop()
	inst.ShutdownCallbacks()
}

// corefile serves example.org on a free port with bluegreen reading etcd at
// endpoint; options go inside the bluegreen block, after lines outside it.
func corefile(endpoint, options string, after ...string) string {
	s := fmt.Sprintf("example.org:0 {\n\tbluegreen {\n\t\tendpoint %s\n\t\t%s\n\t}\n", endpoint, options)
	for _, line := range after {
		s += "\t" + line + "\n"
	}
	return s + "}\n"
}

// query asks addr over network ("udp" or "tcp") and fails the test on error.
func query(t *testing.T, network, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	m, err := exchange(network, addr, name, qtype)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	return m
}

func exchange(network, addr, name string, qtype uint16) (*dns.Msg, error) {
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// answers renders a response's answer section as sorted "TYPE DATA" strings,
// for example "A 10.0.1.100" or "CNAME app-v2.example.net.".
func answers(m *dns.Msg) []string {
	var out []string
	for _, rr := range m.Answer {
		h := rr.Header()
		out = append(out, dns.TypeToString[h.Rrtype]+" "+rr.String()[len(h.String()):])
	}
	slices.Sort(out)
	return out
}

// stateTXT is the _bluegreen TXT state of name, as one string.
func stateTXT(t *testing.T, addr, name string) string {
	t.Helper()
	return strings.Join(answers(query(t, "udp", addr, "_bluegreen."+name, dns.TypeTXT)), " ")
}

// waitFor polls cond every millisecond until it holds or the deadline passes,
// and returns how long it took.
func waitFor(t *testing.T, what string, deadline time.Duration, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > deadline {
			t.Fatalf("%s: not seen within %v", what, deadline)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(start)
}

// metricValue reads a counter or gauge from the process's default Prometheus
// registry, where the plugin's metrics live: the sum of the series that have
// the given label name-value pairs.
func metricValue(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if hasLabels(m.GetLabel(), labels) {
				sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

func hasLabels(have []*dto.LabelPair, want []string) bool {
	for i := 0; i+1 < len(want); i += 2 {
		if !slices.ContainsFunc(have, func(l *dto.LabelPair) bool { return l.GetName() == want[i] && l.GetValue() == want[i+1] }) {
			return false
		}
	}
	return true
}

// captureLog collects what CoreDNS logs (through the standard logger) during
// the test, besides writing it to stderr as usual.
func captureLog(t *testing.T) *syncBuffer {
	b := &syncBuffer{}
	log.SetOutput(io.MultiWriter(os.Stderr, b))
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	return b
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

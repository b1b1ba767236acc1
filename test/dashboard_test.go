package test

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// dashboard is what the test reads of deploy/grafana/bluegreen.json.
type dashboard struct {
	Title      string
	UID        string
	Templating struct {
		List []struct {
			Name, Type string
			Query      json.RawMessage
		}
	}
	Annotations struct {
		List []struct{ Name, Expr string }
	}
	Panels []struct {
		Title, Type string
		Targets     []struct{ Expr string }
	}
}

// queries is every PromQL query of the dashboard, by where it is: each
// panel's targets, the annotations, and the variables (label_values(M, L)
// is asked as M).
func (d dashboard) queries(t *testing.T) map[string]string {
	out := map[string]string{}
	for _, p := range d.Panels {
		for i, target := range p.Targets {
			out[fmt.Sprintf("panel %q, query %d", p.Title, i+1)] = target.Expr
		}
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
	}
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out["annotation "+a.Name] = a.Expr
		}
	}
	labelValues := regexp.MustCompile(`^label_values\((\w+), *\w+\)$`)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct{ Query string }
		if err := json.Unmarshal(v.Query, &q); err != nil {
			t.Fatalf("variable %s: %v", v.Name, err)
		}
		m := labelValues.FindStringSubmatch(q.Query)
		if m == nil {
			t.Fatalf("variable %s: query %q is not label_values(METRIC, LABEL)", v.Name, q.Query)
		}
		out["variable "+v.Name] = m[1]
	}
	return out
}

// TestDashboard runs every query of the Grafana dashboard against a real
// Prometheus scraping a real CoreDNS with the plugin, after traffic, a flip,
// a failover, a canary share and a trial: each must return data. Grafana's
// variables are given as Grafana would for "All": $instance and $name as
// .*, and $__rate_interval as four scrapes.
func TestDashboard(t *testing.T) {
	data, err := os.ReadFile("../deploy/grafana/bluegreen.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("bluegreen.json: %v", err)
	}
	if d.UID == "" || d.Title == "" {
		t.Errorf("the dashboard has no uid or title")
	}
	queries := d.queries(t)

	// app.example.org: health-checked, both colours up until blue goes
	// down; canary.example.org: 30 % of networks on green; plain.example.org:
	// flipped, then on trial.
	port := freePort(t)
	backends := map[string]net.Listener{}
	for _, addr := range []string{"127.0.0.41", "127.0.0.42"} {
		l := tcpBackend(t, addr, port)
		t.Cleanup(func() { l.Close() })
		backends[addr] = l
	}
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "127.0.0.41", "127.0.0.42")
	etcd.put(t, "/bluegreen/app.example.org/check", "tcp://:"+port)
	etcd.putName(t, "canary.example.org", "blue", "10.0.1.1", "10.0.2.1")
	etcd.put(t, "/bluegreen/canary.example.org/canary", "30")
	etcd.putName(t, "plain.example.org", "blue", "10.0.1.2", "10.0.2.2")
	metrics := "127.0.0.1:" + freePort(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "check_interval 100ms\n\t\tcheck_timeout 50ms\n\t\tcheck_rise 1\n\t\tcheck_fall 1", "prometheus "+metrics))
	prom := startPrometheus(t, metrics)
	start := time.Now()

	// Clients in 100 networks (as a resolver's client subnet) ask all along.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		c := &dns.Client{Net: "udp", Timeout: time.Second}
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			for _, name := range []string{"app.example.org.", "canary.example.org.", "plain.example.org."} {
				m := new(dns.Msg)
				m.SetQuestion(name, dns.TypeA)
				m.SetEdns0(1232, false)
				opt := m.IsEdns0()
				opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 18, byte(i%100), 0)})
				c.Exchange(m, udp)
			}
		}
	})
	t.Cleanup(func() { close(stop); wg.Wait() })

	etcd.put(t, "/bluegreen/plain.example.org/active", "green")
	backends["127.0.0.41"].Close()
	waitFor(t, "app.example.org failed over to green", 10*time.Second, func() bool {
		return strings.Contains(stateTXT(t, udp, "app.example.org"), "failover")
	})
	if r := bgctl(t, etcd.endpoint, "switch", "plain.example.org", "--to", "blue", "--confirm-within", "10m"); r.code != 0 {
		t.Fatalf("a trial: %s", r)
	}

	vars := strings.NewReplacer("$__rate_interval", "1s", "$instance", ".*", "$name", ".*")
	for where, q := range queries {
		expr := vars.Replace(q)
		if strings.Contains(expr, "$") {
			t.Errorf("%s: a variable the test does not know: %s", where, q)
			continue
		}
		var series int
		var last string
		waitFor(t, where+" returning data", 30*time.Second, func() bool {
			series, last = queryRange(t, prom, expr, start)
			return series > 0
		})
		t.Logf("%s: %d series, %s", where, series, last)
	}
}

// queryRange asks Prometheus for expr from start to now, a point a second,
// and returns how many series have a value that is a number, and the
// answer's status for the log.
func queryRange(t *testing.T, prom, expr string, start time.Time) (int, string) {
	t.Helper()
	q := url.Values{"query": {expr}, "start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(time.Now().Unix()+1, 10)}, "step": {"1"}}
	resp, err := http.Get(prom + "/api/v1/query_range?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status, Error string
		Data          struct {
			Result []struct {
				Values [][2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	if r.Status != "success" {
		t.Fatalf("%s: %s", expr, r.Error)
	}
	n := 0
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			if f, err := strconv.ParseFloat(fmt.Sprint(v[1]), 64); err == nil && f == f { // not NaN
				n++
				break
			}
		}
	}
	return n, fmt.Sprintf("%d series in all", len(r.Data.Result))
}

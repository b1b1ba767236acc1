package bluegreen

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"
)

func TestParse(t *testing.T) {
	c := caddy.NewTestController("dns", `bluegreen example.org example.net {
		endpoint http://10.0.0.1:2379 http://10.0.0.2:2379
		prefix /releases
		ttl 5
		credentials coredns s3cret
		fallthrough example.net
	}`)
	bg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bg.Zones, []string{"example.org.", "example.net."}) {
		t.Errorf("zones %v", bg.Zones)
	}
	if !slices.Equal(bg.etcd.Endpoints, []string{"http://10.0.0.1:2379", "http://10.0.0.2:2379"}) {
		t.Errorf("endpoints %v", bg.etcd.Endpoints)
	}
	if bg.prefix != "/releases/" || bg.ttl != 5 || bg.etcd.Username != "coredns" || bg.etcd.Password != "s3cret" {
		t.Errorf("prefix %q, ttl %d, user %q, password %q", bg.prefix, bg.ttl, bg.etcd.Username, bg.etcd.Password)
	}
	if !bg.Fall.Through("a.example.net.") || bg.Fall.Through("a.example.org.") {
		t.Errorf("fallthrough %v", bg.Fall)
	}
}

func TestParseTrafficPolicy(t *testing.T) {
	bg, err := parse(caddy.NewTestController("dns", `bluegreen {
		canary_subnet 16 48
		check_interval 10s
		check_timeout 3s
		check_rise 1
		check_fall 5
		failover off
		name_metrics 0
		ready off
	}`))
	if err != nil {
		t.Fatal(err)
	}
	want := probeConfig{interval: 10 * time.Second, timeout: 3 * time.Second, rise: 1, fall: 5}
	if bg.canaryV4 != 16 || bg.canaryV6 != 48 || bg.probes != want || bg.failover || bg.nameMetrics != 0 || !bg.readyAlways || !bg.Ready() {
		t.Errorf("canary subnet /%d /%d, probes %+v, failover %v, name_metrics %d, ready %v; want /16 /48, %+v, off, 0, off", bg.canaryV4, bg.canaryV6, bg.probes, bg.failover, bg.nameMetrics, !bg.readyAlways, want)
	}
}

func TestParseZoneAndPreview(t *testing.T) {
	c := caddy.NewTestController("dns", `bluegreen example.org {
		preview 10.1.0.0/16 2001:db8::/32 192.0.2.7
		ns ns1.example.org 192.0.2.1 2001:db8::1
		ns NS2.Example.NET.
		max_ttl 86400
		ttl 7200
	}`)
	bg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(bg.preview); got != "[10.1.0.0/16 2001:db8::/32 192.0.2.7/32]" {
		t.Errorf("preview %s", got)
	}
	if ns := bg.nameServers["example.org."]; len(ns) != 2 || ns[0].name != "ns1.example.org." || len(ns[0].addrs) != 2 ||
		ns[1].name != "ns2.example.net." || len(ns[1].addrs) != 0 {
		t.Errorf("name servers %+v", bg.nameServers)
	}
	if bg.maxTTL != 86400 || bg.ttl != 7200 {
		t.Errorf("max_ttl %d, ttl %d", bg.maxTTL, bg.ttl)
	}
}

func TestParseDefaults(t *testing.T) {
	c := caddy.NewTestController("dns", "bluegreen")
	c.ServerBlockKeys = []string{"example.org:53"}
	bg, err := parse(c)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(bg.Zones, []string{"example.org."}) || !slices.Equal(bg.etcd.Endpoints, []string{"http://localhost:2379"}) ||
		bg.prefix != "/bluegreen/" || bg.ttl != 30 || bg.etcd.TLS != nil || bg.Fall.Through("a.example.org.") ||
		bg.canaryV4 != 24 || bg.canaryV6 != 56 || bg.probes != defaultProbes || !bg.failover ||
		bg.maxTTL != 3600 || fmt.Sprint(bg.preview) != "[127.0.0.0/8 ::1/128 10.0.0.0/8 172.16.0.0/12 192.168.0.0/16 fc00::/7]" ||
		len(bg.nameServers["example.org."]) != 1 || bg.nameServers["example.org."][0].name != "ns.dns.example.org." {
		t.Errorf("defaults: zones %v, endpoints %v, prefix %q, ttl %d, tls %v, fall %v", bg.Zones, bg.etcd.Endpoints, bg.prefix, bg.ttl, bg.etcd.TLS, bg.Fall)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ corefile, want string }{
		{"bluegreen {\n colour blue\n}", `Testfile:2 - Error during parsing: unknown property "colour"`},
		{"bluegreen {\n endpoint\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"bluegreen {\n endpoint localhost:2379\n}", `Testfile:2 - Error during parsing: endpoint "localhost:2379" is not an http:// or https:// URL`},
		{"bluegreen {\n endpoint http://\n}", `Testfile:2 - Error during parsing: endpoint "http://"`},
		{"bluegreen {\n prefix\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"bluegreen {\n prefix /a /b\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"bluegreen {\n\n ttl 30s\n}", `Testfile:3 - Error during parsing: ttl: "30s" is not a TTL`},
		{"bluegreen {\n ttl -1\n}", `Testfile:2 - Error during parsing: ttl: "-1" is not a TTL`},
		{"bluegreen {\n ttl 30 60\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"bluegreen {\n credentials coredns\n}", "Testfile:2 - Error during parsing: credentials takes 2 arguments"},
		{"bluegreen {\n tls a b c d\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"bluegreen {\n tls /no/such/cert.pem /no/such/key.pem\n}", "Testfile:2 - Error during parsing: tls: "},
		{"bluegreen {\n endpoint https://etcd:2379\n tls\n endpoint http://etcd:2379\n}", "Testfile:4 - Error during parsing: tls needs https:// endpoints, but endpoint http://etcd:2379 is http://"},
		{"bluegreen {\n tls\n}", "Testfile:2 - Error during parsing: tls needs https:// endpoints, but endpoint http://localhost:2379"},
		{"bluegreen\nbluegreen", "this plugin can only be used once per Server Block"},
		{"bluegreen {\n canary_subnet 24\n}", "Testfile:2 - Error during parsing: canary_subnet takes 2 arguments"},
		{"bluegreen {\n canary_subnet 33 56\n}", "Testfile:2 - Error during parsing: canary_subnet 33 56: want an IPv4 prefix length from 0 to 32"},
		{"bluegreen {\n check_interval 2\n}", `Testfile:2 - Error during parsing: check_interval "2": want a positive duration`},
		{"bluegreen {\n check_timeout -1s\n}", `Testfile:2 - Error during parsing: check_timeout "-1s": want a positive duration`},
		{"bluegreen {\n check_rise 0\n}", `Testfile:2 - Error during parsing: check_rise "0": want a count from 1 to 100`},
		{"bluegreen {\n check_fall x\n}", `Testfile:2 - Error during parsing: check_fall "x": want a count`},
		{"bluegreen {\n failover no\n}", "Testfile:2 - Error during parsing: failover takes on or off"},
		{"bluegreen {\n ready\n}", "Testfile:2 - Error during parsing: ready takes on or off"},
		{"bluegreen {\n name_metrics -1\n}", `Testfile:2 - Error during parsing: name_metrics "-1": want a count from 0 to 100000`},
		{"bluegreen {\n name_metrics\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"bluegreen {\n check_interval 1s\n check_timeout 2s\n}", "Testfile:3 - Error during parsing: check_timeout 2s is longer than check_interval 1s"},
		{"bluegreen {\n check_interval 500ms\n failover on\n}", "Testfile:2 - Error during parsing: check_timeout 1s is longer than check_interval 500ms"},
		{"bluegreen {\n preview\n}", "Testfile:2 - Error during parsing: Wrong argument count"},
		{"bluegreen {\n preview 10.0.0.0/33\n}", `Testfile:2 - Error during parsing: preview: "10.0.0.0/33" is not a network`},
		{"bluegreen {\n ns\n}", "Testfile:2 - Error during parsing: ns takes a name and its addresses"},
		{"bluegreen {\n ns ns1.example.org 192.0.2.300\n}", `Testfile:2 - Error during parsing: ns ns1.example.org: "192.0.2.300" is not an IP address`},
		{"bluegreen {\n max_ttl 1h\n}", `Testfile:2 - Error during parsing: max_ttl: "1h" is not a TTL`},
		{"bluegreen {\n ttl 7200\n}", "Testfile:2 - Error during parsing: ttl 7200 is above max_ttl 3600"},
		{"bluegreen {\n ttl 600\n failover on\n max_ttl 60\n}", "Testfile:4 - Error during parsing: ttl 600 is above max_ttl 60"},
	}
	for _, tc := range tests {
		_, err := parse(caddy.NewTestController("dns", tc.corefile))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want one containing %q", tc.corefile, err, tc.want)
		}
	}
}

func TestParseKeepsPasswordOutOfErrors(t *testing.T) {
	_, err := parse(caddy.NewTestController("dns", "bluegreen {\n credentials coredns s3cret extra\n}"))
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error %v: want an error that does not show the password", err)
	}
}

func TestParseSnapshot(t *testing.T) {
	bg, err := parse(caddy.NewTestController("dns", "bluegreen {\n snapshot /var/lib/coredns/bluegreen.json\n}"))
	if err != nil || bg.stateFile != "/var/lib/coredns/bluegreen.json" {
		t.Errorf("snapshot: %q, %v", bg.stateFile, err)
	}
	if _, err := parse(caddy.NewTestController("dns", "bluegreen {\n snapshot\n}")); err == nil || !strings.Contains(err.Error(), "Testfile:2") {
		t.Errorf("snapshot without a file: error %v, want one naming line 2", err)
	}
}

package test

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// exchangeFrom asks addr over UDP from the local address from, which may
// be any loopback address: 127.0.0.2 is a different client from 127.0.0.1.
func exchangeFrom(t *testing.T, from, addr string, m *dns.Msg) *dns.Msg {
	t.Helper()
	c := &dns.Client{Timeout: 2 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(from)}}}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%v from %s: %v", m.Question, from, err)
	}
	return r
}

// Previews and the TXT state answer only the preview networks; the name
// itself answers everyone. Counted.
func TestPreviewOnlyForTrustedClients(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.1", "10.0.2.1")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "preview 127.0.0.1", "prometheus localhost:0"))
	waitFor(t, "app.example.org served", 5*time.Second, func() bool {
		m, err := exchange("udp", udp, "app.example.org", dns.TypeA)
		return err == nil && len(m.Answer) == 1
	})
	refused := metricValue(t, "coredns_bluegreen_previews_refused_total")
	for _, tc := range []struct {
		from, qname string
		qtype       uint16
		rcode       int
		answers     int
	}{
		{"127.0.0.1", "green.app.example.org", dns.TypeA, dns.RcodeSuccess, 1},
		{"127.0.0.1", "_bluegreen.app.example.org", dns.TypeTXT, dns.RcodeSuccess, 1},
		{"127.0.0.2", "app.example.org", dns.TypeA, dns.RcodeSuccess, 1},
		{"127.0.0.2", "green.app.example.org", dns.TypeA, dns.RcodeRefused, 0},
		{"127.0.0.2", "blue.app.example.org", dns.TypeA, dns.RcodeRefused, 0},
		{"127.0.0.2", "_bluegreen.app.example.org", dns.TypeTXT, dns.RcodeRefused, 0},
	} {
		q := new(dns.Msg)
		q.SetQuestion(dns.Fqdn(tc.qname), tc.qtype)
		r := exchangeFrom(t, tc.from, udp, q)
		if r.Rcode != tc.rcode || len(r.Answer) != tc.answers {
			t.Errorf("%s from %s: %s with %d answers, want %s with %d", tc.qname, tc.from, dns.RcodeToString[r.Rcode], len(r.Answer), dns.RcodeToString[tc.rcode], tc.answers)
		}
	}
	if got := metricValue(t, "coredns_bluegreen_previews_refused_total") - refused; got != 3 {
		t.Errorf("previews_refused_total went up by %v, want 3", got)
	}
}

// An anonymous client gets at most 1,232 bytes over UDP, whatever size it
// claims, and TC with them when the answer is larger; never silence.
func TestAnswersBoundedOverUDP(t *testing.T) {
	etcd := startEtcd(t)
	var addrs []string
	for i := range 64 {
		addrs = append(addrs, fmt.Sprintf("2001:db8::%x", i+1))
	}
	etcd.putName(t, "big.example.org", "blue", strings.Join(addrs, ","), "10.0.2.1")
	_, udp, tcp := startCoreDNS(t, corefile(etcd.endpoint, ""))
	waitFor(t, "big.example.org served", 5*time.Second, func() bool {
		m, err := exchange("tcp", tcp, "big.example.org", dns.TypeAAAA)
		return err == nil && len(m.Answer) == 64
	})
	for _, tc := range []struct {
		qtype uint16
		edns  uint16 // 0 for none
	}{{dns.TypeAAAA, 0}, {dns.TypeAAAA, 4096}, {dns.TypeAAAA, 65535}, {dns.TypeANY, 65535}} {
		q := new(dns.Msg)
		q.SetQuestion("big.example.org.", tc.qtype)
		if tc.edns != 0 {
			q.SetEdns0(tc.edns, false)
		}
		size, r := udpExchange(t, udp, q)
		limit := 1232
		if tc.edns == 0 {
			limit = 512
		}
		if size > limit {
			t.Errorf("%s with EDNS %d: %d bytes, want at most %d", dns.TypeToString[tc.qtype], tc.edns, size, limit)
		}
		if tc.qtype == dns.TypeAAAA && !r.Truncated {
			t.Errorf("%s with EDNS %d: 64 AAAA records cut to %d without TC", dns.TypeToString[tc.qtype], tc.edns, len(r.Answer))
		}
		wire, _ := q.Pack()
		t.Logf("%s with EDNS %d: a %d-byte query got %d bytes (x%.1f), TC %v", dns.TypeToString[tc.qtype], tc.edns, len(wire), size, float64(size)/float64(len(wire)), r.Truncated)
	}
}

// The Corefile's zone options reach the answers: ns names the name
// servers, max_ttl bounds the ttl keys, check_networks the probes.
func TestZoneOptions(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.1", "10.0.2.1")
	etcd.put(t, "/bluegreen/app.example.org/ttl", "7200")
	etcd.put(t, "/bluegreen/app.example.org/check", "tcp://:1")
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "ns ns1.example.org 192.0.2.1\n\t\tmax_ttl 600\n\t\tcheck_networks 10.0.1.0/24"))
	waitFor(t, "app.example.org served", 5*time.Second, func() bool {
		m, err := exchange("udp", udp, "app.example.org", dns.TypeA)
		return err == nil && len(m.Answer) == 1
	})
	if got := answers(query(t, "udp", udp, "example.org", dns.TypeNS)); len(got) != 1 || got[0] != "NS ns1.example.org." {
		t.Errorf("NS at the apex: %v", got)
	}
	if got := answers(query(t, "udp", udp, "ns1.example.org", dns.TypeA)); len(got) != 1 || got[0] != "A 192.0.2.1" {
		t.Errorf("the name server's address: %v", got)
	}
	if m := query(t, "udp", udp, "app.example.org", dns.TypeA); m.Answer[0].Header().Ttl != 30 {
		t.Errorf("ttl 7200 above max_ttl 600 answered with TTL %d, want the default 30", m.Answer[0].Header().Ttl)
	}
	txt := stateTXT(t, udp, "app.example.org")
	for _, want := range []string{`"ignored=ttl: ttl 7200 is above the maximum of 600 seconds`, `"unchecked=10.0.2.1"`} {
		if !strings.Contains(txt, want) {
			t.Errorf("TXT state %s lacks %s", txt, want)
		}
	}
}

// udpExchange sends q to addr over UDP and returns the size of the reply
// as it came over the wire, and the reply.
func udpExchange(t *testing.T, addr string, q *dns.Msg) (int, *dns.Msg) {
	t.Helper()
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	wire, _ := q.Pack()
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write(wire); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65535)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("%v: no reply: %v", q.Question, err)
	}
	r := new(dns.Msg)
	if err := r.Unpack(buf[:n]); err != nil {
		t.Fatalf("%v: %v", q.Question, err)
	}
	return n, r
}

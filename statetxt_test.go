package bluegreen

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

func TestTXTStrings(t *testing.T) {
	long := txtStrings([]string{strings.Repeat("x", 600)})
	if len(long) != 3 || len(long[0]) != 255 || len(long[2]) != 90 {
		t.Errorf("txtStrings of 600 octets gave pieces of %d", len(long))
	}
	// Control bytes and backslashes are shown, never sent; an escape is
	// never split between two character-strings.
	got := txtStrings([]string{"ignored=a\x00\x07\x1b[2J\\b", strings.Repeat("y", 254) + "\x1b"})
	want := []string{`ignored=a\\000\\007\\027[2J\\\\b`, strings.Repeat("y", 254), `\\027`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("txtStrings = %q, want %q", got, want)
	}
}

// However many problems and down addresses a name has, its state fits in
// one answer: the lists are cut with a count of the rest.
func TestStateTXTFitsOneAnswer(t *testing.T) {
	kvs := []string{"app.example.org/active=blue", "app.example.org/blue=" + addresses("10.1", 64), "app.example.org/green=" + addresses("10.2", 64), "app.example.org/check=tcp://:80"}
	for i := range 1000 {
		kvs = append(kvs, fmt.Sprintf("app.example.org/%s=x", strings.Repeat("f", 90)+fmt.Sprint(i)))
	}
	bg := testPlugin(t, kvs...)
	for _, a := range strings.Split(addresses("10.1", 64)+","+addresses("10.2", 64), ",") {
		report(bg.store, app, a, stateDown)
	}

	for _, network := range []string{"udp", "tcp"} {
		rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: network == "tcp"})
		q := test.Case{Qname: "_bluegreen." + app, Qtype: dns.TypeTXT}.Msg()
		bg.ServeDNS(context.Background(), request.NewScrubWriter(q, rec), q) // as the server writes
		wire, err := rec.Msg.Pack()
		if err != nil {
			t.Fatalf("%s: the state does not pack: %v", network, err)
		}
		if network == "udp" {
			if !rec.Msg.Truncated || len(wire) > 512 {
				t.Errorf("udp: %d bytes, truncated %v; want TC within 512 bytes", len(wire), rec.Msg.Truncated)
			}
			continue
		}
		txt := strings.Join(rec.Msg.Answer[0].(*dns.TXT).Txt, " ")
		if !strings.Contains(txt, "down=10.2.0.64") || !strings.HasSuffix(txt, " ignored=... 999 more") {
			t.Errorf("tcp: want every down address, and the problems cut: %s", txt[len(txt)-600:])
		}
		t.Logf("tcp: state of 128 down addresses and 1,000 ignored keys: %d bytes", len(wire))
	}
}

func addresses(prefix string, n int) string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("%s.0.%d", prefix, i+1))
	}
	return strings.Join(out, ",")
}

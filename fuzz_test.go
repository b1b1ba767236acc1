package bluegreen

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// FuzzKeys puts arbitrary keys and values over a served name. Whatever etcd
// holds, the plugin must not panic, must keep answering a served name, and
// every answer must pack into a valid message.
func FuzzKeys(f *testing.F) {
	f.Add("/bluegreen/app.example.org/active", "green")
	f.Add("/bluegreen/app.example.org/green", "app-v3.example.net")
	f.Add("/bluegreen/app.example.org/blue", "10.0.1.1,2001:db8::1,10.0.1.2")
	f.Add("/bluegreen/app.example.org/ttl", "4294967296")
	f.Add("/bluegreen/app.example.org/blue", "1.2.3.4.example")
	f.Add("/bluegreen/new.example.org/active", "blue")
	f.Add("/bluegreen/x.y.example.org/actve", "green")
	f.Add("/bluegreen//active", "blue")
	f.Add("/bluegreen/example.org/blue", strings.Repeat("a.", 200)+"net")
	f.Fuzz(func(t *testing.T, key, value string) {
		// Loopback targets: the fuzzer may add a check, whose probes dial them.
		bg := testPlugin(t, "app.example.org/active=blue", "app.example.org/blue=127.0.1.1", "app.example.org/green=127.0.2.1")
		bg.store.apply([]keyValue{{key: key, value: value, rev: 8}})
		snap := bg.snap.Load()
		snap.each(func(name string, e *entry) {
			if e.serving() && !e.targets[e.active].Set() {
				t.Fatalf("%s served without a target for its active colour", name)
			}
		})
		if e := snap.get(app); e == nil || !e.serving() {
			t.Fatalf("put %q=%q stopped app.example.org being served", key, value)
		}
		qnames := []string{app, "blue." + app, "green." + app, "_bluegreen." + app}
		if name, _, err := bg.store.parseKey(key); err == nil {
			qnames = append(qnames, name, "blue."+name, "_bluegreen."+name)
		}
		for _, qname := range qnames {
			if _, ok := dns.IsDomainName(qname); !ok {
				continue // too long to be asked
			}
			for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT, dns.TypeANY, dns.TypeSOA} {
				servePacks(t, bg, test.Case{Qname: qname, Qtype: qtype}.Msg())
			}
		}
	})
}

// FuzzQuery sends arbitrary DNS messages to the handler: odd names, any type
// and class, EDNS0, names at the apex. It must not panic, and what it writes
// must pack.
func FuzzQuery(f *testing.F) {
	for _, q := range []struct {
		name  string
		qtype uint16
		class uint16
	}{
		{"app.example.org.", dns.TypeA, dns.ClassINET},
		{"APP.Example.ORG.", dns.TypeAAAA, dns.ClassINET},
		{"green.app.example.org.", dns.TypeCNAME, dns.ClassINET},
		{"_bluegreen.app.example.org.", dns.TypeTXT, dns.ClassINET},
		{"example.org.", dns.TypeSOA, dns.ClassINET},
		{"example.org.", dns.TypeNS, dns.ClassINET},
		{"app.example.org.", dns.TypeA, dns.ClassCHAOS},
		{"a.b.c.d.e.f.example.org.", dns.TypeMX, dns.ClassINET},
		{strings.Repeat("abcdefghi.", 24) + "example.org.", dns.TypeA, dns.ClassINET},
		{".", dns.TypeANY, dns.ClassANY},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, q.qtype)
		m.Question[0].Qclass = q.class
		m.SetEdns0(4096, true)
		if wire, err := m.Pack(); err == nil {
			f.Add(wire)
		}
	}
	// Client subnets, for a name with a canary split.
	for _, ecs := range []*dns.EDNS0_SUBNET{
		{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.ParseIP("192.0.2.0").To4()},
		{Code: dns.EDNS0SUBNET, Family: 2, SourceNetmask: 56, Address: net.ParseIP("2001:db8:1:2::")},
		{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 0, Address: net.IPv4zero.To4()},
	} {
		m := new(dns.Msg)
		m.SetQuestion("split.example.org.", dns.TypeA)
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, ecs)
		if wire, err := m.Pack(); err == nil {
			f.Add(wire)
		}
	}
	bg := testPlugin(f, append(testKeys, "split.example.org/active=blue", "split.example.org/blue=10.0.1.1",
		"split.example.org/green=10.0.2.1", "split.example.org/canary=50")...)
	f.Fuzz(func(t *testing.T, wire []byte) {
		m := new(dns.Msg)
		if m.Unpack(wire) != nil || len(m.Question) != 1 {
			return // CoreDNS's server drops these before any plugin
		}
		servePacks(t, bg, m)
	})
}

// servePacks serves q and checks that a written reply packs.
func servePacks(t *testing.T, bg *BlueGreen, q *dns.Msg) {
	t.Helper()
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := bg.ServeDNS(context.Background(), rec, q); err != nil {
		t.Fatalf("%v: %v", q.Question, err)
	}
	if rec.Msg != nil {
		if _, err := rec.Msg.Pack(); err != nil {
			t.Fatalf("%v: reply does not pack: %v\n%v", q.Question, err, rec.Msg)
		}
	}
}

// FuzzStateTXT puts an arbitrary field and value, and a check with a secret
// in its user, query or fragment, on a served name. Neither the TXT state on
// the wire nor the log may hold the secret or a control byte.
func FuzzStateTXT(f *testing.F) {
	f.Add("actve\x00\x07\x1b[2J", "green", "http://:8080/health", "&x=1", uint8(0))
	f.Add("ttl", "99999999", "https://:8443/ready", "", uint8(1))
	f.Add("check", "http://user:pw@:80/", "http://", ":80/", uint8(2))
	f.Add("blue", strings.Repeat("\\\x1b", 300), "tcp://:", "5432", uint8(0))
	f.Add(strings.Repeat("x", 400), "", "http://:80/a@b", "", uint8(2))
	f.Fuzz(func(t *testing.T, field, value, before, after string, sep uint8) {
		const secret = "s3cr3tT0k3n"
		check := before + "?" + secret + after
		switch sep % 3 {
		case 1:
			check = before + "#" + secret + after
		case 2:
			check = before + secret + "@" + after
		}
		logs := captureLog(t)
		bg := testPlugin(t, "app.example.org/active=blue", "app.example.org/blue=127.0.1.1", "app.example.org/green=127.0.2.1")
		bg.store.apply([]keyValue{
			{key: "/bluegreen/app.example.org/" + field, value: value, rev: 8},
			{key: "/bluegreen/app.example.org/check", value: check, rev: 8},
		})
		rec := dnstest.NewRecorder(&test.ResponseWriter{TCP: true})
		bg.ServeDNS(context.Background(), rec, test.Case{Qname: "_bluegreen." + app, Qtype: dns.TypeTXT}.Msg())
		if rec.Msg == nil || len(rec.Msg.Answer) != 1 {
			t.Fatalf("no TXT state: %v", rec.Msg)
		}
		if _, err := rec.Msg.Pack(); err != nil {
			t.Fatalf("the state does not pack: %v", err)
		}
		// Every octet of the answer's character-strings, as a client reads them.
		buf := make([]byte, dns.MaxMsgSize)
		end, err := dns.PackRR(rec.Msg.Answer[0], buf, 0, nil, false)
		if err != nil {
			t.Fatalf("packing the state: %v", err)
		}
		var shown []byte
		rdata := buf[end-int(rec.Msg.Answer[0].Header().Rdlength) : end]
		for i := 0; i < len(rdata); i += 1 + int(rdata[i]) {
			shown = append(shown, rdata[i+1:i+1+int(rdata[i])]...)
		}
		for _, c := range shown {
			if c < ' ' || c > '~' {
				t.Fatalf("octet %#x in the TXT state: %q", c, shown)
			}
		}
		if strings.Contains(string(shown), secret) {
			t.Fatalf("the secret in the TXT state: %q", shown)
		}
		for _, line := range strings.SplitAfter(logs.String(), "\n") {
			if strings.Contains(line, secret) || strings.ContainsFunc(strings.TrimSuffix(line, "\n"), func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("log line %q", line)
			}
		}
	})
}

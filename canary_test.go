package bluegreen

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// clientNets are 10,000 distinct client /24s.
var clientNets = func() []netip.Addr {
	out := make([]netip.Addr, 10000)
	for i := range out {
		out[i] = netip.AddrFrom4([4]byte{10, byte(i / 256), byte(i % 256), 0})
	}
	return out
}()

// colourFor asks bg for app.example.org as a client in network would, with
// its client subnet, and returns the colour of the answer and the scope of
// the client subnet option that came back.
func colourFor(t *testing.T, bg *BlueGreen, network netip.Addr) (schema.Colour, uint8) {
	t.Helper()
	r := new(dns.Msg)
	r.SetQuestion("app.example.org.", dns.TypeA)
	r.SetEdns0(1232, false)
	opt := r.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IP(network.AsSlice())})
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := bg.ServeDNS(context.Background(), rec, r); err != nil {
		t.Fatal(err)
	}
	c := answered(t, rec.Msg)
	ecs := clientSubnet(rec.Msg)
	if ecs == nil {
		t.Fatalf("answer to %s has no client subnet option", network)
	}
	return c, ecs.SourceScope
}

// answered is the colour an answer of blue=10.0.1.1 / green=10.0.2.1 gives.
func answered(t *testing.T, m *dns.Msg) schema.Colour {
	t.Helper()
	if len(m.Answer) != 1 {
		t.Fatalf("answer %v, want one A record", m.Answer)
	}
	switch a := m.Answer[0].(*dns.A).A.String(); a {
	case "10.0.1.1":
		return schema.Blue
	case "10.0.2.1":
		return schema.Green
	default:
		t.Fatalf("answer %s is neither colour", a)
		return schema.Blue
	}
}

func canaryPlugin(t *testing.T, active string, canary int) *BlueGreen {
	return testPlugin(t, "app.example.org/active="+active, "app.example.org/blue=10.0.1.1",
		"app.example.org/green=10.0.2.1", fmt.Sprintf("app.example.org/canary=%d", canary))
}

func TestCanaryShare(t *testing.T) {
	for _, active := range schema.Colours {
		for _, canary := range []int{0, 1, 10, 50, 90, 100} {
			bg := canaryPlugin(t, active.String(), canary)
			idle := 0
			for _, n := range clientNets {
				c, scope := colourFor(t, bg, n)
				if c != active {
					idle++
				}
				if want := uint8(24); canary%100 != 0 && scope != want {
					t.Fatalf("canary %d: client subnet scope %d, want %d: the answer depends on the /24", canary, scope, want)
				} else if canary%100 == 0 && scope != 0 {
					t.Fatalf("canary %d: client subnet scope %d, want 0: everyone gets the same answer", canary, scope)
				}
			}
			share := 100 * float64(idle) / float64(len(clientNets))
			t.Logf("active %s, canary %d: %.2f%% of %d client clientNets answered %s", active, canary, share, len(clientNets), active.Other())
			if share < float64(canary)-2 || share > float64(canary)+2 {
				t.Errorf("active %s, canary %d: %.2f%% of clients got the idle colour, want within 2 points", active, canary, share)
			}
		}
	}
}

// A client keeps its colour: by client subnet, and by source address when
// the query has none, for every address of its /24.
func TestCanarySticky(t *testing.T) {
	bg := canaryPlugin(t, "blue", 50)
	first := map[netip.Addr]schema.Colour{}
	for round := range 3 {
		for _, n := range clientNets[:1000] {
			c, _ := colourFor(t, bg, n)
			if was, ok := first[n]; ok && was != c {
				t.Fatalf("round %d: client network %s moved from %s to %s", round, n, was, c)
			}
			first[n] = c
		}
	}
	for _, n := range clientNets[:1000] {
		for _, host := range []byte{1, 77, 254} {
			src := n.As4()
			src[3] = host
			r := new(dns.Msg)
			r.SetQuestion("app.example.org.", dns.TypeA)
			rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: netip.AddrFrom4(src).String()})
			bg.ServeDNS(context.Background(), rec, r)
			if c := answered(t, rec.Msg); c != first[n] {
				t.Fatalf("source %s got %s; its /24 %s got %s by client subnet", netip.AddrFrom4(src), c, n, first[n])
			}
		}
	}
}

// Raising the share only moves clients to the idle colour and lowering it
// only moves them back; a flip with the share unchanged moves only clients
// of the old idle colour. So canary 10, 30, 60, flip, 0 never sends a client
// back to blue once the canary is over.
func TestCanaryMonotone(t *testing.T) {
	steps := []struct {
		active string
		canary int
	}{{"blue", 0}, {"blue", 10}, {"blue", 30}, {"blue", 60}, {"blue", 30}, {"blue", 60}, {"green", 60}, {"green", 30}, {"green", 0}}
	var before []schema.Colour
	for i, step := range steps {
		bg := canaryPlugin(t, step.active, step.canary)
		now := make([]schema.Colour, len(clientNets))
		for j, n := range clientNets {
			now[j], _ = colourFor(t, bg, n)
		}
		if i > 0 {
			prev := steps[i-1]
			moved := 0
			for j := range clientNets {
				if before[j] == now[j] {
					continue
				}
				moved++
				// The only colour a step may move a client to.
				var allowed schema.Colour
				active, _ := schema.ParseColour(step.active)
				switch {
				case step.active != prev.active: // a flip: only to the old active colour, now idle
					allowed = active.Other()
				case step.canary > prev.canary: // to the idle colour
					allowed = active.Other()
				default: // back to the active colour
					allowed = active
				}
				if now[j] != allowed {
					t.Fatalf("step %d (%s %d): client %s moved from %s to %s", i, step.active, step.canary, clientNets[j], before[j], now[j])
				}
			}
			t.Logf("step %d: active %s, canary %d: %d of %d client clientNets moved", i, step.active, step.canary, moved, len(clientNets))
		}
		before = now
	}
}

// The scope answered is in the terms of the client subnet's own family: an
// IPv4 client sent as an IPv4-mapped IPv6 subnet is split as its IPv4 /24,
// which is an IPv6 /120.
func TestCanaryScopeOfMappedSubnet(t *testing.T) {
	for _, tc := range []struct {
		ecs     dns.EDNS0_SUBNET
		network string
		scope   uint8
	}{
		{dns.EDNS0_SUBNET{Family: 1, SourceNetmask: 32, Address: net.ParseIP("10.0.0.1")}, "10.0.0.0", 24},
		{dns.EDNS0_SUBNET{Family: 2, SourceNetmask: 128, Address: net.ParseIP("::ffff:10.0.0.1")}, "10.0.0.0", 120},
		{dns.EDNS0_SUBNET{Family: 2, SourceNetmask: 112, Address: net.ParseIP("::ffff:10.0.0.0")}, "10.0.0.0", 112},
		{dns.EDNS0_SUBNET{Family: 2, SourceNetmask: 64, Address: net.ParseIP("2001:db8:1:2::")}, "2001:db8:1::", 56},
	} {
		// As a client sends it: packed and unpacked, as the server reads it.
		m := new(dns.Msg)
		m.SetQuestion("app.example.org.", dns.TypeA)
		m.SetEdns0(1232, false)
		ecs := tc.ecs
		ecs.Code = dns.EDNS0SUBNET
		m.IsEdns0().Option = append(m.IsEdns0().Option, &ecs)
		wire, err := m.Pack()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Unpack(wire); err != nil {
			t.Fatal(err)
		}
		got, scope := network(&test.ResponseWriter{}, clientSubnet(m), defaultCanaryV4, defaultCanaryV6)
		if got.String() != tc.network || scope != tc.scope {
			t.Errorf("%s/%d (family %d): network %s, scope %d; want %s, %d", tc.ecs.Address, tc.ecs.SourceNetmask, tc.ecs.Family, got, scope, tc.network, tc.scope)
		}
	}
}

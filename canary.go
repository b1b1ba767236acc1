package bluegreen

import (
	"net"
	"net/netip"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/miekg/dns"
)

// The canary split sends a share of a name's clients to its idle colour.
// A client is known by its network, and each network has a fixed slot per
// name, from a hash; the slots below a cut answer green, those above blue.
// Raising the share moves the cut one way only, so a client that went to
// the idle colour stays there, and every replica of CoreDNS agrees.

// slots is the resolution of the split: 100 per percent.
const slots = 10000

// Prefix lengths that make a client's network, unless the Corefile says.
const (
	defaultCanaryV4 = 24
	defaultCanaryV6 = 56
)

// canaryColour is the colour a client in slot s gets when active is the
// active colour and share percent go to the idle one. When blue is active
// green gets the slots below share; when green is, below 100-share. So a
// flip with the share unchanged moves only the clients between the two cuts.
func canaryColour(active schema.Colour, share uint8, s uint32) schema.Colour {
	cut := uint32(share) * (slots / 100)
	if active == schema.Green {
		cut = slots - cut
	}
	if s < cut {
		return schema.Green
	}
	return schema.Blue
}

// slot is where a client network falls for a name: FNV-1a over both, then
// a mixer, since FNV alone spreads short, similar inputs poorly.
func slot(name string, network netip.Addr) uint32 {
	const prime = 1099511628211
	h := uint64(14695981039346656037)
	for i := 0; i < len(name); i++ {
		h = (h ^ uint64(name[i])) * prime
	}
	b := network.As16() // an IPv4 network as IPv4-mapped: never equal to an IPv6 one
	for _, c := range b {
		h = (h ^ uint64(c)) * prime
	}
	h ^= h >> 30 // splitmix64's finalizer
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return uint32(h % slots)
}

// clientSubnet returns the query's EDNS0 client-subnet option, or nil.
func clientSubnet(r *dns.Msg) *dns.EDNS0_SUBNET {
	o := r.IsEdns0()
	if o == nil {
		return nil
	}
	for _, opt := range o.Option {
		if s, ok := opt.(*dns.EDNS0_SUBNET); ok {
			return s
		}
	}
	return nil
}

// network is the client's network for the split: the client subnet when
// the query has one, else the source address, cut to v4 or v6 bits. It also
// returns the scope to answer the client subnet with: the bits of it used,
// 0 when the source address was used instead.
func network(w dns.ResponseWriter, ecs *dns.EDNS0_SUBNET, v4, v6 uint8) (netip.Addr, uint8) {
	var addr netip.Addr
	bits := 128
	fromECS := ecs != nil && ecs.SourceNetmask > 0 // a resolver sends /0 when it will not tell
	// An IPv4 client in an IPv6 client subnet (::ffff:10.0.0.1/120) is cut
	// as IPv4, and its scope counts the 96 bits of ::ffff:0:0/96 too.
	mapped := 0
	if fromECS {
		addr, _ = netip.AddrFromSlice(ecs.Address)
		bits = int(ecs.SourceNetmask)
		if ecs.Family == 2 && addr.Is4In6() {
			mapped = 96
			bits = max(bits-mapped, 0)
		}
	} else {
		switch a := w.RemoteAddr().(type) {
		case *net.UDPAddr:
			addr, _ = netip.AddrFromSlice(a.IP)
		case *net.TCPAddr:
			addr, _ = netip.AddrFromSlice(a.IP)
		default:
			if ap, err := netip.ParseAddrPort(a.String()); err == nil {
				addr = ap.Addr()
			}
		}
	}
	addr = addr.Unmap()
	if addr.Is4() {
		bits = min(bits, int(v4))
	} else {
		bits = min(bits, int(v6))
	}
	p, err := addr.Prefix(bits)
	if err != nil || !fromECS {
		return p.Addr(), 0
	}
	return p.Addr(), uint8(min(bits+mapped, int(ecs.SourceNetmask)))
}

// echoSubnet answers a query that carried a client subnet with the option
// back, its scope saying how wide a network the answer holds for (RFC 7871):
// 0 when it holds for everyone, so that resolvers cache it once.
func echoSubnet(m *dns.Msg, ecs *dns.EDNS0_SUBNET, scope uint8) {
	m.SetEdns0(dns.DefaultMsgSize, false) // the server sets size and DO bit as the query asked
	opt := m.IsEdns0()
	opt.Option = append(opt.Option, &dns.EDNS0_SUBNET{
		Code:          dns.EDNS0SUBNET,
		Family:        ecs.Family,
		SourceNetmask: ecs.SourceNetmask,
		SourceScope:   scope,
		Address:       ecs.Address,
	})
}

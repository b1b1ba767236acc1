package bluegreen

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// networks is a list of IP networks, from a Corefile option.
type networks []netip.Prefix

// defaultPreview are the networks whose clients see previews and states
// when the preview option is absent: loopback and private ones, where the
// people running a release are.
var defaultPreview = mustNetworks("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")

// parseNetworks reads networks written as CIDR prefixes or single addresses.
func parseNetworks(args []string) (networks, error) {
	var out networks
	for _, a := range args {
		var p netip.Prefix
		var err error
		if strings.Contains(a, "/") {
			p, err = netip.ParsePrefix(a)
		} else {
			var ip netip.Addr
			ip, err = netip.ParseAddr(a)
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if err != nil {
			return nil, fmt.Errorf("%q is not a network such as 10.0.0.0/8 or an address", a)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func mustNetworks(args ...string) networks {
	n, err := parseNetworks(args)
	if err != nil {
		panic(err)
	}
	return n
}

// contains reports whether ip is in one of the networks; an IPv4 address
// mapped into IPv6 counts as IPv4.
func (n networks) contains(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range n {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// remoteIP is the address a query came from.
func remoteIP(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.TCPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr
}

package bluegreen

import (
	"fmt"
	"net"
	"slices"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnsutil"
	"github.com/miekg/dns"
)

// The zone's own records: the SOA and NS records at each apex and the
// addresses of the name servers, so that a zone served by bluegreen alone
// is one DNS checkers accept.

// A nameServer is one NS record of the zones, with the addresses answered
// for it when it lies in a zone the plugin serves.
type nameServer struct {
	name  string // fully qualified, lowercase
	addrs []net.IP
}

// listenAddrs are the addresses of the default name server ns.dns.ZONE,
// named as the kubernetes plugin names its own: the addresses the server
// block's bind plugin names (loopback too), or, when it listens on all of
// them, every address of the host's interfaces but loopback and link-local
// ones.
func listenAddrs(listen []string) []net.IP {
	var ips []net.IP
	if len(listen) == 0 || listen[0] == "" {
		ifaddrs, _ := net.InterfaceAddrs()
		for _, a := range ifaddrs {
			if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				ips = append(ips, n.IP)
			}
		}
		return ips
	}
	for _, h := range listen {
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			ips = append(ips, ip)
		}
	}
	return ips
}

// parseNameServer reads the ns option's arguments: NAME ADDRESS...
func parseNameServer(args []string) (nameServer, error) {
	if len(args) == 0 {
		return nameServer{}, fmt.Errorf("ns takes a name and its addresses")
	}
	name := strings.ToLower(dns.Fqdn(args[0]))
	if _, ok := dns.IsDomainName(name); !ok {
		return nameServer{}, fmt.Errorf("ns %s: not a domain name", args[0])
	}
	ns := nameServer{name: name}
	for _, a := range args[1:] {
		ip := net.ParseIP(a)
		if ip == nil {
			return nameServer{}, fmt.Errorf("ns %s: %q is not an IP address", args[0], a)
		}
		ns.addrs = append(ns.addrs, ip)
	}
	return ns, nil
}

// nameServersByZone are the name servers of each zone: those of the ns
// option, or the default one at the addresses listened on.
func nameServersByZone(zones []string, option []nameServer, listen []net.IP) map[string][]nameServer {
	out := make(map[string][]nameServer, len(zones))
	for _, z := range zones {
		out[z] = option
		if len(option) == 0 {
			out[z] = []nameServer{{name: dnsutil.Join("ns.dns", z), addrs: listen}}
		}
	}
	return out
}

// soa is the zone's SOA. Its serial follows the etcd revision. Refresh,
// retry and expire are RIPE-203's recommendations; nothing transfers the
// zone, but checkers read them. The record's TTL is the default TTL, so that
// resolvers, which cache a negative answer for the lower of that and the
// minimum (RFC 2308), never cache a miss for longer than a hit.
func (bg *BlueGreen) soa(zone string, rev int64) *dns.SOA {
	return &dns.SOA{
		Hdr:     header(zone, dns.TypeSOA, bg.ttl),
		Ns:      bg.nameServers[zone][0].name,
		Mbox:    dnsutil.Join("hostmaster", zone),
		Serial:  uint32(rev),
		Refresh: 86400,
		Retry:   7200,
		Expire:  3600000,
		Minttl:  max(bg.ttl, 300),
	}
}

// nsRecords are the zone's NS records, and in extra the addresses of those
// of its name servers that lie in a zone the plugin serves.
func (bg *BlueGreen) nsRecords(zone string) (ns, extra []dns.RR) {
	for _, s := range bg.nameServers[zone] {
		ns = append(ns, &dns.NS{Hdr: header(zone, dns.TypeNS, bg.ttl), Ns: s.name})
		if plugin.Zones(bg.Zones).Matches(s.name) == "" {
			continue // another server's to answer
		}
		extra = append(extra, bg.nameServerAddrs(s, s.name, dns.TypeA)...)
		extra = append(extra, bg.nameServerAddrs(s, s.name, dns.TypeAAAA)...)
	}
	return ns, extra
}

// nameServer returns the name server named qname, if its addresses are the
// plugin's to answer.
func (bg *BlueGreen) nameServer(qname, zone string) (nameServer, bool) {
	i := slices.IndexFunc(bg.nameServers[zone], func(s nameServer) bool { return s.name == qname })
	if i < 0 {
		return nameServer{}, false
	}
	return bg.nameServers[zone][i], true
}

// aboveNameServer reports whether qname lies between zone's apex and one
// of its name servers: an empty non-terminal, such as dns.example.org above
// ns.dns.example.org.
func (bg *BlueGreen) aboveNameServer(qname, zone string) bool {
	return slices.ContainsFunc(bg.nameServers[zone], func(s nameServer) bool {
		return s.name != qname && dns.IsSubDomain(qname, s.name)
	})
}

// nameServerAddrs are s's addresses of the type asked, as records of owner.
func (bg *BlueGreen) nameServerAddrs(s nameServer, owner string, qtype uint16) []dns.RR {
	var rrs []dns.RR
	for _, ip := range s.addrs {
		switch v4 := ip.To4(); {
		case v4 != nil && qtype == dns.TypeA:
			rrs = append(rrs, &dns.A{Hdr: header(owner, dns.TypeA, bg.ttl), A: v4})
		case v4 == nil && qtype == dns.TypeAAAA:
			rrs = append(rrs, &dns.AAAA{Hdr: header(owner, dns.TypeAAAA, bg.ttl), AAAA: ip})
		}
	}
	return rrs
}

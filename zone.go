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

// defaultNameServer is the name server of zone when the Corefile names none,
// as the kubernetes plugin names its own: ns.dns.ZONE, at the addresses
// CoreDNS listens on.
func defaultNameServer(zone string, listen []string) nameServer {
	return nameServer{name: dnsutil.Join("ns.dns", zone), addrs: listenAddrs(listen)}
}

// listenAddrs are the addresses a server block listens on: those its bind
// plugin names (loopback too), or, when it listens on all of them, every
// address of the host's interfaces but loopback and link-local ones.
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

// nameServersOf are the name servers of zone: those of the ns option, or
// the default one.
func (bg *BlueGreen) nameServersOf(zone string) []nameServer {
	if len(bg.nameServers) > 0 {
		return bg.nameServers
	}
	return []nameServer{defaultNameServer(zone, bg.listen)}
}

// soa is the zone's SOA. Its serial follows the etcd revision. Refresh,
// retry and expire are RIPE-203's recommendations; nothing transfers the
// zone, but checkers read them. The record's TTL is the default TTL, so that
// resolvers, which cache a negative answer for the lower of that and the
// minimum (RFC 2308), never cache a miss for longer than a hit.
func (bg *BlueGreen) soa(zone string, rev int64) *dns.SOA {
	return &dns.SOA{
		Hdr:     header(zone, dns.TypeSOA, bg.ttl),
		Ns:      bg.nameServersOf(zone)[0].name,
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
	for _, s := range bg.nameServersOf(zone) {
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
	i := slices.IndexFunc(bg.nameServersOf(zone), func(s nameServer) bool { return s.name == qname })
	if i < 0 {
		return nameServer{}, false
	}
	return bg.nameServersOf(zone)[i], true
}

// aboveNameServer reports whether qname lies between zone's apex and one
// of its name servers: an empty non-terminal, such as dns.example.org above
// ns.dns.example.org.
func (bg *BlueGreen) aboveNameServer(qname, zone string) bool {
	return slices.ContainsFunc(bg.nameServersOf(zone), func(s nameServer) bool {
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

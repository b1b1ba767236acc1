package bluegreen

import (
	"context"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
)

// ServeDNS implements plugin.Handler. It answers from the current snapshot
// and never waits on etcd.
func (bg *BlueGreen) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	state := request.Request{W: w, Req: r}
	qname := state.Name()
	zone := plugin.Zones(bg.Zones).Matches(qname)
	if zone == "" || state.QClass() != dns.ClassINET {
		return plugin.NextOrFailure(bg.Name(), bg.Next, ctx, w, r)
	}
	qtype := state.QType()
	// The zone lives in memory, not in a file: there is nothing to
	// transfer, and nothing to be notified of. With fallthrough, a plugin
	// after this one may hold the zone.
	if r.Opcode != dns.OpcodeQuery || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR {
		if bg.Fall.Through(qname) {
			return plugin.NextOrFailure(bg.Name(), bg.Next, ctx, w, r)
		}
		if r.Opcode != dns.OpcodeQuery {
			return dns.RcodeNotImplemented, nil
		}
		return dns.RcodeRefused, nil
	}

	snap := bg.snap.Load()
	if snap == nil { // etcd has not been listed yet: no answer is better than a wrong one
		if bg.Fall.Through(qname) {
			return plugin.NextOrFailure(bg.Name(), bg.Next, ctx, w, r)
		}
		return dns.RcodeServerFailure, nil
	}
	e, asks := snap.lookup(qname)
	// Previews and states are for the people running the release.
	if e != nil && asks != askName && !bg.preview.contains(remoteIP(w.RemoteAddr())) {
		previewsRefusedTotal.WithLabelValues(metrics.WithServer(ctx)).Inc()
		return dns.RcodeRefused, nil
	}
	ns, isNS := bg.nameServer(qname, zone)
	isNS = isNS && e == nil
	// A name that is not served answers only its TXT state. With
	// fallthrough, the plugin that holds the rest of the zone answers its
	// SOA and NS, even beside a managed name at the apex: one zone, one SOA.
	apexRecords := qname == zone && (qtype == dns.TypeSOA || qtype == dns.TypeNS)
	if ((e == nil || (!e.serving() && asks != askState)) && !isNS || apexRecords) && bg.Fall.Through(qname) {
		return plugin.NextOrFailure(bg.Name(), bg.Next, ctx, w, r)
	}

	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	ecs := clientSubnet(r)
	var scope uint8 // of the client subnet: how much of it the answer depends on
	switch {
	case qname == zone && qtype == dns.TypeSOA:
		m.Answer = []dns.RR{bg.soa(zone, snap.rev)}
	case qname == zone && qtype == dns.TypeNS:
		m.Answer, m.Extra = bg.nsRecords(zone)
	case qtype == dns.TypeANY && (isNS || (qname == zone && e == nil)):
		m.Answer = []dns.RR{rfc8482(state.QName(), bg.ttl)}
	case isNS:
		m.Answer = bg.nameServerAddrs(ns, state.QName(), qtype)
	case e == nil && (qname == zone || bg.aboveNameServer(qname, zone)): // exists: no data
	case e == nil:
		m.Rcode = dns.RcodeNameError
	case asks == askState:
		if qtype == dns.TypeTXT || qtype == dns.TypeANY {
			m.Answer = []dns.RR{&dns.TXT{Hdr: header(state.QName(), dns.TypeTXT, 0), Txt: e.stateTXT(bg.store.synced.Load(), snap.stale)}}
		}
	case !e.serving(): // no data: the name exists, or its TXT state below it does
	default:
		var c schema.Colour
		c, scope = bg.colourFor(e, asks, qname, w, ecs)
		t := e.targets[c]
		if qtype == dns.TypeANY && t.CNAME == "" && t.Set() {
			m.Answer = []dns.RR{rfc8482(state.QName(), e.ttl)}
		} else {
			m.Answer = answer(state.QName(), qtype, t, e.ttl)
		}
		if t.CNAME != "" && (qtype == dns.TypeA || qtype == dns.TypeAAAA) {
			rrs, chased := bg.chase(ctx, state, t.CNAME)
			// Names that point at each other bring back their CNAMEs at
			// every turn; each goes in once.
			m.Answer = dns.Dedup(append(m.Answer, rrs...), nil)
			scope = max(scope, chased)
		}
		if t.Set() {
			answersTotal.WithLabelValues(metrics.WithServer(ctx), c.String()).Inc()
			if n := e.answers; n != nil {
				n[c].Add(1)
			}
		}
	}
	if len(m.Answer) == 0 {
		m.Ns = []dns.RR{bg.soa(zone, snap.rev)}
	}
	if ecs != nil {
		echoSubnet(m, ecs, scope)
	}
	fit(state, m)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

// maxUDPSize caps answers over UDP, whatever size a client claims it takes:
// the size DNS Flag Day 2020 set, which bounds what a spoofed query can make
// this server send to its victim. A larger answer is truncated, and the
// client asks again over TCP.
const maxUDPSize = 1232

// fit holds a UDP answer to maxUDPSize when the client claims to take more;
// the server's scrub writer truncates every other answer to what the client
// takes, setting TC, so that a client asks again over TCP instead of
// waiting for its timeout.
func fit(state request.Request, m *dns.Msg) {
	if state.Proto() == "udp" && state.Size() > maxUDPSize {
		m.Truncate(maxUDPSize)
	}
}

// rfc8482 is the answer to ANY at a name with data: one synthesized HINFO
// record (RFC 8482) instead of every record, so that ANY is no lever for
// amplification.
func rfc8482(name string, ttl uint32) dns.RR {
	return &dns.HINFO{Hdr: header(name, dns.TypeHINFO, ttl), Cpu: "RFC8482"}
}

// colourFor is the colour that what is asked of e answers this client, and
// how many bits of its client subnet the choice depends on.
func (bg *BlueGreen) colourFor(e *entry, asks asked, qname string, w dns.ResponseWriter, ecs *dns.EDNS0_SUBNET) (schema.Colour, uint8) {
	switch {
	case asks == askBlue:
		return schema.Blue, 0
	case asks == askGreen:
		return schema.Green, 0
	case e.share == 0:
		return e.answering(), 0
	case e.share == 100: // everyone, whatever their network
		return e.active.Other(), 0
	}
	network, scope := network(w, ecs, bg.canaryV4, bg.canaryV6)
	return canaryColour(e.active, e.share, slot(qname, network)), scope
}

// maxChase bounds how many CNAMEs of managed names one answer follows, so
// that names that point at each other end in a CNAME instead of a loop.
const maxChase = 8

type chaseKey struct{}

// chase resolves a CNAME target through the whole server, as the template
// and file plugins do, so that a client gets the target's records in the
// same answer. The lookup carries the query's client subnet; it returns the
// scope the target's answer came back with, which the whole answer then
// depends on too (a canary split at the target, say). It returns nothing
// when the target does not resolve.
func (bg *BlueGreen) chase(ctx context.Context, state request.Request, target string) ([]dns.RR, uint8) {
	depth, _ := ctx.Value(chaseKey{}).(int)
	if depth >= maxChase {
		return nil, 0
	}
	ctx = context.WithValue(ctx, chaseKey{}, depth+1)
	m, err := bg.upstream.Lookup(ctx, state, target, state.QType())
	if err != nil || m == nil || m.Rcode != dns.RcodeSuccess {
		return nil, 0
	}
	var scope uint8
	if ecs := clientSubnet(m); ecs != nil {
		scope = ecs.SourceScope
	}
	return m.Answer, scope
}

// answer is what target t gives for a query of qtype: a CNAME for any type
// when t is a hostname, else t's addresses of the asked family.
func answer(qname string, qtype uint16, t schema.Target, ttl uint32) []dns.RR {
	if t.CNAME != "" {
		return []dns.RR{&dns.CNAME{Hdr: header(qname, dns.TypeCNAME, ttl), Target: t.CNAME}}
	}
	rrs := make([]dns.RR, 0, len(t.A)+len(t.AAAA))
	if qtype == dns.TypeA || qtype == dns.TypeANY {
		for _, ip := range t.A {
			rrs = append(rrs, &dns.A{Hdr: header(qname, dns.TypeA, ttl), A: ip})
		}
	}
	if qtype == dns.TypeAAAA || qtype == dns.TypeANY {
		for _, ip := range t.AAAA {
			rrs = append(rrs, &dns.AAAA{Hdr: header(qname, dns.TypeAAAA, ttl), AAAA: ip})
		}
	}
	return rrs
}

func header(name string, rrtype uint16, ttl uint32) dns.RR_Header {
	return dns.RR_Header{Name: name, Rrtype: rrtype, Class: dns.ClassINET, Ttl: ttl}
}

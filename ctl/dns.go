package ctl

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/miekg/dns"
	"github.com/spf13/pflag"
)

// served is what one CoreDNS server says of a name in its TXT state
// (_bluegreen.NAME): the colour it answers, the name's revision, and the
// revision it has every change of the prefix up to.
type served struct {
	Server   string `json:"server"`
	Answers  string `json:"answers,omitempty"`
	Trial    string `json:"trial,omitempty"`
	TTL      string `json:"ttl,omitempty"`
	Canary   string `json:"-"` // the share of clients on the other colour
	Revision int64  `json:"revision,omitempty"`
	Synced   int64  `json:"synced,omitempty"`
	// What the server's health checks found: a failover, a canary paused
	// because the idle colour is down, the addresses that are down.
	Failover     string   `json:"failover,omitempty"`
	CanaryPaused string   `json:"canary_paused,omitempty"`
	Down         []string `json:"down,omitempty"`
	Error        string   `json:"error,omitempty"`
}

func dnsFlags(fs *pflag.FlagSet, o *options, what string) {
	fs.StringSliceVar(&o.dns, "dns", nil, "CoreDNS servers (ADDR or ADDR:PORT, comma separated) to ask over DNS "+what)
	fs.DurationVar(&o.dnsTimeout, "dns-timeout", 10*time.Second, "how long to wait for a server given to --dns")
}

// servers are the --dns servers as ADDR:PORT, port 53 by default.
func (o *options) servers() ([]string, error) {
	var out []string
	for _, s := range o.dns {
		if _, _, err := net.SplitHostPort(s); err != nil {
			s = net.JoinHostPort(strings.Trim(s, "[]"), "53")
		}
		host, port, _ := net.SplitHostPort(s)
		if net.ParseIP(host) == nil {
			return nil, usagef("--dns %s: want an IP address, with :PORT if not 53", s)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, usagef("--dns %s: bad port", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// ask asks server for name's state, once.
func ask(ctx context.Context, server, name string) served {
	s := served{Server: server}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(schema.StateLabel+"."+name), dns.TypeTXT)
	m.SetEdns0(dns.DefaultMsgSize, false)
	deadline, ok := ctx.Deadline()
	if !ok || time.Until(deadline) > time.Second {
		deadline = time.Now().Add(time.Second)
	}
	cl := &dns.Client{Timeout: time.Until(deadline)}
	r, _, err := cl.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		cl.Net = "tcp"
		r, _, err = cl.ExchangeContext(ctx, m, server)
	}
	switch {
	case err != nil:
		s.Error = "no answer: " + shortNetError(err)
		return s
	case r.Rcode == dns.RcodeRefused:
		s.Error = "REFUSED: the name is outside the server's zones, or bgctl's address outside its preview networks"
		return s
	case r.Rcode != dns.RcodeSuccess:
		s.Error = dns.RcodeToString[r.Rcode]
		return s
	}
	for _, rr := range r.Answer {
		txt, ok := rr.(*dns.TXT)
		if !ok {
			continue
		}
		for _, kv := range txt.Txt {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "active":
				s.Answers = v
			case "trial":
				s.Trial = v
			case "ttl":
				s.TTL = v
			case "canary":
				s.Canary = v
			case "revision":
				s.Revision, _ = strconv.ParseInt(v, 10, 64)
			case "synced":
				s.Synced, _ = strconv.ParseInt(v, 10, 64)
			case "failover": // "blue is down, answering green"
				s.Answers = v[strings.LastIndexByte(v, ' ')+1:]
				s.Failover = v
			case "canary_paused":
				s.CanaryPaused = v
			case "down":
				s.Down = append(s.Down, v)
			}
		}
	}
	if s.Synced == 0 {
		s.Error = "no state for " + name + ": not a name this server manages (or a bluegreen without synced=, older than bgctl)"
	}
	return s
}

// most is the colour the server answers most client networks with: the
// one it answers, unless a canary above 50 %, not paused, sends most to
// the other.
func (s served) most() string {
	share, err := schema.ParseCanary(s.Canary)
	col, cerr := schema.ParseColour(s.Answers)
	if err != nil || cerr != nil || share <= 50 || s.CanaryPaused != "" {
		return s.Answers
	}
	return col.Other().String()
}

// servedTTL is the largest TTL the servers say they answer name with, or
// otherwise, false.
func servedTTL(ctx context.Context, servers []string, name string, otherwise uint32) (uint32, bool) {
	got, _ := until(ctx, servers, name, time.Second, false, func(served) bool { return true })
	var ttl uint64
	known := false
	for _, s := range got {
		if t, err := strconv.ParseUint(s.TTL, 10, 32); s.Error == "" && err == nil {
			ttl, known = max(ttl, t), true
		}
	}
	if !known {
		return otherwise, false
	}
	return uint32(ttl), true
}

// shortNetError is err without the addresses the caller knows already.
func shortNetError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	var se interface{ Timeout() bool }
	if errors.As(err, &se) && se.Timeout() {
		return "timed out"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return msg
}

// until asks every server for name's state until done says it is what
// was asked for, or timeout passes; it returns each server's last state and
// how long it took to get there (negative when it never did). A server that
// does not answer is asked again only with retry.
func until(ctx context.Context, servers []string, name string, timeout time.Duration, retry bool, done func(served) bool) ([]served, []time.Duration) {
	start := time.Now()
	out := make([]served, len(servers))
	took := make([]time.Duration, len(servers))
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var wg sync.WaitGroup
	for i, srv := range servers {
		wg.Go(func() {
			took[i] = -1
			for {
				s := ask(ctx, srv, name)
				if ctx.Err() == nil || out[i].Server == "" { // not an answer cut short by the timeout
					out[i] = s
				}
				if out[i].Error == "" && done(out[i]) {
					took[i] = time.Since(start)
					return
				}
				wait := 10 * time.Millisecond // a server that answers catches up within milliseconds
				if out[i].Error != "" {
					if !retry {
						return
					}
					wait = 200 * time.Millisecond // one that does not may be restarting; no need to flood it
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		})
	}
	wg.Wait()
	return out, took
}

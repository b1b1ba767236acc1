package main

import (
	"encoding/binary"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// latencies is one paced run: the queries sent, those that got no answer or
// a failure, and how long the answers took.
type latencies struct {
	sent, lost    int
	failed        int // answered, but not NOERROR
	p50, p99, max time.Duration
}

// pacedConns share a paced run's queries, so that one socket's buffer is
// not the bottleneck.
const pacedConns = 4

// paced sends rate A queries a second to addr for d, over names in turn,
// and measures each answer's latency: dnsperf reports no percentiles. A
// query not answered within 2s after the last is sent counts as lost.
func paced(addr string, names []string, rate int, d time.Duration) (latencies, error) {
	var l latencies
	queries := make([][]byte, len(names))
	for i, name := range names {
		m := new(dns.Msg)
		m.SetQuestion(name, dns.TypeA)
		var err error
		if queries[i], err = m.Pack(); err != nil {
			return l, err
		}
	}
	type conn struct {
		c    *net.UDPConn
		sent [1 << 16]atomic.Int64 // by query ID: when it was sent, in Unix ns; 0 when answered
	}
	conns := make([]*conn, pacedConns)
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return l, err
	}
	for i := range conns {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return l, err
		}
		c.SetReadBuffer(4 << 20)
		if err := stampArrivals(c); err != nil {
			return l, err
		}
		conns[i] = &conn{c: c}
	}
	start := time.Now()
	var mu sync.Mutex
	var took []time.Duration
	var readErr error
	var answers atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() {
			buf, oob := make([]byte, 1500), make([]byte, 128)
			var got []time.Duration
			failed := 0
			for {
				n, oobn, _, _, err := c.c.ReadMsgUDP(buf, oob)
				if err != nil {
					break // closed at the end
				}
				if n < 12 {
					continue
				}
				arrived, err := arrival(oob[:oobn])
				if err != nil {
					mu.Lock()
					readErr = err
					mu.Unlock()
					break
				}
				if at := c.sent[binary.BigEndian.Uint16(buf)].Swap(0); at != 0 {
					answers.Add(1)
					got = append(got, time.Duration(arrived-at))
					if buf[3]&0xf != dns.RcodeSuccess {
						failed++
					}
				}
			}
			mu.Lock()
			took = append(took, got...)
			l.failed += failed
			mu.Unlock()
		})
	}

	// Every millisecond, send what the rate owes by now.
	tick := time.NewTicker(time.Millisecond)
	total := int(float64(rate) * d.Seconds())
	packet := make([]byte, 512)
	for l.sent < total {
		<-tick.C
		owed := min(total, int(time.Since(start).Seconds()*float64(rate)))
		for ; l.sent < owed; l.sent++ {
			c := conns[l.sent%pacedConns]
			id := uint16(l.sent / pacedConns)
			q := queries[l.sent%len(queries)]
			copy(packet, q)
			binary.BigEndian.PutUint16(packet, id)
			c.sent[id].Store(time.Now().UnixNano())
			if _, err := c.c.Write(packet[:len(q)]); err != nil {
				tick.Stop()
				return l, fmt.Errorf("sending query %d: %w", l.sent, err)
			}
		}
	}
	tick.Stop()
	// Wait for the answers still on their way, then stop the readers.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) && answers.Load() < int64(l.sent) {
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range conns {
		c.c.Close()
	}
	wg.Wait()
	if readErr != nil {
		return l, readErr
	}
	slices.Sort(took)
	l.lost = l.sent - len(took)
	l.p50, l.p99 = percentile(took, 0.5), percentile(took, 0.99)
	if len(took) > 0 {
		l.max = took[len(took)-1]
	}
	return l, nil
}

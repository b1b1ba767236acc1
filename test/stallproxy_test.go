package test

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"

	"golang.org/x/net/http2/hpack"
)

// stallProxy forwards the etcd client's connections to etcd, reading the
// HTTP/2 frames that gRPC sends, so that it can make the watches open at
// one moment deliver nothing from then on, while their streams stay open
// and every other request on the connection is answered: a watch that is
// open but behind, as etcd's own bugs have made them.
type stallProxy struct {
	*proxy

	mu    sync.Mutex
	conns []*h2conn
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	p := &stallProxy{}
	p.proxy = startRelay(t, target, func(client, server net.Conn) {
		hc := &h2conn{client: client, server: server, watches: map[uint32]bool{}, stalled: map[uint32]bool{}}
		p.mu.Lock()
		p.conns = append(p.conns, hc)
		p.mu.Unlock()
		done := make(chan struct{})
		go func() {
			hc.fromServer()
			close(done)
		}()
		hc.fromClient()
		<-done
	})
	return p
}

// stallWatches makes every watch stream open now deliver nothing more, and
// returns how many there are; streams opened later flow.
func (p *stallProxy) stallWatches() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, hc := range p.conns {
		hc.mu.Lock()
		for id := range hc.watches {
			hc.stalled[id] = true
			n++
		}
		hc.mu.Unlock()
	}
	return n
}

// h2conn is one proxied connection.
type h2conn struct {
	client, server net.Conn

	mu      sync.Mutex
	watches map[uint32]bool // streams of etcd's Watch call
	stalled map[uint32]bool
}

// HTTP/2 frame types and flags (RFC 9113, section 6).
const (
	frameData         = 0x0
	frameHeaders      = 0x1
	frameContinuation = 0x9
	flagEndHeaders    = 0x4
	flagPadded        = 0x8
	flagPriority      = 0x20
)

// fromClient forwards the client's frames, and notes the streams that call
// etcd's Watch: the request headers name the method in :path.
func (hc *h2conn) fromClient() {
	defer hc.server.Close()
	preface := make([]byte, len("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"))
	if _, err := io.ReadFull(hc.client, preface); err != nil {
		return
	}
	if _, err := hc.server.Write(preface); err != nil {
		return
	}
	dec := hpack.NewDecoder(4096, nil)
	var block []byte // a header block, across CONTINUATION frames
	var blockStream uint32
	for {
		head, payload, err := readFrame(hc.client)
		if err != nil {
			return
		}
		typ, flags, stream := head[3], head[4], binary.BigEndian.Uint32(head[5:])&0x7fffffff
		switch typ {
		case frameHeaders:
			frag := payload
			if flags&flagPadded != 0 && len(frag) > 0 {
				pad := int(frag[0])
				frag = frag[1:]
				frag = frag[:max(len(frag)-pad, 0)]
			}
			if flags&flagPriority != 0 && len(frag) >= 5 {
				frag = frag[5:]
			}
			block, blockStream = append([]byte(nil), frag...), stream
		case frameContinuation:
			block = append(block, payload...)
		}
		if (typ == frameHeaders || typ == frameContinuation) && flags&flagEndHeaders != 0 {
			fields, err := dec.DecodeFull(block)
			if err != nil {
				return
			}
			for _, f := range fields {
				if f.Name == ":path" && f.Value == "/etcdserverpb.Watch/Watch" {
					hc.mu.Lock()
					hc.watches[blockStream] = true
					hc.mu.Unlock()
				}
			}
		}
		if _, err := hc.server.Write(append(head, payload...)); err != nil {
			return
		}
	}
}

// fromServer forwards the server's frames but the data of stalled streams.
// Headers always go through: the client's header decoder must see every
// block.
func (hc *h2conn) fromServer() {
	defer hc.client.Close()
	for {
		head, payload, err := readFrame(hc.server)
		if err != nil {
			return
		}
		stream := binary.BigEndian.Uint32(head[5:]) & 0x7fffffff
		hc.mu.Lock()
		hold := head[3] == frameData && hc.stalled[stream]
		hc.mu.Unlock()
		if hold {
			continue
		}
		if _, err := hc.client.Write(append(head, payload...)); err != nil {
			return
		}
	}
}

// readFrame reads one frame: its 9-octet header and its payload.
func readFrame(r io.Reader) (head, payload []byte, err error) {
	head = make([]byte, 9)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, nil, err
	}
	n := int(head[0])<<16 | int(head[1])<<8 | int(head[2])
	payload = make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, nil, err
	}
	return head, payload, nil
}

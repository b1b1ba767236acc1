package test

import (
	"io"
	"net"
	"sync"
	"testing"
)

// proxy forwards TCP connections on a loopback port to target. cut closes
// every connection and refuses new ones, as a partition between the plugin
// and etcd would; restore takes connections again on the same port.
type proxy struct {
	addr, target string
	relay        func(client, server net.Conn) // carries one connection until either side ends

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *proxy { return startRelay(t, target, copyBoth) }

// startRelay starts a proxy whose connections relay carries.
func startRelay(t *testing.T, target string, relay func(client, server net.Conn)) *proxy {
	t.Helper()
	p := &proxy{addr: "127.0.0.1:0", target: target, relay: relay, conns: map[net.Conn]bool{}}
	p.restore(t)
	p.addr = p.ln.Addr().String()
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) restore(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.forward(c)
			}()
		}
	}()
}

func (p *proxy) forward(c net.Conn) {
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		c.Close()
		return
	}
	if !p.track(c, up) {
		return
	}
	p.relay(c, up)
}

// copyBoth copies both ways until either side ends, then closes both.
func copyBoth(client, server net.Conn) {
	done := make(chan struct{}, 2)
	go func() { io.Copy(server, client); done <- struct{}{} }()
	go func() { io.Copy(client, server); done <- struct{}{} }()
	<-done
	client.Close()
	server.Close()
	<-done
}

// track records a connection pair, or closes it if the proxy was cut meanwhile.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		p.conns[c] = true
	}
	return true
}

func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

package test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/test/devetcd"
	"github.com/miekg/dns"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// cluster is a real etcd cluster of embedded members on loopback ports.
type cluster struct {
	cfgs      []*embed.Config
	members   []*embed.Etcd // nil while stopped
	endpoints []string
	client    *clientv3.Client
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	c := &cluster{members: make([]*embed.Etcd, n)}
	var initial []string
	for i := range n {
		name, peer, client := fmt.Sprintf("m%d", i), "127.0.0.1:"+freePort(t), "127.0.0.1:"+freePort(t)
		cfg := devetcd.Config(name, t.TempDir(), client, peer)
		cfg.TickMs, cfg.ElectionMs = 10, 100 // elect a new leader quickly
		c.cfgs = append(c.cfgs, cfg)
		c.endpoints = append(c.endpoints, "http://"+client)
		initial = append(initial, name+"=http://"+peer)
	}
	for i, cfg := range c.cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "bluegreen-test"
		e, err := embed.StartEtcd(cfg)
		if err != nil {
			t.Fatal(err)
		}
		c.members[i] = e
	}
	t.Cleanup(func() {
		for i := range c.members {
			c.stop(i)
		}
	})
	for _, e := range c.members {
		if err := devetcd.Ready(e); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	c.client, err = clientv3.New(clientv3.Config{Endpoints: c.endpoints, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.client.Close() })
	return c
}

func (c *cluster) stop(i int) {
	if c.members[i] != nil {
		c.members[i].Close()
		c.members[i] = nil
	}
}

func (c *cluster) restart(t *testing.T, i int) {
	t.Helper()
	e, err := embed.StartEtcd(c.cfgs[i])
	if err != nil {
		t.Fatal(err)
	}
	c.members[i] = e
	if err := devetcd.Ready(e); err != nil {
		t.Fatal(err)
	}
}

func (c *cluster) put(t *testing.T, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.client.Put(ctx, key, value); err != nil {
		t.Fatalf("put %s=%s: %v", key, value, err)
	}
}

// TestClusterMemberLoss stops each member of a three-member cluster in turn,
// so that one of them is the member the plugin's watch runs on: flips keep
// coming through, and queries keep being answered.
func TestClusterMemberLoss(t *testing.T) {
	c := startCluster(t, 3)
	c.put(t, "/bluegreen/app.example.org/blue", "10.0.1.100")
	c.put(t, "/bluegreen/app.example.org/green", "10.0.2.100")
	c.put(t, "/bluegreen/app.example.org/active", "blue")
	_, udp, _ := startCoreDNS(t, corefile(strings.Join(c.endpoints, " "), ""))
	blueA, greenA := []string{"A 10.0.1.100"}, []string{"A 10.0.2.100"}
	l := startLoad(t, 2, udp, "app.example.org", blueA, greenA)

	for i := range c.members {
		c.stop(i)
		colour, want := "green", greenA
		if i%2 == 1 {
			colour, want = "blue", blueA
		}
		c.put(t, "/bluegreen/app.example.org/active", colour)
		took := waitFor(t, fmt.Sprintf("flip to %s with member %d down", colour, i), 30*time.Second, func() bool {
			return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), want)
		})
		t.Logf("member %d down: flip to %s answered %v after the put", i, colour, took)
		c.restart(t, i)
	}

	l.stopAndCheck(t, "while members went down")
}

// Package devetcd starts a single-member etcd server inside the process, for
// tests and development: nothing to install, nothing left running.
package devetcd

import (
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Start starts etcd with its data in dir, serving clients at addr (host:port;
// port 0 picks a free one), and waits until it is ready. Close the returned
// server to stop it; its client address is Clients[0].Addr().
func Start(dir, addr string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.LogLevel = "fatal" // etcd logs normal shutdowns as errors
	client := url.URL{Scheme: "http", Host: addr}
	peer := url.URL{Scheme: "http", Host: "127.0.0.1:0"}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd on %s: %w", addr, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, fmt.Errorf("etcd on %s not ready within 30s", addr)
	}
}

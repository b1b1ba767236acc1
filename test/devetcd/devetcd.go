// Package devetcd starts etcd servers inside the process, for tests and
// development: nothing to install, nothing left running.
package devetcd

import (
	"fmt"
	"net/url"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

// Config is the configuration of a member named name, with its data in dir,
// serving clients at clientAddr and peers at peerAddr (host:port; port 0
// picks a free one). A single member needs no more; a cluster's members also
// need InitialCluster.
func Config(name, dir, clientAddr, peerAddr string) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = name
	cfg.Dir = dir
	cfg.LogLevel = "fatal" // etcd logs normal shutdowns as errors
	client := url.URL{Scheme: "http", Host: clientAddr}
	peer := url.URL{Scheme: "http", Host: peerAddr}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
	cfg.InitialCluster = cfg.InitialClusterFromName(name)
	return cfg
}

// Start starts a single member with its data in dir, serving clients at
// addr, and waits until it is ready. Close the returned server to stop it;
// its client address is Clients[0].Addr().
func Start(dir, addr string) (*embed.Etcd, error) {
	return StartConfig(Config("default", dir, addr, "127.0.0.1:0"))
}

// StartConfig starts a single member as cfg says and waits until it is ready.
func StartConfig(cfg *embed.Config) (*embed.Etcd, error) {
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("starting etcd in %s: %w", cfg.Dir, err)
	}
	if err := Ready(e); err != nil {
		e.Close()
		return nil, err
	}
	return e, nil
}

// Ready waits until e has joined a cluster with a leader.
func Ready(e *embed.Etcd) error {
	select {
	case <-e.Server.ReadyNotify():
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("etcd on %s not ready within 30s", e.Clients[0].Addr())
	}
}

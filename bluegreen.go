// Package bluegreen is a CoreDNS plugin for blue-green releases: each managed
// name answers the targets of its active colour, kept with the colour in etcd,
// and a put of the active key moves the name at once. Answers come from an
// in-memory snapshot that an etcd watch keeps current.
package bluegreen

import (
	"context"
	"errors"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	"github.com/coredns/coredns/plugin/pkg/upstream"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const pluginName = "bluegreen"

var log = clog.NewWithPlugin(pluginName)

// startupWait bounds how long startup waits for the first list of etcd, so
// that a healthy start answers from the first query and an outage does not
// block CoreDNS. With a snapshot file to fall back on it waits less.
const (
	startupWait         = 5 * time.Second
	startupWaitSnapshot = time.Second
)

// BlueGreen is the plugin. Its handler only reads snap; the watcher alone
// replaces it, but for the snapshot file that startup may put in first.
type BlueGreen struct {
	Next  plugin.Handler
	Zones []string
	Fall  fall.F

	ttl       uint32
	prefix    string
	etcd      clientv3.Config
	stateFile string // the snapshot option; "" for none
	checks    checkConfig
	upstream  *upstream.Upstream

	// canaryV4 and canaryV6 cut a client's address to its network for the
	// canary split.
	canaryV4, canaryV6 uint8

	snap    atomic.Pointer[snapshot] // nil until the first list
	stop    context.CancelFunc
	running sync.WaitGroup // the watcher and the snapshot file writer
}

// Name implements plugin.Handler.
func (bg *BlueGreen) Name() string { return pluginName }

// Ready implements ready.Readiness: true once there is something to answer
// from: the first list of etcd, or the snapshot file.
func (bg *BlueGreen) Ready() bool { return bg.snap.Load() != nil }

// start runs the watcher and waits a while for its first list; if etcd does
// not answer in time, it answers from the snapshot file, if there is one.
func (bg *BlueGreen) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	bg.stop = cancel
	m := newModel(bg.prefix, bg.Zones, bg.ttl)
	m.failover = bg.checks.failover
	w := &watcher{
		config:    bg.etcd,
		checkConf: bg.checks,
		prefix:    bg.prefix,
		model:     m,
		snap:      &bg.snap,
		synced:    make(chan struct{}),
	}
	bg.running.Go(func() { w.run(ctx) })

	wait := startupWait
	var fallback *snapshot
	if bg.stateFile != "" {
		bg.running.Go(func() { writeStateFiles(ctx, bg.stateFile, bg.prefix, bg.ttl, &bg.snap) })
		s, err := readStateFile(bg.stateFile, newModel(bg.prefix, bg.Zones, bg.ttl))
		switch {
		case err == nil:
			fallback, wait = s, startupWaitSnapshot
		case !errors.Is(err, fs.ErrNotExist): // no file yet is normal on a first start
			log.Warningf("snapshot: %v", err)
		}
	}

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-w.synced:
		return nil
	case <-t.C:
	}
	if fallback != nil && bg.snap.CompareAndSwap(nil, fallback) {
		log.Warningf("no answer from etcd at %v within %v; answering %d names from snapshot %s (revision %d) until it does", bg.etcd.Endpoints, wait, fallback.names, bg.stateFile, fallback.rev)
		return nil
	}
	log.Warningf("no answer from etcd at %v within %v; answering SERVFAIL (or falling through) for %v until it does", bg.etcd.Endpoints, wait, bg.Zones)
	return nil
}

// shutdown stops the watcher and waits until it has closed its etcd client
// (and the snapshot file is written).
func (bg *BlueGreen) shutdown() error {
	if bg.stop != nil {
		bg.stop()
		bg.running.Wait()
	}
	return nil
}

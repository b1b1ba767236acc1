// Package bluegreen is a CoreDNS plugin for blue-green releases: each managed
// name answers the targets of its active colour, kept with the colour in etcd,
// and a put of the active key moves the name at once. Answers come from an
// in-memory snapshot that an etcd watch keeps current.
package bluegreen

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	clog "github.com/coredns/coredns/plugin/pkg/log"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const pluginName = "bluegreen"

var log = clog.NewWithPlugin(pluginName)

// startupWait bounds how long startup waits for the first list of etcd, so
// that a healthy start answers from the first query and an outage does not
// block CoreDNS.
const startupWait = 5 * time.Second

// BlueGreen is the plugin. Its handler only reads snap; the watcher alone
// replaces it.
type BlueGreen struct {
	Next  plugin.Handler
	Zones []string
	Fall  fall.F

	ttl    uint32
	prefix string
	etcd   clientv3.Config

	snap atomic.Pointer[snapshot] // nil until the first list
	stop context.CancelFunc
	done chan struct{} // closed when the watcher has stopped
}

// Name implements plugin.Handler.
func (bg *BlueGreen) Name() string { return pluginName }

// Ready implements ready.Readiness: true once etcd has been listed.
func (bg *BlueGreen) Ready() bool { return bg.snap.Load() != nil }

// start runs the watcher and waits, up to startupWait, for its first list.
func (bg *BlueGreen) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	w := &watcher{
		config: bg.etcd,
		prefix: bg.prefix,
		model:  newModel(bg.prefix, bg.Zones, bg.ttl),
		snap:   &bg.snap,
		synced: make(chan struct{}),
	}
	bg.stop, bg.done = cancel, make(chan struct{})
	go func() {
		defer close(bg.done)
		w.run(ctx)
	}()

	t := time.NewTimer(startupWait)
	defer t.Stop()
	select {
	case <-w.synced:
	case <-t.C:
		log.Warningf("no answer from etcd at %v within %v; answering SERVFAIL for %v until it does", bg.etcd.Endpoints, startupWait, bg.Zones)
	}
	return nil
}

// shutdown stops the watcher and waits until it has closed its etcd client.
func (bg *BlueGreen) shutdown() error {
	if bg.stop != nil {
		bg.stop()
		<-bg.done
	}
	return nil
}

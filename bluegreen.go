// Package bluegreen is a CoreDNS plugin for blue-green releases: each managed
// name answers the targets of its active colour, kept with the colour in etcd,
// and a put of the active key moves the name at once. Answers come from an
// in-memory snapshot that an etcd watch keeps current.
package bluegreen

import (
	"context"
	"errors"
	"fmt"
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
// block CoreDNS. With what was answered before to fall back on it waits less.
const (
	startupWait     = 5 * time.Second
	startupWaitSeed = time.Second
)

// BlueGreen is the plugin. Its handler only reads snap, which the store
// alone replaces.
type BlueGreen struct {
	Next  plugin.Handler
	Zones []string
	Fall  fall.F

	ttl       uint32
	maxTTL    uint32 // the largest ttl key taken
	prefix    string
	etcd      clientv3.Config
	stateFile string // the snapshot option; "" for none
	probes    probeConfig
	checkNets networks // the networks checks may reach; nil for the default
	failover  bool
	upstream  *upstream.Upstream
	// nameMetrics bounds the names with answer series of their own.
	nameMetrics int
	// readyAlways (the ready option off) reports ready before the first
	// list: where the block serves much more than bluegreen's names.
	readyAlways bool

	preview     networks                // clients that may ask for previews and states
	nsOption    []nameServer            // the ns option's name servers; none for the default
	nameServers map[string][]nameServer // by zone: worked out once, read by every query

	// canaryV4 and canaryV6 cut a client's address to its network for the
	// canary split.
	canaryV4, canaryV6 uint8

	snap    atomic.Pointer[snapshot] // nil until the first list, or the state file
	store   *store
	stop    context.CancelFunc
	running sync.WaitGroup // the watcher and the state file writer
}

// Name implements plugin.Handler.
func (bg *BlueGreen) Name() string { return pluginName }

// Ready implements ready.Readiness: true once there is something to answer
// from (the first list of etcd, or the state file), or always with ready off.
func (bg *BlueGreen) Ready() bool { return bg.readyAlways || bg.snap.Load() != nil }

// start runs the watcher and waits a while for its first list. What the
// plugin answered before (the instance a reload replaces, or the state
// file) is the base the first list is applied to, and is answered if etcd
// does not answer in time.
func (bg *BlueGreen) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	bg.stop = cancel
	bg.store = newStore(bg.prefix, bg.Zones, policy{ttl: bg.ttl, maxTTL: bg.maxTTL, failover: bg.failover, checkNets: bg.checkNets}, probes, bg.probes, bg.nameMetrics, &bg.snap)
	perName.add(&bg.snap)

	wait := startupWait
	var fileRev int64 // the state file's: its writer leaves it be until etcd says more
	if f, since, why := bg.before(); f != nil {
		bg.store.seed(f, since, why)
		wait = startupWaitSeed
		fileRev = f.Revision
	}
	if bg.stateFile != "" {
		bg.running.Go(func() { writeStateFiles(ctx, bg.stateFile, bg.prefix, bg.ttl, fileRev, &bg.snap) })
	}
	w := newWatcher(bg.etcd, bg.prefix, bg.store)
	bg.running.Go(func() { w.run(ctx) })

	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-bg.store.listed:
		return nil
	case <-t.C:
	}
	if bg.store.serveSeed() {
		log.Warningf("no answer from etcd at %v within %v; answering what was answered before, stale, until it does", bg.etcd.Endpoints, wait)
		return nil
	}
	log.Warningf("no answer from etcd at %v within %v; answering SERVFAIL (or falling through) for %v until it does", bg.etcd.Endpoints, wait, bg.Zones)
	return nil
}

// before is what the plugin answered before it started, with since when it
// is stale and why: what the instance a reload replaces answers, else the
// state file, else nothing.
func (bg *BlueGreen) before() (*stateFile, time.Time, string) {
	if prev := bg.takeOver(); prev != nil {
		if snap := prev.snap.Load(); snap != nil {
			since := snap.stale.since
			if since.IsZero() {
				since = time.Now()
			}
			return stateOf(snap, prev.prefix, prev.ttl), since, "answering what was answered before the reload: etcd not listed yet"
		}
	}
	if bg.stateFile == "" {
		return nil, time.Time{}, ""
	}
	f, written, err := readStateFile(bg.stateFile, bg.prefix)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) { // no file yet is normal on a first start
			log.Warningf("snapshot file: %v", err)
		}
		return nil, time.Time{}, ""
	}
	return f, written, fmt.Sprintf("answering %s of revision %d: etcd not listed yet", bg.stateFile, f.Revision)
}

// shutdown stops the watcher and the probes, and waits until the etcd client
// is closed and the state file written. The store changes nothing from
// here on: after a reload, what it published belongs to the new instance.
func (bg *BlueGreen) shutdown() error {
	if bg.stop != nil {
		bg.withdraw()
		bg.store.close()
		perName.remove(&bg.snap)
		bg.stop()
		bg.running.Wait()
		bg.store.stopProbes()
	}
	return nil
}

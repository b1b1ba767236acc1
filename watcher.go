package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// listPage bounds one range request of the initial list, so that a large
	// prefix never makes one huge response.
	listPage = 10000
	// requestTimeout bounds one etcd request (a list page, a login).
	requestTimeout = 10 * time.Second
	// retryMax caps the wait between attempts while etcd cannot be reached.
	retryMax = 5 * time.Second
)

// watcher keeps the plugin's snapshot current. It lists the prefix once,
// watches it from the next revision, and publishes a new snapshot for each
// revision it applies. If the revision to resume from was compacted away it
// lists again.
type watcher struct {
	config    clientv3.Config
	checkConf checkConfig
	prefix    string
	snap      *atomic.Pointer[snapshot]
	synced    chan struct{} // closed once the first list is published
	heard     atomic.Int64  // when etcd last answered, in Unix nanoseconds

	// mu serializes what changes the answers: etcd's changes, applied by
	// the run goroutine, and the checks' findings, reported by probes.
	mu     sync.Mutex
	model  *model
	checks *checker
}

func (w *watcher) run(ctx context.Context) {
	w.checks = newChecker(ctx, w.checkConf, w.checkChanged)
	defer w.checks.wait()
	client, err := w.connect(ctx)
	if err != nil {
		return // stopped before etcd answered
	}
	defer client.Close()
	w.heard.Store(time.Now().UnixNano())
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		w.heartbeat(ctx, client)
	}()
	defer func() { <-beating }() // before the client closes

	var rev int64 // last applied revision; 0 until a list succeeds
	wait := newRetry()
	for {
		if rev == 0 {
			if rev, err = w.list(ctx, client); err != nil {
				log.Errorf("%v; retrying", err)
				if !wait.sleep(ctx) {
					return
				}
				continue
			}
			wait.reset()
		}
		from := rev
		rev, err = w.watch(ctx, client, rev)
		if ctx.Err() != nil {
			return
		}
		if rev > from {
			wait.reset() // the watch worked for a while: this is a new failure
		}
		watchRestartsTotal.Inc()
		if errors.Is(err, rpctypes.ErrCompacted) {
			log.Warningf("watch of %s: revision %d was compacted; listing again", w.prefix, rev+1)
			rev = 0
			continue
		}
		log.Warningf("watch of %s ended: %v; resuming from revision %d", w.prefix, err, rev+1)
		if !wait.sleep(ctx) {
			return
		}
	}
}

// connect makes the etcd client, retrying while etcd refuses a login.
func (w *watcher) connect(ctx context.Context) (*clientv3.Client, error) {
	wait := newRetry()
	for {
		cfg := w.config
		cfg.Context = ctx
		client, err := clientv3.New(cfg)
		if err == nil {
			return client, nil
		}
		log.Errorf("connecting to etcd at %v: %v; retrying", cfg.Endpoints, err)
		if !wait.sleep(ctx) {
			return nil, ctx.Err()
		}
	}
}

// list reads the whole prefix at one revision, in pages, and publishes it as
// a new snapshot in one step. It returns the revision it read.
func (w *watcher) list(ctx context.Context, client *clientv3.Client) (int64, error) {
	w.mu.Lock()
	m := w.model.fresh()
	w.mu.Unlock()
	var rev int64
	key, end := w.prefix, clientv3.GetPrefixRangeEnd(w.prefix)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev != 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := context.WithTimeout(ctx, requestTimeout)
		resp, err := client.Get(rctx, key, opts...)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("listing %s: %w", w.prefix, err)
		}
		w.heard.Store(time.Now().UnixNano())
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			m.put(string(kv.Key), string(kv.Value), kv.ModRevision)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}

	// Swap in what was read; probes wait meanwhile, but not for etcd.
	w.mu.Lock()
	defer w.mu.Unlock()
	for name := range w.model.names {
		if m.names[name] == nil {
			w.syncChecks(m, name)
		}
	}
	old := w.current()
	for name, n := range m.names {
		w.syncChecks(m, name)
		// A name keeps answering the colour it answered while its active
		// key names a colour without a target, across lists too.
		if e := old.get(name); e != nil {
			n.served, n.serves = e.active, true
		}
	}
	changes := m.entries()
	old.each(func(name string, _ *entry) {
		if _, ok := changes[name]; !ok {
			changes[name] = nil // gone from etcd
		}
	})
	w.model = m
	w.publish(old, rev, changes)
	select {
	case <-w.synced:
	default:
		log.Infof("synced %s at revision %d: %d names served", m.prefix, rev, w.current().names)
		close(w.synced)
	}
	return rev, nil
}

// watch applies changes from revision rev+1 on until the watch ends, and
// returns the last revision applied.
func (w *watcher) watch(ctx context.Context, client *clientv3.Client, rev int64) (int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	ch := client.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	for resp := range ch {
		w.heard.Store(time.Now().UnixNano())
		if err := resp.Err(); err != nil {
			return rev, err
		}
		if resp.IsProgressNotify() {
			rev = max(rev, resp.Header.Revision)
			continue
		}
		if len(resp.Events) > 0 {
			rev = max(rev, w.apply(resp.Events))
		}
	}
	return rev, errors.New("watch channel closed")
}

// apply publishes one watch response's events as one snapshot, and returns
// their revision. etcd never splits a revision across responses, so a
// transaction shows up whole.
func (w *watcher) apply(events []*clientv3.Event) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	var rev int64
	touched := map[string]bool{}
	for _, ev := range events {
		key := string(ev.Kv.Key)
		rev = max(rev, ev.Kv.ModRevision)
		var name string
		switch ev.Type {
		case mvccpb.PUT:
			name = w.model.put(key, string(ev.Kv.Value), ev.Kv.ModRevision)
		case mvccpb.DELETE:
			name = w.model.del(key, ev.Kv.ModRevision)
		}
		if name != "" {
			touched[name] = true
		}
	}
	changes := make(map[string]*entry, len(touched))
	for name := range touched {
		w.syncChecks(w.model, name)
		changes[name] = w.model.entry(name)
	}
	w.publish(w.current(), rev, changes)
	return rev
}

// publish swaps in old with changes applied, and logs what changed, unless
// old is the empty snapshot of before the first list.
func (w *watcher) publish(old *snapshot, rev int64, changes map[string]*entry) {
	w.snap.Store(old.with(rev, changes))
	namesManaged.WithLabelValues(w.prefix).Set(float64(w.current().names))
	revision.WithLabelValues(w.prefix).Set(float64(rev))
	if old.rev == 0 {
		return // the first list logs a summary instead of every name
	}
	for name, e := range changes {
		was := old.get(name)
		name = name[:len(name)-1]
		switch {
		case was == nil && e != nil:
			log.Infof("%s: now served, %s (revision %d)", name, e.active, rev)
		case was != nil && e == nil:
			log.Infof("%s: no longer served (revision %d)", name, rev)
		case was != nil:
			if was.active != e.active {
				log.Infof("%s: %s -> %s (revision %d)", name, was.active, e.active, rev)
				switchesTotal.Inc()
			}
			if e.failover && !was.failover {
				log.Warningf("%s: failover to %s: every %s address is down", name, e.answering(), e.active)
				failoversTotal.WithLabelValues(name).Inc()
			} else if was.failover && !e.failover && e.isDown(e.active) {
				log.Warningf("%s: failover ended: %s is down too, answering all of %s", name, e.active.other(), e.active)
			} else if was.failover && !e.failover {
				log.Infof("%s: failover ended: %s is up again", name, e.active)
			}
		}
	}
}

// current is the published snapshot, or an empty one before the first list.
func (w *watcher) current() *snapshot {
	if s := w.snap.Load(); s != nil {
		return s
	}
	return &snapshot{}
}

// retry waits between attempts, doubling from 100ms up to retryMax.
type retry struct{ d time.Duration }

func newRetry() *retry { return &retry{d: 100 * time.Millisecond} }

func (r *retry) reset() { r.d = 100 * time.Millisecond }

// sleep waits, and reports false if ctx ended first.
func (r *retry) sleep(ctx context.Context) bool {
	t := time.NewTimer(r.d)
	defer t.Stop()
	r.d = min(2*r.d, retryMax)
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// syncChecks starts and stops the probes of name as m holds its keys, and
// forgets what stopped probes found.
func (w *watcher) syncChecks(m *model, name string) {
	n := m.names[name]
	if w.checks.probes[name] == nil && (n == nil || !n.check.ok) {
		return // never checked: the common case, kept cheap
	}
	var c check
	var addrs []string
	if n != nil && n.check.ok {
		c = *n.check.value
		for _, col := range colours {
			if n.targets[col].ok {
				addrs = append(addrs, n.targets[col].value.addresses()...)
			}
		}
	}
	for _, addr := range w.checks.sync(name, c, addrs, m.down[name]) {
		delete(m.down[name], addr)
	}
	if len(m.down[name]) == 0 {
		delete(m.down, name)
	}
	healthMetrics(m, name)
}

// checkChanged records that probe p found its address up or down, and
// publishes the name's answers without it or with it again.
func (w *watcher) checkChanged(p *probe, up bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.checks.current(p) {
		return // stopped while it waited for the lock
	}
	m := w.model
	if up {
		delete(m.down[p.name], p.addr)
	} else {
		if m.down[p.name] == nil {
			m.down[p.name] = map[string]bool{}
		}
		m.down[p.name][p.addr] = true
	}
	log.Infof("%s: %s is %s (check %s)", strings.TrimSuffix(p.name, "."), p.addr, result(up), p.check.raw)
	healthMetrics(m, p.name)
	old := w.current()
	w.publish(old, old.rev, map[string]*entry{p.name: m.entry(p.name)})
}

// healthMetrics sets the healthy address count of each colour of a checked
// name, and removes the series of a name no longer checked.
func healthMetrics(m *model, name string) {
	label := strings.TrimSuffix(name, ".")
	n := m.names[name]
	if n == nil || !n.check.ok {
		for _, c := range colours {
			healthyAddresses.DeleteLabelValues(label, c.String())
		}
		return
	}
	for _, c := range colours {
		healthy := 0
		if n.targets[c].ok {
			for _, addr := range n.targets[c].value.addresses() {
				if !m.down[name][addr] {
					healthy++
				}
			}
		}
		healthyAddresses.WithLabelValues(label, c.String()).Set(float64(healthy))
	}
}

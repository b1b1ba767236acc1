package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

const (
	// listPage bounds one range request of a list, so that a large prefix
	// never makes one huge response.
	listPage = 10000
	// requestTimeout bounds one etcd request (a list page, a login).
	requestTimeout = 10 * time.Second
	// retryMax caps the wait between attempts while etcd cannot be reached.
	retryMax = 5 * time.Second
	// progressGrace is how long a new watch goes without progress requests.
	progressGrace = time.Second
	// relistJitter spreads the lists of many CoreDNS replicas that find the
	// same reason to list again at once, as after a compaction.
	relistJitter = 500 * time.Millisecond
)

// watcher is the plugin's only contact with etcd. It lists the prefix,
// watches it from the next revision, and hands both to the store; it lists
// again when the revision to resume from was compacted, or when the
// heartbeat finds that etcd holds something else than what is answered. It
// holds no state of what is answered.
type watcher struct {
	config clientv3.Config
	prefix string
	store  *store

	heard   atomic.Int64  // when etcd last answered, in Unix nanoseconds
	cluster atomic.Uint64 // the cluster id of the etcd last listed
	streams atomic.Uint64 // watch streams opened, to give each its own

	// The heartbeat asks the watch loop to list again, and to ask etcd
	// whether the watch has seen every revision.
	relist   chan relist
	progress chan struct{}

	failures *burst // of the heartbeat's reads
}

// relist is a reason to list the prefix again, found by the heartbeat in
// what the store held from one list.
type relist struct {
	reason string // relists_total's reason label
	err    error
	list   uint64
}

func (r relist) Error() string { return r.err.Error() }

func newWatcher(config clientv3.Config, prefix string, s *store) *watcher {
	return &watcher{config: config, prefix: prefix, store: s, relist: make(chan relist, 1), progress: make(chan struct{}, 1),
		failures: &burst{what: "failed heartbeats", warning: true, window: time.Minute}}
}

// run lists and watches etcd until ctx ends, through one etcd client at a
// time: when a session with a client ends for a reason that a new client
// mends (etcd refused its auth token, or the client has had no answer for a
// while), run closes it, makes a new one, and resumes from the revision
// applied. The etcd client refreshes an expired token only for the request
// that found it, and only within that request's time-out; under load a
// login (bcrypt) takes longer than a heartbeat, and the client would keep
// its dead token for ever.
func (w *watcher) run(ctx context.Context) {
	var rev int64 // applied up to; 0 to list
	for {
		client, err := w.connect(ctx)
		if err != nil {
			return // stopped before etcd answered
		}
		why := w.session(ctx, client, &rev)
		client.Close()
		if ctx.Err() != nil {
			return
		}
		log.Warningf("%v: making a new etcd client for %s, resuming from revision %d", why, w.prefix, rev+1)
	}
}

// session lists (when rev is 0) and watches through client, with a
// heartbeat beside, until ctx ends or client has to be replaced; it returns
// why. It keeps *rev at the revision the store has applied.
func (w *watcher) session(ctx context.Context, client *clientv3.Client, rev *int64) error {
	ctx, replace := context.WithCancelCause(ctx)
	defer replace(nil)
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		w.heartbeat(ctx, client, replace)
	}()
	defer func() { <-beating }() // before the client closes

	listed := false
	wait := newRetry()
	for {
		if *rev == 0 {
			if listed && !sleep(ctx, rand.N(relistJitter)) {
				return context.Cause(ctx)
			}
			var err error
			if *rev, err = w.list(ctx, client); err != nil {
				if refused := authRefused(err); refused != nil {
					return refused
				}
				log.Errorf("%v; retrying", err)
				if !wait.sleep(ctx) {
					return context.Cause(ctx)
				}
				continue
			}
			listed = true
			wait.reset()
		}
		from := *rev
		var err error
		*rev, err = w.watch(ctx, client, *rev)
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var again relist
		switch {
		case errors.As(err, &again):
			log.Errorf("%v: listing %s again", err, w.prefix)
			relistsTotal.WithLabelValues(w.prefix, again.reason).Inc()
			*rev = 0
			continue
		case errors.Is(err, rpctypes.ErrCompacted):
			log.Warningf("watch of %s: %v; listing again", w.prefix, err)
			relistsTotal.WithLabelValues(w.prefix, relistCompacted).Inc()
			*rev = 0
			continue
		case authRefused(err) != nil:
			return fmt.Errorf("watch of %s: %w", w.prefix, authRefused(err))
		}
		if *rev > from {
			wait.reset() // the watch worked for a while: this is a new failure
		}
		watchRestartsTotal.Inc()
		log.Warningf("watch of %s ended: %v; resuming from revision %d", w.prefix, err, *rev+1)
		if !wait.sleep(ctx) {
			return context.Cause(ctx)
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
		if errors.Is(err, context.DeadlineExceeded) && cfg.Username != "" {
			err = fmt.Errorf("logging in as %s: no answer within %v", cfg.Username, cfg.DialTimeout)
		}
		log.Errorf("connecting to etcd at %v: %v; retrying", cfg.Endpoints, err)
		if !wait.sleep(ctx) {
			return nil, ctx.Err()
		}
	}
}

// list reads the whole prefix at one revision, in pages, and hands it to the
// store in one step. It returns the revision it read.
func (w *watcher) list(ctx context.Context, client *clientv3.Client) (int64, error) {
	var kvs []keyValue
	var rev int64
	var cluster uint64
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
			rev, cluster = resp.Header.Revision, resp.Header.ClusterId
			kvs = make([]keyValue, 0, resp.Count)
		}
		for _, kv := range resp.Kvs {
			kvs = append(kvs, keyValue{key: string(kv.Key), value: string(kv.Value), rev: kv.ModRevision, lease: kv.Lease})
		}
		if !resp.More || len(resp.Kvs) == 0 {
			break
		}
		key = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
	w.cluster.Store(cluster)
	w.store.replace(kvs, rev)
	return rev, nil
}

// watch hands the store the changes from revision rev+1 on until the watch
// ends or the heartbeat asks for a list, and returns the revision applied.
func (w *watcher) watch(ctx context.Context, client *clientv3.Client, rev int64) (int64, error) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// The etcd client puts watches whose contexts carry the same metadata
	// on one gRPC stream; a stream that stopped delivering must not carry
	// the next watch, so each gets its own.
	wctx = metadata.AppendToOutgoingContext(wctx, "bluegreen-watch", strconv.FormatUint(w.streams.Add(1), 10))
	ch := client.Watch(wctx, w.prefix, clientv3.WithPrefix(), clientv3.WithRev(rev+1), clientv3.WithProgressNotify())
	opened := time.Now()
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				return rev, errors.New("watch channel closed")
			}
			if err := resp.Err(); err != nil {
				if resp.CompactRevision != 0 {
					err = fmt.Errorf("etcd compacted its history up to revision %d: %w", resp.CompactRevision, err)
				}
				return rev, err // not word from etcd: a refused token or a lost leader leaves the answers as stale as they were
			}
			w.heard.Store(time.Now().UnixNano())
			if resp.IsProgressNotify() {
				rev = max(rev, resp.Header.Revision)
				w.store.progressed(rev)
				continue
			}
			if len(resp.Events) > 0 {
				rev = max(rev, w.store.apply(changesOf(resp.Events)))
			}
		case <-w.progress:
			// etcd answers once the watch has sent every revision up to
			// now; the heartbeat notices if it never does. Not in the
			// watch's first moments: some etcd releases never answer a
			// request made while a new watch catches up and finds no event
			// (etcd-io/etcd#17507); etcd catches up every 100ms.
			if time.Since(opened) > progressGrace {
				client.RequestProgress(wctx)
			}
		case <-ctx.Done():
			return rev, ctx.Err()
		case again := <-w.relist:
			if w.store.stillList(again.list) { // else a list since has answered it
				return rev, again
			}
		}
	}
}

func changesOf(events []*clientv3.Event) []keyValue {
	out := make([]keyValue, len(events))
	for i, ev := range events {
		out[i] = keyValue{key: string(ev.Kv.Key), value: string(ev.Kv.Value), rev: ev.Kv.ModRevision, lease: ev.Kv.Lease, deleted: ev.Type == mvccpb.DELETE}
	}
	return out
}

// retry waits between attempts, doubling from 100ms up to retryMax, each
// wait drawn at random from its upper half so that replicas that lost etcd
// together do not come back in lockstep.
type retry struct{ d time.Duration }

func newRetry() *retry { return &retry{d: 100 * time.Millisecond} }

func (r *retry) reset() { r.d = 100 * time.Millisecond }

// sleep waits, and reports false if ctx ended first.
func (r *retry) sleep(ctx context.Context) bool {
	d := r.d/2 + rand.N(r.d/2+1)
	r.d = min(2*r.d, retryMax)
	return sleep(ctx, d)
}

// sleep waits for d, and reports false if ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

package bluegreen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const (
	// heartbeatEvery is how often the watcher asks etcd whether what is
	// answered is what it holds.
	heartbeatEvery = time.Second
	// staleAfter is how long without word from etcd makes the answers stale.
	staleAfter = 3 * time.Second
	// behindAfter is how long the watch may lag etcd before it is given up
	// for one that stopped delivering, and the prefix is listed again.
	behindAfter = 3 * time.Second
	// replaceAfter is how long the heartbeat goes without an answer before
	// the etcd client is replaced: long enough for a client that is merely
	// reconnecting, short enough to be back within seconds of etcd.
	replaceAfter = 5 * time.Second
)

// heartbeat checks every second, with one linearizable read of one key,
// that etcd answers and that what is answered is what etcd holds:
//
//   - Etcd's revision must not be below the one the answers are complete up
//     to, nor its cluster id change: else etcd was restored from a backup,
//     wiped, or replaced, and the watch would wait for revisions that will
//     never mean what it thinks. The prefix is listed again at once.
//   - A key the store holds must have, at that revision, the mod revision
//     the store has for it (the key changed last, or any other in turn):
//     else the two histories differ, even if etcd's revision has passed
//     the old one. Listed again at once.
//   - The watch must catch up with the revision etcd reports: after each
//     read the watch asks etcd for a progress notice, which etcd sends once
//     the watch has delivered everything up to it. A watch still behind
//     after behindAfter has stopped delivering; the prefix is listed again.
//   - After staleAfter without an answer from etcd, the answers are stale,
//     until etcd answers again and the watch has caught up with it.
//
// While any of these holds, the store says the answers are stale (log,
// metric, TXT state), and keeps answering them: stale answers beat none.
//
// A read that fails is logged with its cause (at most a few lines a
// minute). When etcd refuses the client's auth token, or no read has
// succeeded for replaceAfter, the heartbeat calls replace with why, and
// ends: a new client logs in again and dials afresh.
func (w *watcher) heartbeat(ctx context.Context, client *clientv3.Client, replace context.CancelCauseFunc) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	var lag lagged
	var failing time.Time // since when every read failed; zero while they succeed
	for beat := 0; ; beat++ {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sm := w.store.sample(beat%2 == 0)
		if sm.upTo == 0 {
			continue // not listed yet: nothing to compare, nothing stale but a state file, which says so itself
		}
		err := w.check(ctx, client, sm, &lag)

		heard := time.Unix(0, w.heard.Load())
		switch {
		case time.Since(heard) > staleAfter:
			w.store.markStale(staleNoWord, heard, fmt.Sprintf("no word from etcd at %v since %s", w.config.Endpoints, heard.Format(time.RFC3339)))
		case lag.rev == 0: // etcd answers, and the watch has caught up with it
			w.store.markFresh(staleNoWord)
		}

		if err == nil || ctx.Err() != nil {
			failing = time.Time{}
			continue
		}
		if failing.IsZero() {
			failing = time.Now()
		}
		if refused := authRefused(err); refused != nil {
			w.failures.printf("heartbeat of %s: %v", w.prefix, refused)
			replace(refused)
			return
		}
		if errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("no answer within %v", heartbeatEvery)
		}
		w.failures.printf("heartbeat of %s: reading etcd at %v: %v", w.prefix, w.config.Endpoints, err)
		if since := time.Since(failing); since > replaceAfter {
			replace(fmt.Errorf("no answer from etcd at %v through this client for %v (last: %w)", w.config.Endpoints, since.Round(time.Second), err))
			return
		}
	}
}

// lagged is a revision etcd reported that the watch has not reached yet.
type lagged struct {
	rev   int64
	since time.Time
	list  uint64
}

// check compares the sample with etcd, and the watch's progress with etcd's
// revision; it asks for a list when either is off. It returns the error of
// a read that failed.
func (w *watcher) check(ctx context.Context, client *clientv3.Client, sm sample, lag *lagged) error {
	if lag.list != sm.list || sm.upTo >= lag.rev {
		lag.rev = 0
	}
	found, err := w.compare(ctx, client, sm)
	if err != nil {
		*lag = lagged{} // a watch is judged only while etcd answers
		if again := (relist{}); errors.As(err, &again) {
			w.store.markResync(sm.list, time.Now(), again.Error())
			w.listAgain(again)
			return nil
		}
		return err
	}
	if lag.rev == 0 && found > sm.upTo {
		*lag = lagged{rev: found, since: time.Now(), list: sm.list}
	}
	select {
	case w.progress <- struct{}{}:
	default:
	}
	if lag.rev != 0 && time.Since(lag.since) > behindAfter {
		again := relist{relistWatchStalled, fmt.Errorf("the watch of %s has delivered nothing past revision %d since %s, though etcd is at revision %d",
			w.prefix, sm.upTo, lag.since.Format(time.RFC3339), lag.rev), sm.list}
		w.store.markResync(sm.list, lag.since, again.Error())
		w.listAgain(again)
		lag.rev = 0
	}
	return nil
}

// compare reads the sampled key from etcd as of the revision the store
// has applied every event up to, and checks it against the mod revision the
// store holds it at; with no key, it checks that etcd holds none under the
// prefix either. It returns etcd's current revision, or a relist when etcd's
// history is not the one answered.
func (w *watcher) compare(ctx context.Context, client *clientv3.Client, sm sample) (int64, error) {
	hctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
	defer cancel()
	key := sm.key
	opts := []clientv3.OpOption{clientv3.WithRev(sm.applied), clientv3.WithKeysOnly()}
	if key == "" {
		key = w.prefix
		opts = append(opts, clientv3.WithPrefix(), clientv3.WithLimit(1))
	}
	resp, err := client.Get(hctx, key, opts...)
	compared := err == nil
	if errors.Is(err, rpctypes.ErrFutureRev) || errors.Is(err, rpctypes.ErrCompacted) {
		// No content to compare at that revision: read etcd's revision.
		resp, err = client.Get(hctx, w.prefix, clientv3.WithKeysOnly())
	}
	if err != nil {
		return 0, err
	}
	w.heard.Store(time.Now().UnixNano())
	h := resp.Header
	if want := w.cluster.Load(); want != 0 && h.ClusterId != want {
		return 0, relist{relistCluster, fmt.Errorf("etcd at %v is cluster %x, not cluster %x that the answers of revision %d come from",
			w.config.Endpoints, h.ClusterId, want, sm.upTo), sm.list}
	}
	if h.Revision < sm.upTo {
		return 0, relist{relistWentBack, fmt.Errorf("etcd at %v is at revision %d, behind revision %d that the answers come from: restored from a backup, or its data wiped?",
			w.config.Endpoints, h.Revision, sm.upTo), sm.list}
	}
	if !compared {
		return sm.applied + 1, nil // what the store applied is history in etcd: it is behind
	}
	var have int64
	if len(resp.Kvs) > 0 {
		have = resp.Kvs[0].ModRevision
		key = string(resp.Kvs[0].Key)
	}
	if have != sm.modRev {
		return 0, relist{relistDiverged, fmt.Errorf("etcd holds key %q at mod revision %d as of revision %d, where the answers have it at %d: its history was replaced",
			key, have, sm.applied, sm.modRev), sm.list}
	}
	return h.Revision, nil
}

// listAgain asks the watch loop to list again, unless it was asked already.
func (w *watcher) listAgain(r relist) {
	select {
	case w.relist <- r:
	default:
	}
}

// authRefused names err as etcd refusing bluegreen's login or token, or is
// nil when err is something else. It goes by etcd's message: a watch
// cancelled for a dead token reports only the text of etcd's error.
func authRefused(err error) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, rpctypes.ErrInvalidAuthToken.Error()), strings.Contains(msg, rpctypes.ErrUserEmpty.Error()), strings.Contains(msg, rpctypes.ErrAuthOldRevision.Error()):
		return fmt.Errorf("etcd refused bluegreen's auth token: %w", err)
	case strings.Contains(msg, rpctypes.ErrAuthFailed.Error()):
		return fmt.Errorf("etcd refused bluegreen's credentials: %w", err)
	case status.Code(err) == codes.Unauthenticated:
		return fmt.Errorf("etcd refused bluegreen's auth token/credentials: %w", err)
	}
	return nil
}

package bluegreen

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// heartbeatEvery is how often the watcher checks that etcd answers.
	heartbeatEvery = time.Second
	// staleAfter is how long without word from etcd makes the answers stale.
	staleAfter = 3 * time.Second
)

// heartbeat reads one key of the prefix from etcd every second: a
// linearizable read, which needs a member with a quorum behind it. That, any
// watch response and a list are word from etcd. When none has come for
// staleAfter it logs that the answers are stale and since when, and exports
// the time; when word comes again it says so. It never changes what is
// answered: stale answers beat no answers.
//
// (Progress notices on the watch would be neater, but etcd sends none to a
// watch that resumed beyond the current revision, as a watch does after a
// reconnect in a quiet cluster.)
func (w *watcher) heartbeat(ctx context.Context, client *clientv3.Client) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	var staleSince time.Time
	staleSinceSeconds.WithLabelValues(w.prefix).Set(0) // a series to alert on from the start
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		hctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
		if _, err := client.Get(hctx, w.prefix); err == nil {
			w.heard.Store(time.Now().UnixNano())
		}
		cancel()

		snap := w.snap.Load()
		if snap == nil {
			continue // not listed yet: there is nothing stale to answer
		}
		heard := time.Unix(0, w.heard.Load())
		quiet := time.Since(heard)
		switch {
		case quiet > staleAfter && staleSince.IsZero():
			staleSince = heard
			staleSinceSeconds.WithLabelValues(w.prefix).Set(float64(heard.UnixNano()) / 1e9)
			log.Warningf("no word from etcd at %v since %s: answering stale data from revision %d", w.config.Endpoints, heard.Format(time.RFC3339Nano), snap.rev)
		case quiet <= staleAfter && !staleSince.IsZero():
			log.Infof("etcd answers again: data was stale for %v, from %s", heard.Sub(staleSince).Round(time.Millisecond), staleSince.Format(time.RFC3339Nano))
			staleSince = time.Time{}
			staleSinceSeconds.WithLabelValues(w.prefix).Set(0)
		}
	}
}

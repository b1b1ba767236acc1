package bluegreen

import (
	"context"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

const (
	// heartbeatEvery is how often the watcher asks etcd to confirm that the
	// watch is current.
	heartbeatEvery = time.Second
	// staleAfter is how long without word from etcd makes the answers stale.
	staleAfter = 3 * time.Second
)

// heartbeat asks etcd every second, on the watch stream, for a progress
// notice, which the watch loop counts as word from etcd like any event. When
// no word has come for staleAfter it logs that the answers are stale and
// since when, and exports the time; when word comes again it says so. It
// never changes what is answered: stale answers beat no answers.
func (w *watcher) heartbeat(ctx context.Context, client *clientv3.Client) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	var staleSince time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// The metadata of WithRequireLeader picks the watch's own stream.
		pctx, cancel := context.WithTimeout(clientv3.WithRequireLeader(ctx), heartbeatEvery)
		client.RequestProgress(pctx)
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

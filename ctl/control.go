package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A running release keeps, for each of its names, a state key under the
// release prefix (/bluegreen-release/NAME/state) on its lease: it says who
// runs it, where, and how far it is, and it goes with the lease when the
// release ends or dies. abort, pause and resume put a request key beside it
// (/bluegreen-release/NAME/request) on the same lease, which the release
// watches: so they work from any machine that reaches etcd.

type releaseState struct {
	Plan    string    `json:"plan"`
	Names   []string  `json:"names"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Step    int       `json:"step"` // 0 before the first
	Steps   int       `json:"steps"`
	Canary  int       `json:"canary"`
	State   string    `json:"state"` // running, paused, waiting for caches
	User    string    `json:"user"`
	Host    string    `json:"host"`
	PID     int       `json:"pid"`
	Started time.Time `json:"started"`
}

type releaseRequest struct {
	Action string    `json:"action"` // abort, pause, resume
	User   string    `json:"user"`
	Reason string    `json:"reason,omitempty"`
	Time   time.Time `json:"time"`
}

func (c *cli) stateKey(n string) string   { return c.globals.releasePrefix + n + "/state" }
func (c *cli) requestKey(n string) string { return c.globals.releasePrefix + n + "/request" }

var abortCommand = &command{
	name: "abort", args: "NAME [--reason TEXT]",
	short: "Stop a running release and roll its names back",
	long: `Asks the bgctl release running NAME, wherever it runs, to roll back at once: every name of
the release goes back to the old colour in one transaction, and the release exits 1. Waits
until it has; if the release does not act within 10s (its bgctl is gone or stuck), revokes
the release's lease, which takes its steps with it.`,
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o) },
	run: func(ctx context.Context, c *cli, args []string) error {
		return c.request(ctx, args, "abort", func(*releaseState) bool { return false })
	},
}

var pauseCommand = &command{
	name: "pause", args: "NAME [--reason TEXT]",
	short: "Hold a running release at its current step",
	long: `Asks the bgctl release running NAME to stay at its current step: the bake clock stops, and the
analysis goes on (and still rolls back on failures). bgctl resume NAME goes on from there.`,
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o) },
	run: func(ctx context.Context, c *cli, args []string) error {
		return c.request(ctx, args, "pause", func(s *releaseState) bool { return s.State == statePaused })
	},
}

var resumeCommand = &command{
	name: "resume", args: "NAME [--reason TEXT]",
	short: "Go on with a paused release",
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o) },
	long:  `Asks the bgctl release running NAME, paused by bgctl pause, to go on with its bake.`,
	run: func(ctx context.Context, c *cli, args []string) error {
		return c.request(ctx, args, "resume", func(s *releaseState) bool { return s.State != statePaused })
	},
}

// requestWait is how long abort, pause and resume wait for the release to
// act: it watches etcd, and acts within a second unless it is gone.
const requestWait = 10 * time.Second

// request puts action for the release of the one name in args, and waits
// until the release's state is done(state), or the release has ended.
func (c *cli) request(ctx context.Context, args []string, action string, done func(*releaseState) bool) error {
	ns, err := oneName(args)
	if err != nil {
		return err
	}
	n := ns[0]
	cli, err := c.connect(ctx)
	if err != nil {
		return err
	}
	st, lease, err := c.readState(ctx, n)
	if stale := (*noReleaseError)(nil); errors.As(err, &stale) && stale.stale != nil && action == "abort" {
		return c.deleteStale(ctx, stale)
	} else if err != nil {
		return err
	}
	req, _ := json.Marshal(releaseRequest{Action: action, User: c.who(), Reason: c.opts.reason, Time: time.Now().UTC()})
	pctx, cancel := c.timeout(ctx)
	_, err = cli.Put(pctx, c.requestKey(n), string(req), clientv3.WithLease(lease))
	cancel()
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return fmt.Errorf("no release of %s is running (it ended as bgctl asked)", n)
	} else if err != nil {
		return c.etcdError("asking the release to "+action, err)
	}
	fmt.Fprintf(c.io.Stdout, "asked the release of %s (%s, run by %s on %s, pid %d) to %s\n", n, st.Plan, st.User, st.Host, st.PID, action)
	deadline := time.Now().Add(requestWait)
	for {
		now, _, err := c.readState(ctx, n)
		var gone *noReleaseError
		switch {
		case errors.As(err, &gone):
			// Ended: as asked, or on its own (a rollback, the last step)
			// before it got to the request; its output says which.
			fmt.Fprintf(c.io.Stdout, "the release of %s has ended\n", n)
			return nil
		case err == nil && done(now):
			fmt.Fprintf(c.io.Stdout, "the release of %s is %s, at step %d of %d\n", n, now.State, now.Step, now.Steps)
			return nil
		case err != nil:
			return err
		case time.Now().After(deadline) && action == "abort":
			// Its bgctl is gone or stuck: end the release's lease here,
			// which takes its steps, and the names are back on the old
			// colour now rather than when the lease runs out.
			rctx, cancel := c.timeout(ctx)
			_, err := cli.Revoke(rctx, lease)
			cancel()
			did := "bgctl revoked its lease instead, so etcd dropped its steps and"
			if errors.Is(err, rpctypes.ErrLeaseNotFound) {
				did = "its lease was gone already, and its steps with it:"
			} else if err != nil {
				return c.etcdError(fmt.Sprintf("the release of %s did not act within %v; revoking its lease", n, requestWait), err)
			}
			now, rev, err := c.whereNow(ctx, st.Names, st.From)
			if err != nil {
				return fmt.Errorf("the release of %s did not act within %v (is its bgctl gone?): %s (lease %x); reading the names after: %v", n, requestWait, did, lease, err)
			}
			return fmt.Errorf("the release of %s did not act within %v (is its bgctl gone?): %s %s (lease %x; read back at revision %d)", n, requestWait, did, now, lease, rev)
		case time.Now().After(deadline):
			return fmt.Errorf("the release of %s did not act within %v: if its bgctl is gone, its lease runs out and the names go back to %s by themselves", n, requestWait, st.From)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// noRelease is the condition that no release runs n: its state key has
// no lease. etcd compares a missing key as one with lease 0, so that is
// no state key, or one put without a lease (by etcdctl, say): stale, and
// no cause to refuse a write. A key on a lease lives only as long as it.
func (c *cli) noRelease(n string) clientv3.Cmp {
	return clientv3.Compare(clientv3.LeaseValue(c.stateKey(n)), "=", 0)
}

// noReleaseError says that no release runs name, and which stale state key
// there is, if any.
type noReleaseError struct {
	name  string
	stale *mvccpb.KeyValue
	why   string // why the stale key counts for nothing
}

func (e *noReleaseError) Error() string {
	if e.stale == nil {
		return "no release of " + e.name + " is running"
	}
	return fmt.Sprintf("no release of %s is running: %s is stale, %s; bgctl abort %s deletes it", e.name, schema.Quote(string(e.stale.Key)), e.why, e.name)
}

// readState reads the state of the release running name, and its lease:
// a state key counts only while its lease lives.
func (c *cli) readState(ctx context.Context, n string) (*releaseState, clientv3.LeaseID, error) {
	cli, err := c.connect(ctx)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	resp, err := cli.Get(ctx, c.stateKey(n))
	if err != nil {
		return nil, 0, c.etcdError("reading "+c.stateKey(n), err)
	}
	if len(resp.Kvs) == 0 {
		return nil, 0, &noReleaseError{name: n}
	}
	kv := resp.Kvs[0]
	if why, err := c.leaseGone(ctx, kv); err != nil {
		return nil, 0, err
	} else if why != "" {
		return nil, 0, &noReleaseError{name: n, stale: kv, why: why}
	}
	var st releaseState
	if err := json.Unmarshal(kv.Value, &st); err != nil {
		return nil, 0, fmt.Errorf("%s holds no release state of bgctl (%v), on lease %x: writes to %s wait until that lease ends, or etcdctl lease revoke %x ends it now",
			schema.Quote(c.stateKey(n)), err, kv.Lease, n, kv.Lease)
	}
	return &st, clientv3.LeaseID(kv.Lease), nil
}

// leaseGone is why kv's lease does not hold it any more ("" while it
// lives): no lease at all, or one that has run out.
func (c *cli) leaseGone(ctx context.Context, kv *mvccpb.KeyValue) (string, error) {
	if kv.Lease == 0 {
		return "it has no lease (a release puts it on its own; written outside bgctl?)", nil
	}
	resp, err := c.etcd.TimeToLive(ctx, clientv3.LeaseID(kv.Lease))
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return "", c.etcdError(fmt.Sprintf("reading lease %x of %s", kv.Lease, kv.Key), err)
	}
	if err != nil || resp.TTL <= 0 {
		return fmt.Sprintf("its lease %x has run out", kv.Lease), nil
	}
	return "", nil
}

// deleteStale is abort of a name whose state key no release holds: it
// deletes the key, if it is still as read, and says where the name is.
func (c *cli) deleteStale(ctx context.Context, e *noReleaseError) error {
	key := string(e.stale.Key)
	tctx, cancel := c.timeout(ctx)
	resp, err := c.etcd.Txn(tctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", e.stale.ModRevision)).Then(clientv3.OpDelete(key)).Commit()
	cancel()
	if err != nil {
		return c.etcdError("deleting the stale "+key, err)
	}
	if !resp.Succeeded {
		return fmt.Errorf("%s changed while bgctl read it: nothing was deleted; run bgctl abort %s again", schema.Quote(key), e.name)
	}
	now, _, err := c.whereNow(ctx, []string{e.name}, "")
	if err != nil {
		return err
	}
	fmt.Fprintf(c.io.Stdout, "no release of %s was running: %s was stale, %s; bgctl deleted it (revision %d), revoked no lease and rolled nothing back: %s\n",
		e.name, schema.Quote(key), e.why, resp.Header.Revision, now)
	return nil
}

// whereNow reads names and says what each answers now, and whether that
// is the colour from, when given; with the revision read.
func (c *cli) whereNow(ctx context.Context, names []string, from string) (string, int64, error) {
	names = slices.DeleteFunc(slices.Clone(names), func(n string) bool { return schema.ValidateName(n) != nil })
	ns, rev, err := c.read(ctx, names)
	if err != nil {
		return "", 0, err
	}
	var says []string
	for _, n := range names {
		v := ns[n].view(c.opts.maxTTL)
		if from, err := schema.ParseColour(from); err == nil && v.share(from) == 100 {
			says = append(says, fmt.Sprintf("%s answers %s again", n, from))
		} else {
			says = append(says, n+": "+v.where())
		}
	}
	return strings.Join(says, ", "), rev, nil
}

// readStates reads the state of every running release, by name; none for
// a user etcd does not let read them.
func (c *cli) readStates(ctx context.Context) (map[string]*releaseState, error) {
	cli, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	resp, err := cli.Get(ctx, c.globals.releasePrefix, clientv3.WithPrefix())
	if errors.Is(err, rpctypes.ErrPermissionDenied) {
		return nil, nil // a user who may read the names but not the releases
	} else if err != nil {
		return nil, c.etcdError("reading "+c.globals.releasePrefix, err)
	}
	states := map[string]*releaseState{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), c.globals.releasePrefix)
		n, isState := strings.CutSuffix(rest, "/state")
		_, isRequest := strings.CutSuffix(rest, "/request")
		why, err := c.leaseGone(ctx, kv)
		var st releaseState
		switch {
		case err != nil:
			return nil, err
		case !isState && !isRequest:
			c.warnForeign(string(kv.Key), "not a key of bgctl's releases (NAME/state or NAME/request)")
		case why != "":
			c.warnForeign(string(kv.Key), "stale: "+why+"; no release holds it")
		case isState && json.Unmarshal(kv.Value, &st) != nil:
			c.warnForeign(string(kv.Key), "not a release state of bgctl (not its JSON)")
		case isState:
			states[n] = &st
		}
	}
	return states, nil
}

// describe is who runs a release, for an error.
func (s *releaseState) describe() string {
	return fmt.Sprintf("%s, run by %s on %s (pid %d) since %s, at step %d of %d", s.Plan, s.User, s.Host, s.PID, clock(s.Started), s.Step, s.Steps)
}

func joinNames(ns []string) string { return strings.Join(ns, ", ") }

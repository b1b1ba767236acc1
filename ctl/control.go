package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
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
		return c.request(ctx, args, "abort", func(s *releaseState) bool { return s == nil })
	},
}

var pauseCommand = &command{
	name: "pause", args: "NAME [--reason TEXT]",
	short: "Hold a running release at its current step",
	long: `Asks the bgctl release running NAME to stay at its current step: the bake clock stops, and the
analysis goes on (and still rolls back on failures). bgctl resume NAME goes on from there.`,
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o) },
	run: func(ctx context.Context, c *cli, args []string) error {
		return c.request(ctx, args, "pause", func(s *releaseState) bool { return s != nil && s.State == statePaused })
	},
}

var resumeCommand = &command{
	name: "resume", args: "NAME [--reason TEXT]",
	short: "Go on with a paused release",
	flags: func(fs *pflag.FlagSet, o *options) { reasonFlag(fs, o) },
	long:  `Asks the bgctl release running NAME, paused by bgctl pause, to go on with its bake.`,
	run: func(ctx context.Context, c *cli, args []string) error {
		return c.request(ctx, args, "resume", func(s *releaseState) bool { return s != nil && s.State != statePaused })
	},
}

// requestWait is how long abort, pause and resume wait for the release to
// act: it watches etcd, and acts within a second unless it is gone.
const requestWait = 10 * time.Second

// request puts action for the release of the one name in args, and waits
// until the release's state is done(state), nil once the state key is
// gone.
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
	if err != nil {
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
		case errors.As(err, &gone) && done(nil):
			fmt.Fprintf(c.io.Stdout, "the release of %s has ended\n", n)
			return nil
		case err == nil && done(now):
			fmt.Fprintf(c.io.Stdout, "the release of %s is %s, at step %d of %d\n", n, now.State, now.Step, now.Steps)
			return nil
		case err != nil && !errors.As(err, &gone):
			return err
		case time.Now().After(deadline) && action == "abort":
			// Its bgctl is gone or stuck: end the release's lease here,
			// which takes its steps, and the names are back on the old
			// colour now rather than when the lease runs out.
			rctx, cancel := c.timeout(ctx)
			_, err := cli.Revoke(rctx, lease)
			cancel()
			if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
				return c.etcdError(fmt.Sprintf("the release of %s did not act within %v; revoking its lease", n, requestWait), err)
			}
			return fmt.Errorf("the release of %s did not act within %v (is its bgctl gone?): bgctl revoked its lease instead, so etcd dropped its steps and %s answers %s again", n, requestWait, joinNames(st.Names), st.From)
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

type noReleaseError struct{ name string }

func (e *noReleaseError) Error() string { return "no release of " + e.name + " is running" }

// readState reads the state of the release running name, and its lease.
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
		return nil, 0, &noReleaseError{n}
	}
	var st releaseState
	if err := json.Unmarshal(resp.Kvs[0].Value, &st); err != nil {
		return nil, 0, fmt.Errorf("%s: %v", c.stateKey(n), err)
	}
	return &st, clientv3.LeaseID(resp.Kvs[0].Lease), nil
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
		n, ok := strings.CutSuffix(strings.TrimPrefix(string(kv.Key), c.globals.releasePrefix), "/state")
		var st releaseState
		if ok && json.Unmarshal(kv.Value, &st) == nil {
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

package ctl

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// cli is one run of a command.
type cli struct {
	globals  *globals
	opts     *options
	io       IO
	flags    *pflag.FlagSet
	recorded string // the command line as history records it
	etcd     *clientv3.Client
	release  clientv3.LeaseID // the lease of the release this command runs, if it runs one
}

// flagGiven reports whether the command line gave the flag.
func (c *cli) flagGiven(name string) bool { return c.flags.Changed(name) }

func (c *cli) close() {
	if c.etcd != nil {
		c.etcd.Close()
	}
}

// name is one name's keys as etcd holds them at one revision.
type name struct {
	name    string
	keys    map[string]*mvccpb.KeyValue // by field, unknown fields too
	history int64                       // the number of its newest history entry, 0 for none
}

func (n *name) value(field string) (string, bool) {
	kv := n.keys[field]
	if kv == nil {
		return "", false
	}
	return string(kv.Value), true
}

// revision is the newest mod revision among the name's keys.
func (n *name) revision() int64 {
	var r int64
	for _, kv := range n.keys {
		r = max(r, kv.ModRevision)
	}
	return r
}

// read reads the keys of the names given, all at one revision, with the
// number of each one's newest history entry. A name with no keys is
// returned empty: whether that is an error is the command's to say.
func (c *cli) read(ctx context.Context, names []string) (map[string]*name, int64, error) {
	cli, err := c.connect(ctx)
	if err != nil {
		return nil, 0, err
	}
	var ops []clientv3.Op
	for _, n := range names {
		ops = append(ops,
			clientv3.OpGet(c.dir(n), clientv3.WithPrefix()),
			clientv3.OpGet(c.historyDir(n), append(clientv3.WithLastKey(), clientv3.WithKeysOnly())...))
	}
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	resp, err := cli.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, c.etcdError("reading "+strings.Join(names, ", "), err)
	}
	out := make(map[string]*name, len(names))
	for i, n := range names {
		got := &name{name: n, keys: map[string]*mvccpb.KeyValue{}}
		for _, kv := range resp.Responses[2*i].GetResponseRange().Kvs {
			got.keys[strings.TrimPrefix(string(kv.Key), c.dir(n))] = kv
		}
		var last []byte
		for _, kv := range resp.Responses[2*i+1].GetResponseRange().Kvs {
			last = kv.Key
		}
		if got.history, err = c.newestHistory(ctx, c.historyDir(n), last); err != nil {
			return nil, 0, err
		}
		out[n] = got
	}
	return out, resp.Header.Revision, nil
}

// readAll reads every name under the prefix.
func (c *cli) readAll(ctx context.Context) (map[string]*name, int64, error) {
	cli, err := c.connect(ctx)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	resp, err := cli.Get(ctx, c.globals.prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, c.etcdError("reading "+c.globals.prefix, err)
	}
	out := map[string]*name{}
	for _, kv := range resp.Kvs {
		n, field, err := schema.ParseKey(c.globals.prefix, string(kv.Key))
		if err != nil {
			continue // not a name's: the plugin ignores it too
		}
		if out[n] == nil {
			out[n] = &name{name: n, keys: map[string]*mvccpb.KeyValue{}}
		}
		out[n].keys[field] = kv
	}
	return out, resp.Header.Revision, nil
}

// etcdError says what failed against which endpoints.
func (c *cli) etcdError(what string, err error) error {
	return fmt.Errorf("%s from etcd at %s: %w", what, c.globals.shownEndpoints(), err)
}

// dir is the etcd directory of a name's keys.
func (c *cli) dir(n string) string { return c.globals.prefix + n + "/" }

// names checks the names given on the command line, as the layout writes
// them: lowercase, without the trailing dot.
func names(args []string, what string) ([]string, error) {
	if len(args) == 0 {
		return nil, usagef("give the %s", what)
	}
	var out []string
	for _, a := range args {
		n := strings.ToLower(strings.TrimSuffix(a, "."))
		if err := schema.ValidateName(n); err != nil {
			return nil, usagef("%v", err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// oneName checks the one name a command takes, as names does.
func oneName(args []string) ([]string, error) {
	if len(args) != 1 {
		return nil, usagef("give one name")
	}
	return names(args, "name")
}

// managed refuses names that have no keys.
func (c *cli) managed(ns map[string]*name) error {
	for _, n := range slices.Sorted(maps.Keys(ns)) {
		if len(ns[n].keys) == 0 {
			return fmt.Errorf("%s is not managed: etcd holds no key under %s", n, c.dir(n))
		}
	}
	return nil
}

// view is what the plugin makes of a name's keys as etcd holds them, with
// the default limits (max_ttl 3600 unless --max-ttl says otherwise).
type view struct {
	active    schema.Colour
	hasActive bool
	targets   [2]schema.Target
	trial     *schema.Trial
	ttl       *uint32 // the ttl key; nil for the Corefile's ttl
	canary    uint8
	ignored   map[string]string // field -> why the plugin ignores it
}

// view parses every key of n as the plugin does, and says what it would
// refuse, and why.
func (n *name) view(maxTTL uint32) view {
	v := view{ignored: map[string]string{}}
	for field, kv := range n.keys {
		value := string(kv.Value)
		var err error
		switch field {
		case schema.FieldActive:
			v.active, err = schema.ParseColour(value)
			v.hasActive = err == nil
		case schema.FieldBlue, schema.FieldGreen:
			c, _ := schema.ParseColour(field)
			v.targets[c], err = schema.ParseTarget(value)
			if err != nil {
				v.targets[c] = schema.Target{}
			}
		case schema.FieldTTL:
			var ttl uint32
			if ttl, err = schema.ParseTTL(value, maxTTL); err == nil {
				v.ttl = &ttl
			}
		case schema.FieldCanary:
			v.canary, err = schema.ParseCanary(value)
		case schema.FieldTrial:
			var t schema.Trial
			if t, err = schema.ParseTrial(value, kv.Lease, maxTTL); err == nil {
				v.trial = &t
			}
		default:
			err = schema.Validate(field, value, kv.Lease)
		}
		if err != nil {
			v.ignored[field] = err.Error()
		}
	}
	// What resolve in the plugin adds, for a name etcd holds this way.
	switch {
	case !v.hasActive:
		v.trialIgnored("the name is not served, so there is no colour to come back to")
	case !v.targets[v.active].Set():
		v.ignored[schema.FieldActive] = v.active.String() + " has no target"
		v.trialIgnored("the name is not served, so there is no colour to come back to")
	case v.trial != nil && !v.targets[v.trial.Colour].Set():
		v.trialIgnored(v.trial.Colour.String() + " has no target")
	}
	if idle := v.answers().Other(); v.serving() && v.canary > 0 && !v.targets[idle].Set() {
		v.ignored[schema.FieldCanary] = idle.String() + " has no target"
	}
	return v
}

func (v *view) trialIgnored(why string) {
	if v.trial != nil {
		v.trial = nil
		v.ignored[schema.FieldTrial] = why
	}
}

func (v view) serving() bool { return v.hasActive && v.targets[v.active].Set() }

// answers is the colour most clients get: the trial's, else the active one.
func (v view) answers() schema.Colour {
	if v.trial != nil {
		return v.trial.Colour
	}
	return v.active
}

// split is the canary share in effect: the share of client networks the
// plugin sends to the colour other than the one answered, from the trial
// when it says one, else from the canary key, which the plugin ignores
// while that colour has no target.
func (v view) split() int {
	switch {
	case !v.serving() || !v.targets[v.answers().Other()].Set():
		return 0
	case v.trial != nil && v.trial.HasCanary:
		return int(v.trial.Canary)
	}
	if _, ignored := v.ignored[schema.FieldCanary]; ignored {
		return 0
	}
	return int(v.canary)
}

// share is the percentage of client networks the plugin answers col, as
// resolve makes it of these keys: checks aside, which may fail a name over.
func (v view) share(col schema.Colour) int {
	switch {
	case !v.serving():
		return 0
	case col == v.answers():
		return 100 - v.split()
	}
	return v.split()
}

// most is the colour the plugin answers most client networks with: the
// one answered, unless a canary above 50 % sends most to the other.
func (v view) most() schema.Colour {
	if a := v.answers(); v.share(a.Other()) <= v.share(a) {
		return a
	}
	return v.answers().Other()
}

// where says which colour the plugin answers which share of client
// networks: "100 % on blue", "90 % on green, 10 % on blue".
func (v view) where() string {
	if !v.serving() {
		return "not served"
	}
	a := v.answers()
	s := fmt.Sprintf("%d %% on %s", v.share(a), a)
	if o := v.share(a.Other()); o > 0 {
		s += fmt.Sprintf(", %d %% on %s", o, a.Other())
	}
	return s
}

// moved is the percentage of client networks answered another colour after
// than before. The plugin gives each network a fixed slot and answers green
// below a cut (canary.go in the plugin), so the networks that move are those
// between the two cuts: the change in green's share.
func moved(before, after view) int {
	d := after.share(schema.Green) - before.share(schema.Green)
	return max(d, -d)
}

// movement says how many client networks moved, and where they all are now:
// "10 % of client networks moved (NOTE): 100 % on blue".
func movement(before, after view, note string) string {
	s := "no client network moved"
	if m := moved(before, after); m > 0 {
		s = fmt.Sprintf("%d %% of client networks moved", m)
	}
	if note != "" {
		s += " (" + note + ")"
	}
	return s + ": " + after.where()
}

// answeredTTL is the TTL answered, and whether it is known: without a ttl
// key it is the Corefile's, which only the servers know.
func (v view) answeredTTL() (uint32, bool) {
	if v.trial != nil && v.trial.HasTTL {
		return v.trial.TTL, true
	}
	return v.answeredTTLWithoutTrial()
}

// answeredTTLWithoutTrial is the TTL answered once no trial lowers it.
func (v view) answeredTTLWithoutTrial() (uint32, bool) {
	if v.ttl != nil {
		return *v.ttl, true
	}
	return defaultTTL, false
}

// defaultTTL is the plugin's ttl when the Corefile does not set one.
const defaultTTL = 30

func itoa[T ~int | ~uint8 | ~uint32 | ~int64](n T) string { return strconv.FormatInt(int64(n), 10) }

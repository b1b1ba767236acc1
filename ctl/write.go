package ctl

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// An edit is what one command changes of one name: for each field, the new
// value, or nil to delete the key.
type edit struct {
	name    *name // as read
	changes map[string]*string
	lease   clientv3.LeaseID // the trial key's, when it is put
}

func newEdit(n *name) *edit { return &edit{name: n, changes: map[string]*string{}} }

func (e *edit) put(field, value string) { e.changes[field] = &value }
func (e *edit) del(field string)        { e.changes[field] = nil }

// effective drops the changes that change nothing.
func (e *edit) effective() bool {
	for f, to := range e.changes {
		from, had := e.name.value(f)
		if (to == nil && !had) || (to != nil && had && *to == from && f != schema.FieldTrial) {
			delete(e.changes, f)
		}
	}
	return len(e.changes) > 0
}

// commit writes every edit in one transaction, with a history entry for
// each name, if and only if no key of those names changed since they were
// read at revision read: a change by someone else in between makes it fail,
// it never overwrites one. Nor does it write to a name that a release
// (other than the one this command runs) is taking through its steps. It
// returns the revision of the change.
func (c *cli) commit(ctx context.Context, read int64, reason string, edits []*edit) (int64, error) {
	cli, err := c.connect(ctx)
	if err != nil {
		return 0, err
	}
	now := time.Now().UTC()
	var conds []clientv3.Cmp
	var ops []clientv3.Op
	for _, e := range edits {
		n := e.name
		// Every key read is as it was, and no key was put since.
		for _, kv := range n.keys {
			conds = append(conds, clientv3.Compare(clientv3.ModRevision(string(kv.Key)), "=", kv.ModRevision))
		}
		conds = append(conds, clientv3.Compare(clientv3.ModRevision(c.dir(n.name)), "<", read+1).WithPrefix())
		if c.release == 0 {
			conds = append(conds, clientv3.Compare(clientv3.CreateRevision(c.stateKey(n.name)), "=", 0))
		} else {
			conds = append(conds, clientv3.Compare(clientv3.LeaseValue(c.stateKey(n.name)), "=", c.release))
		}
		entry := historyEntry{Time: now, User: c.who(), Command: c.recorded, Reason: reason}
		for _, f := range slices.Sorted(maps.Keys(e.changes)) {
			to := e.changes[f]
			ch := change{Field: f, To: to}
			if from, had := n.value(f); had {
				ch.From = &from
			}
			entry.Changes = append(entry.Changes, ch)
			key := schema.Key(c.globals.prefix, n.name, f)
			switch {
			case to == nil:
				ops = append(ops, clientv3.OpDelete(key))
			case f == schema.FieldTrial:
				ops = append(ops, clientv3.OpPut(key, *to, clientv3.WithLease(e.lease)))
			default:
				ops = append(ops, clientv3.OpPut(key, *to))
			}
		}
		hc, hops, err := c.record(n, entry)
		if err != nil {
			return 0, err
		}
		conds = append(conds, hc...)
		ops = append(ops, hops...)
	}
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	resp, err := cli.Txn(ctx).If(conds...).Then(ops...).Commit()
	if err != nil {
		return 0, c.etcdError("writing", err)
	}
	if !resp.Succeeded {
		var ns []string
		for _, e := range edits {
			ns = append(ns, e.name.name)
			if st, lease, err := c.readState(ctx, e.name.name); err == nil && lease != c.release {
				return 0, fmt.Errorf("a release of %s is running (%s): nothing was written; bgctl abort %s stops it, or wait for it to end", e.name.name, st.describe(), e.name.name)
			}
		}
		return 0, fmt.Errorf("%s changed in etcd since bgctl read it at revision %d (someone else wrote meanwhile): nothing was written; see bgctl status %s, and run the command again",
			strings.Join(ns, ", "), read, strings.Join(ns, " "))
	}
	return resp.Header.Revision, nil
}

// check refuses an edit that would leave a value the plugin ignores: every
// value the edit puts must parse as the plugin parses it, and the name as
// a whole must be one the plugin serves as asked (an active colour with a
// target, a canary with an idle colour to send clients to).
func (c *cli) check(e *edit) error {
	v := c.after(e).view(c.opts.maxTTL)
	for _, f := range slices.Sorted(maps.Keys(e.changes)) {
		if why, bad := v.ignored[f]; bad && e.changes[f] != nil {
			return fmt.Errorf("%s: the plugin would ignore %s: %s; nothing was written", e.name.name, schema.Quote(schema.Key(c.globals.prefix, e.name.name, f)+" = "+redactValue(f, *e.changes[f])), why)
		}
	}
	return nil
}

// after is the name as etcd holds it once the edit is written.
func (c *cli) after(e *edit) *name {
	after := &name{name: e.name.name, keys: maps.Clone(e.name.keys)}
	for f, to := range e.changes {
		if to == nil {
			delete(after.keys, f)
			continue
		}
		kv := &mvccpb.KeyValue{Key: []byte(schema.Key(c.globals.prefix, e.name.name, f)), Value: []byte(*to)}
		if f == schema.FieldTrial {
			kv.Lease = int64(e.lease)
		}
		after.keys[f] = kv
	}
	return after
}

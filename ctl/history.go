package ctl

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// History is kept in etcd under its own prefix (by default
// /bluegreen-history/), outside the plugin's, as ordinary keys: compaction,
// which drops old revisions, leaves it be. Each name has numbered entries,
// /bluegreen-history/NAME/00000000000000000042, written in the transaction
// of the change each records, so that the entry's mod revision is the
// change's.

// keepHistory is how many entries of one name are kept: the oldest go as
// new ones come.
const keepHistory = 100

type historyEntry struct {
	Revision int64     `json:"revision,omitempty"` // the entry's mod revision: not stored, it is the key's
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	Command  string    `json:"command"`
	Reason   string    `json:"reason,omitempty"`
	Changes  []change  `json:"changes"`
	key      string    // where etcd holds it
}

// A change is one key's value before and after; nil for no key.
type change struct {
	Field string  `json:"key"`
	From  *string `json:"from"`
	To    *string `json:"to"`
}

func (c *cli) historyDir(n string) string { return c.globals.historyPrefix + n + "/" }

func historyKey(dir string, number int64) string { return fmt.Sprintf("%s%020d", dir, number) }

// historyNumber is the number of the entry at key under dir, and whether
// key is bgctl's: exactly 20 digits, 1 to MaxInt64. Any other key there
// (etcdctl's, a note, a number too long) is foreign: never counted, never
// deleted.
func historyNumber(dir, key string) (int64, bool) {
	s, ok := strings.CutPrefix(key, dir)
	if !ok || len(s) != 20 || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64) // fails above MaxInt64
	return n, err == nil && n > 0
}

// newestHistory is the number of the newest entry in dir, given the key
// that sorts last there (nil for none): that one, unless it is foreign,
// in which case the digit range is paged down from the top to the
// largest valid number. Every valid number starts with 0 (MaxInt64 has 19
// digits), so that range is dir+"0" up to dir+"1".
func (c *cli) newestHistory(ctx context.Context, dir string, last []byte) (int64, error) {
	if last == nil {
		return 0, nil
	}
	if n, ok := historyNumber(dir, string(last)); ok {
		return n, nil
	}
	cli, err := c.connect(ctx)
	if err != nil {
		return 0, err
	}
	c.warnForeign(string(last), notHistory)
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	for end := dir + "1"; ; {
		resp, err := cli.Get(ctx, dir+"0", clientv3.WithRange(end), clientv3.WithKeysOnly(),
			clientv3.WithSort(clientv3.SortByKey, clientv3.SortDescend), clientv3.WithLimit(keepHistory))
		if err != nil {
			return 0, c.etcdError("reading the history numbers under "+dir, err)
		}
		for _, kv := range resp.Kvs {
			if n, ok := historyNumber(dir, string(kv.Key)); ok {
				return n, nil
			} else if string(kv.Key) != string(last) {
				c.warnForeign(string(kv.Key), notHistory)
			}
		}
		if !resp.More {
			return 0, nil
		}
		end = string(resp.Kvs[len(resp.Kvs)-1].Key)
	}
}

const notHistory = "not a history entry of bgctl (it numbers them with 20 digits)"

// warnForeign says that bgctl skips a key in its own namespaces that it did
// not write.
func (c *cli) warnForeign(key, why string) {
	fmt.Fprintf(c.io.Stderr, "Warning: skipping %s: %s\n", schema.Quote(key), why)
}

// record is what a transaction adds to write entry as n's next one: the
// condition that no one took that number meanwhile, its put, and the
// delete of the entry that falls out of the last keepHistory. One key,
// never a range: a foreign key between two numbers stays, and a number
// put far ahead by someone else deletes nothing of bgctl's.
func (c *cli) record(n *name, entry historyEntry) ([]clientv3.Cmp, []clientv3.Op, error) {
	dir := c.historyDir(n.name)
	if n.history == math.MaxInt64 {
		return nil, nil, fmt.Errorf("the newest history entry of %s is %s, the highest number there is: bgctl, which counts one a change, did not write it; nothing was written; remove it with etcdctl del %s",
			n.name, schema.Quote(historyKey(dir, n.history)), historyKey(dir, n.history))
	}
	data, err := json.Marshal(entry)
	if err != nil {
		return nil, nil, err
	}
	next := n.history + 1
	cmp := clientv3.Compare(clientv3.CreateRevision(historyKey(dir, next)), "=", 0)
	ops := []clientv3.Op{clientv3.OpPut(historyKey(dir, next), string(data))}
	if old := next - keepHistory; old > 0 {
		ops = append(ops, clientv3.OpDelete(historyKey(dir, old)))
	}
	return []clientv3.Cmp{cmp}, ops, nil
}

// readHistory is n's history, oldest first: the entries bgctl wrote. Any
// other key under its directory, or an entry that is not bgctl's JSON, is
// skipped with a warning.
func (c *cli) readHistory(ctx context.Context, n string) ([]historyEntry, error) {
	cli, err := c.connect(ctx)
	if err != nil {
		return nil, err
	}
	ctx, cancel := c.timeout(ctx)
	defer cancel()
	dir := c.historyDir(n)
	resp, err := cli.Get(ctx, dir, clientv3.WithPrefix())
	if err != nil {
		return nil, c.etcdError("reading the history of "+n, err)
	}
	out := make([]historyEntry, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		if _, ok := historyNumber(dir, string(kv.Key)); !ok {
			c.warnForeign(string(kv.Key), notHistory)
			continue
		}
		var e historyEntry
		if err := json.Unmarshal(kv.Value, &e); err != nil || e.Command == "" || e.Time.IsZero() {
			c.warnForeign(string(kv.Key), "not a history entry of bgctl (not its JSON, with a command and a time)")
			continue
		}
		e.Revision, e.key = kv.ModRevision, string(kv.Key)
		out = append(out, e)
	}
	return out, nil
}

var historyCommand = &command{
	name: "history", args: "NAME [-o table|json]",
	short: "Show every change bgctl made to a name",
	long: `Lists the changes bgctl made to NAME, oldest first: the revision of each, when, who (the etcd
user, else the OS user), the command, each key from -> to, and the reason. The history is kept in
etcd under --history-prefix, written in the same transaction as the change, so it survives
compaction; the last 100 entries per name are kept. Changes made with etcdctl are not in it.`,
	flags: func(fs *pflag.FlagSet, o *options) { outputFlag(fs, o) },
	run: func(ctx context.Context, c *cli, args []string) error {
		ns, err := oneName(args)
		if err != nil {
			return err
		}
		entries, err := c.readHistory(ctx, ns[0])
		if err != nil {
			return err
		}
		for i := range entries {
			for j := range entries[i].Changes {
				ch := &entries[i].Changes[j]
				ch.From, ch.To = redactPtr(ch.Field, ch.From), redactPtr(ch.Field, ch.To)
			}
		}
		if c.opts.output == "json" {
			return writeJSON(c.io.Stdout, entries)
		}
		if len(entries) == 0 {
			fmt.Fprintf(c.io.Stdout, "no history for %s under %s\n", ns[0], c.globals.historyPrefix)
			return nil
		}
		w := tabwriter.NewWriter(c.io.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "REVISION\tTIME\tUSER\tCOMMAND\tCHANGES\tREASON")
		for _, e := range entries {
			var chs []string
			for _, ch := range e.Changes {
				chs = append(chs, ch.Field+" "+orNone(ch.From)+" -> "+orNone(ch.To))
			}
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Revision, e.Time.Local().Format("2006-01-02 15:04:05 MST"), e.User, e.Command, strings.Join(chs, "; "), e.Reason)
		}
		return w.Flush()
	},
}

func orNone(s *string) string {
	if s == nil {
		return "(none)"
	}
	return *s
}

// redactPtr is a value as bgctl shows it: a check without what may be a
// secret.
func redactPtr(field string, v *string) *string {
	if v == nil {
		return nil
	}
	r := redactValue(field, *v)
	return &r
}

func redactValue(field, v string) string {
	if field == schema.FieldCheck {
		return schema.RedactURL(v)
	}
	return v
}

func outputFlag(fs *pflag.FlagSet, o *options) {
	fs.StringVarP(&o.output, "output", "o", "table", "output format: table or json")
}

func writeJSON(w interface{ Write([]byte) (int, error) }, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

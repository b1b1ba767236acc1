package ctl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
)

// nameStatus is one name in bgctl status -o json: its keys as etcd holds
// them (named as in the layout), and what the plugin makes of them.
type nameStatus struct {
	Name     string            `json:"name"`
	Revision int64             `json:"revision"`
	Active   string            `json:"active,omitempty"`
	Blue     string            `json:"blue,omitempty"`
	Green    string            `json:"green,omitempty"`
	TTL      string            `json:"ttl,omitempty"`
	Canary   string            `json:"canary,omitempty"`
	Check    string            `json:"check,omitempty"`
	Trial    string            `json:"trial,omitempty"`
	Answers  string            `json:"answers"`           // the colour the plugin answers most clients with; "" when not served
	Ignored  map[string]string `json:"ignored,omitempty"` // field -> why the plugin ignores its value
	Servers  []served          `json:"servers,omitempty"` // with --dns: what each server answers
	Release  *releaseState     `json:"release,omitempty"` // the release running the name, if any
}

var statusCommand = &command{
	name: "status", args: "[NAME...] [-o table|json] [--dns ADDR,...]",
	short: "Show every name (or those given) as etcd holds it and as the plugin answers it",
	long: `Shows each name's active colour, targets, ttl, canary share, check and trial, the etcd revision
of its newest key, and what the plugin makes of it: the colour it answers, and any value it
ignores, with the reason. With --dns, each CoreDNS server is asked for each name's state over
DNS (_bluegreen.NAME TXT, which bgctl's address must be allowed by the servers' preview
option to see) and the table shows, per server, the colour it answers, the revision it serves
and whether it has caught up with etcd. Exits 1 when a server does not answer or has not caught
up within --dns-timeout.`,
	flags: func(fs *pflag.FlagSet, o *options) {
		outputFlag(fs, o)
		dnsFlags(fs, o, "whether they have caught up with etcd")
		maxTTLFlag(fs, o)
	},
	run: runStatus,
}

func runStatus(ctx context.Context, c *cli, args []string) error {
	servers, err := c.opts.servers()
	if err != nil {
		return err
	}
	var ns map[string]*name
	var rev int64
	if len(args) == 0 {
		ns, rev, err = c.readAll(ctx)
	} else {
		var given []string
		if given, err = names(args, "names"); err != nil {
			return err
		}
		if ns, rev, err = c.read(ctx, given); err == nil {
			err = c.managed(ns)
		}
	}
	if err != nil {
		return err
	}
	releases, err := c.readStates(ctx)
	if err != nil {
		return err
	}
	var out []nameStatus
	agree := true
	for _, n := range slices.Sorted(maps.Keys(ns)) {
		st := c.status(ns[n])
		st.Release = releases[n]
		if len(servers) > 0 {
			var took []time.Duration
			st.Servers, took = until(ctx, servers, n, c.opts.dnsTimeout, false, func(s served) bool { return s.Synced >= rev })
			for i := range st.Servers {
				st.Servers[i].Answers = st.Servers[i].most()
				if s := &st.Servers[i]; took[i] < 0 && s.Error == "" {
					s.Error = fmt.Sprintf("behind: synced to revision %d after %v, etcd is at %d", s.Synced, c.opts.dnsTimeout, rev)
				}
				agree = agree && took[i] >= 0
			}
		}
		out = append(out, st)
	}
	if c.opts.output == "json" {
		if out == nil {
			out = []nameStatus{}
		}
		err = writeJSON(c.io.Stdout, out)
	} else {
		err = c.printStatus(out, rev)
	}
	if err == nil && !agree {
		err = errors.New("not every server answers as etcd holds the names: see the table above")
	}
	return err
}

// status is n as status shows it.
func (c *cli) status(n *name) nameStatus {
	v := n.view(c.opts.maxTTL)
	st := nameStatus{Name: n.name, Revision: n.revision(), Ignored: v.ignored}
	for field, dst := range map[string]*string{
		schema.FieldActive: &st.Active, schema.FieldBlue: &st.Blue, schema.FieldGreen: &st.Green,
		schema.FieldTTL: &st.TTL, schema.FieldCanary: &st.Canary, schema.FieldCheck: &st.Check, schema.FieldTrial: &st.Trial,
	} {
		value, _ := n.value(field)
		*dst = redactValue(field, value)
	}
	if v.serving() {
		st.Answers = v.most().String()
	}
	if len(st.Ignored) == 0 {
		st.Ignored = nil
	}
	return st
}

func (c *cli) printStatus(out []nameStatus, rev int64) error {
	if len(out) == 0 {
		fmt.Fprintf(c.io.Stdout, "no names under %s (etcd revision %d)\n", c.globals.prefix, rev)
		return nil
	}
	w := tabwriter.NewWriter(c.io.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tANSWERS\tACTIVE\tBLUE\tGREEN\tTTL\tCANARY\tCHECK\tTRIAL\tREVISION")
	for _, st := range out {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n", st.Name, dash(st.Answers), dash(st.Active), dash(st.Blue), dash(st.Green),
			dash(st.TTL), dash(st.Canary), dash(st.Check), dash(st.Trial), st.Revision)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, st := range out {
		for _, f := range slices.Sorted(maps.Keys(st.Ignored)) {
			fmt.Fprintf(c.io.Stdout, "%s: the plugin ignores %s: %s\n", st.Name, schema.Key(c.globals.prefix, st.Name, f), st.Ignored[f])
		}
		if st.Answers == "" {
			fmt.Fprintf(c.io.Stdout, "%s: not served\n", st.Name)
		}
		if r := st.Release; r != nil {
			fmt.Fprintf(c.io.Stdout, "%s: a release from %s to %s is %s: %s\n", st.Name, r.From, r.To, r.State, r.describe())
		}
	}
	if len(out[0].Servers) == 0 {
		return nil
	}
	fmt.Fprintln(c.io.Stdout)
	w = tabwriter.NewWriter(c.io.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVER\tNAME\tANSWERS\tTRIAL\tREVISION\tSYNCED\tSTATE")
	for _, st := range out {
		for _, s := range st.Servers {
			state := "caught up with etcd revision " + itoa(rev)
			if s.Error != "" {
				state = s.Error
			}
			if s.Synced == 0 {
				fmt.Fprintf(w, "%s\t%s\t-\t-\t-\t-\t%s\n", s.Server, st.Name, state)
				continue
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", s.Server, st.Name, dash(s.Answers), dash(s.Trial), s.Revision, s.Synced, state)
		}
	}
	return w.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return strings.ReplaceAll(s, "\t", " ")
}

package ctl

import (
	"bufio"
	"context"
	"fmt"
	"strings"

	"github.com/spf13/pflag"
)

var retireCommand = &command{
	name: "retire", args: "NAME [--yes] [--reason TEXT]",
	short: "Stop serving a name: delete its keys",
	long: `Deletes every key of NAME in one transaction, recorded in history: every CoreDNS stops answering
it (NXDOMAIN, or the next plugin with fallthrough). Asks for the name to be typed again, or
takes --yes. bgctl undo NAME brings it back.`,
	flags: func(fs *pflag.FlagSet, o *options) {
		fs.BoolVar(&o.yes, "yes", false, "retire without asking")
		reasonFlag(fs, o)
		maxTTLFlag(fs, o)
	},
	run: func(ctx context.Context, c *cli, args []string) error {
		given, err := oneName(args)
		if err != nil {
			return err
		}
		n, rev, err := c.readOne(ctx, given[0])
		if err != nil {
			return err
		}
		if !c.opts.yes {
			if !c.io.Terminal {
				return usagef("retire deletes every key of %s: give --yes (stdin is not a terminal to ask at)", n.name)
			}
			fmt.Fprintf(c.io.Stderr, "Retire %s? Every CoreDNS stops answering it, and its keys under %s are deleted.\nType the name to confirm: ", n.name, c.dir(n.name))
			line, _ := bufio.NewReader(c.io.Stdin).ReadString('\n')
			if strings.TrimSpace(line) != n.name {
				return fmt.Errorf("%s not retired: the name typed was not %s", n.name, n.name)
			}
		}
		e := newEdit(n)
		for f := range n.keys {
			e.del(f)
		}
		if err := c.apply(ctx, rev, e); err != nil {
			return err
		}
		fmt.Fprintf(c.io.Stdout, "%s retired: no longer answered; bgctl undo %s brings it back\n", n.name, n.name)
		return nil
	},
}

// Package ctl is bgctl, the operator's command for bluegreen releases, as a
// library: cmd/bgctl is its main. Each command has its own file; every
// write goes through the key schema the plugin reads with, in one etcd
// transaction conditional on what was read, with its history entry.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// IO is where a command reads and writes, and what it knows of the world
// around it: a test gives its own.
type IO struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	// Terminal reports whether stdin is a terminal a person answers at:
	// retire asks there, and --user NAME asks for the password there.
	Terminal bool
	// Live reports whether stdout is a terminal a person watches: release
	// keeps a status line up to date there, no wider than Columns says.
	Live    bool
	Columns func() int
}

// Exit codes, as etcdctl and kubectl use them.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitUsage   = 2
)

// A command is one verb of bgctl.
type command struct {
	name, args, short, long string
	flags                   func(*pflag.FlagSet, *options)
	run                     func(ctx context.Context, c *cli, args []string) error
}

// options are every flag of every command; each command defines those it
// takes.
type options struct {
	to, reason                      string
	dns                             []string
	dnsTimeout                      time.Duration
	confirmWithin                   time.Duration
	lowerTTL                        int
	output                          string
	blue, green, ttl, canary, check string
	active                          string
	maxTTL                          uint32
	toRevision                      int64
	yes                             bool
	file                            string
	dryRun                          bool
	keepCanary                      bool
	leaseTTL                        time.Duration
}

var commands = []*command{
	statusCommand, setCommand, switchCommand, confirmCommand, rollbackCommand,
	canaryCommand, promoteCommand, historyCommand, undoCommand, retireCommand,
	releaseCommand, abortCommand, pauseCommand, resumeCommand,
}

// usageError is a command line bgctl cannot run: exit 2.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// Main runs bgctl with args (without the program name) and returns its
// exit code.
func Main(ctx context.Context, args []string, std IO) int {
	g := &globals{}
	top := pflag.NewFlagSet("bgctl", pflag.ContinueOnError)
	top.SetInterspersed(false) // the command's own flags come after it
	top.SetOutput(io.Discard)
	g.define(top)
	help := top.BoolP("help", "h", false, "help for bgctl")
	if err := top.Parse(args); err != nil {
		return fail(std, nil, usageError{err})
	}
	rest := top.Args()
	if *help || len(rest) == 0 || rest[0] == "help" {
		if len(rest) > 1 { // bgctl help switch
			if cmd := lookup(rest[1]); cmd != nil {
				cmd.usage(std.Stdout)
				return ExitOK
			}
		}
		printUsage(std.Stdout, top)
		if len(rest) == 0 && !*help {
			return ExitUsage
		}
		return ExitOK
	}
	cmd := lookup(rest[0])
	if cmd == nil {
		return fail(std, nil, usagef("unknown command %q (commands: %s)", rest[0], commandNames()))
	}
	o := &options{}
	fs := pflag.NewFlagSet("bgctl "+cmd.name, pflag.ContinueOnError)
	fs.SetOutput(io.Discard) // fail prints the error, once
	if cmd.flags != nil {
		cmd.flags(fs, o)
	}
	fs.AddFlagSet(top) // the same flags: global ones may come after the command too
	if err := fs.Parse(rest[1:]); err != nil {
		return fail(std, cmd, usageError{err})
	}
	if *help {
		cmd.usage(std.Stdout)
		return ExitOK
	}
	if err := g.fromEnv(top, fs, std.Getenv); err != nil {
		return fail(std, cmd, err)
	}
	if o.output != "" && o.output != "table" && o.output != "json" {
		return fail(std, cmd, usagef("-o %s: want table or json", o.output))
	}
	c := &cli{globals: g, opts: o, io: std, flags: fs, recorded: recordedCommand(cmd, fs)}
	defer c.close()
	return fail(std, cmd, cmd.run(ctx, c, fs.Args()))
}

// fail prints err, if any, and returns the exit code it calls for.
func fail(io IO, cmd *command, err error) int {
	if err == nil {
		return ExitOK
	}
	fmt.Fprintln(io.Stderr, "Error:", err)
	var ue usageError
	if errors.As(err, &ue) {
		if cmd != nil {
			fmt.Fprintf(io.Stderr, "Run 'bgctl %s --help' for usage.\n", cmd.name)
		} else {
			fmt.Fprintln(io.Stderr, "Run 'bgctl --help' for usage.")
		}
		return ExitUsage
	}
	return ExitFailure
}

func lookup(name string) *command {
	i := slices.IndexFunc(commands, func(c *command) bool { return c.name == name })
	if i < 0 {
		return nil
	}
	return commands[i]
}

func commandNames() string {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	return strings.Join(names, ", ")
}

// usage prints the command's help, with the global flags.
func (cmd *command) usage(w io.Writer) {
	own := pflag.NewFlagSet("", pflag.ContinueOnError)
	if cmd.flags != nil {
		cmd.flags(own, &options{})
	}
	fmt.Fprintf(w, "%s\n\n%s\n\nUsage:\n  bgctl %s %s\n", cmd.short, strings.TrimSpace(cmd.long), cmd.name, cmd.args)
	if own.HasFlags() {
		fmt.Fprintf(w, "\nFlags:\n%s", own.FlagUsages())
	}
	gs := pflag.NewFlagSet("", pflag.ContinueOnError)
	(&globals{}).define(gs)
	fmt.Fprintf(w, "\nGlobal flags (also from BGCTL_<FLAG>, as BGCTL_ENDPOINTS):\n%s", gs.FlagUsages())
}

func printUsage(w io.Writer, top *pflag.FlagSet) {
	fmt.Fprint(w, `bgctl runs blue-green and canary releases of the names bluegreen serves from etcd.

Usage:
  bgctl [global flags] COMMAND [flags] [args]

Commands:
`)
	for _, c := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.short)
	}
	fmt.Fprintf(w, "\nGlobal flags (also from BGCTL_<FLAG>, as BGCTL_ENDPOINTS):\n%s", top.FlagUsages())
	fmt.Fprintln(w, "\nRun 'bgctl COMMAND --help' for a command's flags. Exit codes: 0 done, 1 failed, 2 bad usage.")
}

// recordedCommand is the command line as history records it: the verb, its
// arguments and its own flags, never the global ones (--user may hold a
// password), and a check without what may be a secret.
func recordedCommand(cmd *command, fs *pflag.FlagSet) string {
	parts := append([]string{cmd.name}, fs.Args()...)
	own := pflag.NewFlagSet("", pflag.ContinueOnError)
	if cmd.flags != nil {
		cmd.flags(own, &options{})
	}
	fs.Visit(func(f *pflag.Flag) {
		if own.Lookup(f.Name) == nil || slices.Contains([]string{"output", "dns", "dns-timeout", "yes"}, f.Name) {
			return // not what changes etcd
		}
		v := redactValue(f.Name, f.Value.String())
		if strings.ContainsAny(v, " \t\"'") {
			v = strconv.Quote(v)
		}
		if f.Value.Type() == "bool" {
			parts = append(parts, "--"+f.Name)
			return
		}
		parts = append(parts, "--"+f.Name+"="+v)
	})
	return strings.Join(parts, " ")
}

// Stdio is the process's own IO.
func Stdio() IO {
	return IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Terminal: term.IsTerminal(int(os.Stdin.Fd())), Live: term.IsTerminal(int(os.Stdout.Fd())),
		Columns: func() int {
			w, _, err := term.GetSize(int(os.Stdout.Fd()))
			if err != nil {
				return 0
			}
			return w
		}}
}

// Command bgctl runs blue-green and canary releases of the names the
// bluegreen CoreDNS plugin serves from etcd. See the README, "Releasing
// with bgctl", and bgctl --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/bluegreen-dns/bluegreen/ctl"
)

func main() {
	// Interrupted, a command stops what it waits for and undoes what it
	// started: a trial's lowered ttl, say.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := ctl.Main(ctx, os.Args[1:], ctl.Stdio())
	stop()
	os.Exit(code)
}

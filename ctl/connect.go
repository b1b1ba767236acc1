package ctl

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/spf13/pflag"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"golang.org/x/term"
	"google.golang.org/grpc/connectivity"
)

// globals are the flags every command takes: how to reach etcd, as
// etcdctl's, and where the names are.
type globals struct {
	endpoints      []string
	prefix         string
	historyPrefix  string
	releasePrefix  string
	user           string
	password       string
	cacert         string
	cert, key      string
	dialTimeout    time.Duration
	commandTimeout time.Duration
}

func (g *globals) define(fs *pflag.FlagSet) {
	fs.StringSliceVar(&g.endpoints, "endpoints", []string{"http://127.0.0.1:2379"}, "etcd endpoints, comma separated")
	fs.StringVar(&g.prefix, "prefix", "/bluegreen/", "the etcd prefix of the names, as the Corefile's prefix option")
	fs.StringVar(&g.historyPrefix, "history-prefix", "", "the etcd prefix of bgctl's history (default: the prefix with -history, /bluegreen-history/)")
	fs.StringVar(&g.releasePrefix, "release-prefix", "", "the etcd prefix of running releases, which abort, pause and resume talk to (default: the prefix with -release, /bluegreen-release/)")
	fs.StringVar(&g.user, "user", "", "etcd user, NAME or NAME:PASSWORD; asks for the password when it is left out")
	fs.StringVar(&g.password, "password", "", "etcd password, when --user gives only the name")
	fs.StringVar(&g.cacert, "cacert", "", "verify etcd's certificate with this CA bundle")
	fs.StringVar(&g.cert, "cert", "", "client certificate for etcd")
	fs.StringVar(&g.key, "key", "", "client certificate's key")
	fs.DurationVar(&g.dialTimeout, "dial-timeout", 2*time.Second, "how long to wait to connect to etcd")
	fs.DurationVar(&g.commandTimeout, "command-timeout", 5*time.Second, "how long one etcd request may take")
}

// fromEnv sets each global flag not given on the command line from
// BGCTL_<FLAG> (BGCTL_ENDPOINTS, BGCTL_HISTORY_PREFIX...), as etcdctl does
// with ETCDCTL_.
func (g *globals) fromEnv(top, fs *pflag.FlagSet, getenv func(string) string) error {
	var err error
	top.VisitAll(func(f *pflag.Flag) {
		if f.Name == "help" || f.Changed || fs.Changed(f.Name) {
			return
		}
		env := "BGCTL_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" && err == nil {
			if e := fs.Set(f.Name, v); e != nil {
				err = usagef("%s: %v", env, e)
			}
		}
	})
	if err != nil {
		return err
	}
	for _, e := range g.endpoints {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return usagef("--endpoints %s: want http://HOST:PORT or https://HOST:PORT", schema.RedactURL(e))
		}
	}
	if !strings.HasPrefix(g.prefix, "/") || !strings.HasSuffix(g.prefix, "/") {
		return usagef("--prefix %q: want a path that starts and ends with /", g.prefix)
	}
	if g.historyPrefix == "" {
		g.historyPrefix = strings.TrimSuffix(g.prefix, "/") + "-history/"
	}
	if g.releasePrefix == "" {
		g.releasePrefix = strings.TrimSuffix(g.prefix, "/") + "-release/"
	}
	for flag, p := range map[string]string{"--history-prefix": g.historyPrefix, "--release-prefix": g.releasePrefix} {
		if !strings.HasSuffix(p, "/") || strings.HasPrefix(p, g.prefix) {
			return usagef("%s %q: want a path ending with / outside --prefix %s, where the plugin would take its keys for names", flag, p, g.prefix)
		}
	}
	return nil
}

// connect opens the etcd client, and waits up to --dial-timeout for a
// connection to one of the endpoints.
func (c *cli) connect(ctx context.Context) (*clientv3.Client, error) {
	if c.etcd != nil {
		return c.etcd, nil
	}
	g := c.globals
	cfg := clientv3.Config{Endpoints: g.endpoints, DialTimeout: g.dialTimeout, Logger: zap.NewNop()}
	if g.user != "" {
		name, password, ok := strings.Cut(g.user, ":")
		if !ok && g.password != "" {
			password, ok = g.password, true
		}
		if !ok {
			var err error
			if password, err = c.askPassword(name); err != nil {
				return nil, err
			}
		}
		cfg.Username, cfg.Password = name, password
	}
	if g.cacert != "" || g.cert != "" || g.key != "" {
		t, err := tlsConfig(g.cacert, g.cert, g.key)
		if err != nil {
			return nil, err
		}
		cfg.TLS = t
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("etcd at %s: %w", g.shownEndpoints(), err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.dialTimeout)
	defer cancel()
	conn := cli.ActiveConnection()
	for st := conn.GetState(); st != connectivity.Ready; st = conn.GetState() {
		conn.Connect()
		if !conn.WaitForStateChange(ctx, st) {
			cli.Close()
			return nil, fmt.Errorf("no connection to etcd at %s within --dial-timeout %v: is it running, and are the endpoints and TLS flags right?", g.shownEndpoints(), g.dialTimeout)
		}
	}
	c.etcd = cli
	return cli, nil
}

// shownEndpoints are the endpoints as errors show them: without a user or
// password, if one was written into a URL.
func (g *globals) shownEndpoints() string {
	shown := make([]string, len(g.endpoints))
	for i, e := range g.endpoints {
		shown[i] = schema.RedactURL(e)
	}
	return strings.Join(shown, ",")
}

// askPassword reads the password of name from the terminal, without
// echoing it.
func (c *cli) askPassword(name string) (string, error) {
	if !c.io.Terminal {
		return "", usagef("--user %s gives no password, and stdin is not a terminal to ask at: give --user NAME:PASSWORD, --password or BGCTL_PASSWORD", name)
	}
	fmt.Fprintf(c.io.Stderr, "Password of etcd user %s: ", name)
	if f, ok := c.io.Stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		p, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.io.Stderr)
		return string(p), err
	}
	line, err := bufio.NewReader(c.io.Stdin).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

func tlsConfig(cacert, cert, key string) (*tls.Config, error) {
	t := &tls.Config{MinVersion: tls.VersionTLS12}
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		t.RootCAs = x509.NewCertPool()
		if !t.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate in it", cacert)
		}
	}
	if (cert == "") != (key == "") {
		return nil, usagef("--cert and --key go together")
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("--cert %s, --key %s: %w", cert, key, err)
		}
		t.Certificates = []tls.Certificate{pair}
	}
	return t, nil
}

// who is who history says made a change: the etcd user, else the OS user.
func (c *cli) who() string {
	if name, _, _ := strings.Cut(c.globals.user, ":"); name != "" {
		return name
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return c.io.Getenv("USER")
}

// timeout is a context for one etcd request.
func (c *cli) timeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.globals.commandTimeout)
}

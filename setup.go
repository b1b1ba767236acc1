package bluegreen

import (
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	mwtls "github.com/coredns/coredns/plugin/pkg/tls"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

func init() { plugin.Register(pluginName, setup) }

const (
	defaultEndpoint = "http://localhost:2379"
	defaultPrefix   = "/bluegreen/"
	defaultTTL      = 30
)

func setup(c *caddy.Controller) error {
	bg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	c.OnStartup(bg.start)
	c.OnShutdown(bg.shutdown)
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		bg.Next = next
		return bg
	})
	return nil
}

func parse(c *caddy.Controller) (*BlueGreen, error) {
	bg := &BlueGreen{
		ttl:    defaultTTL,
		prefix: defaultPrefix,
		etcd: clientv3.Config{
			Endpoints:            []string{defaultEndpoint},
			DialTimeout:          requestTimeout,
			DialKeepAliveTime:    10 * time.Second,
			DialKeepAliveTimeout: 5 * time.Second,
			// The plugin logs what matters through CoreDNS; the client's
			// own JSON logs would only repeat it.
			Logger: zap.NewNop(),
			// gRPC's default reconnect backoff grows to two minutes; after
			// an outage the plugin should catch up within a second or so.
			DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{
				Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second},
				MinConnectTimeout: 5 * time.Second,
			})},
		},
	}
	root := dnsserver.GetConfig(c).Root
	for i := 0; c.Next(); i++ {
		if i > 0 {
			return nil, plugin.ErrOnce
		}
		bg.Zones = plugin.OriginsFromArgsOrServerBlock(c.RemainingArgs(), c.ServerBlockKeys)
		for c.NextBlock() {
			if err := parseOption(c, bg, root); err != nil {
				return nil, err
			}
		}
	}
	return bg, nil
}

func parseOption(c *caddy.Controller, bg *BlueGreen, root string) error {
	option := c.Val()
	args := c.RemainingArgs()
	switch option {
	case "endpoint":
		if len(args) == 0 {
			return c.ArgErr()
		}
		for _, ep := range args {
			u, err := url.Parse(ep)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return c.Errf("endpoint %q is not an http:// or https:// URL", ep)
			}
		}
		bg.etcd.Endpoints = args
		return checkTLS(c, bg)
	case "prefix":
		if len(args) != 1 {
			return c.ArgErr()
		}
		bg.prefix = strings.TrimSuffix(args[0], "/") + "/"
	case "ttl":
		if len(args) != 1 {
			return c.ArgErr()
		}
		ttl, err := parseTTL(args[0])
		if err != nil {
			return c.Errf("ttl: %v", err)
		}
		bg.ttl = ttl
	case "credentials":
		if len(args) != 2 {
			return c.Errf("credentials takes 2 arguments, USERNAME and PASSWORD")
		}
		bg.etcd.Username, bg.etcd.Password = args[0], args[1]
	case "tls":
		if len(args) > 3 {
			return c.ArgErr()
		}
		for i := range args {
			args[i] = inRoot(root, args[i])
		}
		tc, err := mwtls.NewTLSConfigFromArgs(args...)
		if err != nil {
			return c.Errf("tls: %v", err)
		}
		bg.etcd.TLS = tc
		return checkTLS(c, bg)
	case "snapshot":
		if len(args) != 1 {
			return c.ArgErr()
		}
		bg.stateFile = inRoot(root, args[0])
	case "fallthrough":
		bg.Fall.SetZonesFromArgs(args)
	default:
		return c.Errf("unknown property %q", option)
	}
	return nil
}

// checkTLS refuses tls with http:// endpoints, which the etcd client would
// quietly dial without TLS.
func checkTLS(c *caddy.Controller, bg *BlueGreen) error {
	if bg.etcd.TLS == nil {
		return nil
	}
	for _, ep := range bg.etcd.Endpoints {
		if strings.HasPrefix(ep, "http://") {
			return c.Errf("tls needs https:// endpoints, but endpoint %s is http://", ep)
		}
	}
	return nil
}

// inRoot resolves a relative path against the root plugin's directory.
func inRoot(root, path string) string {
	if filepath.IsAbs(path) || root == "" {
		return path
	}
	return filepath.Join(root, path)
}

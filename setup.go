package bluegreen

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	mwtls "github.com/coredns/coredns/plugin/pkg/tls"
	"github.com/coredns/coredns/plugin/pkg/upstream"
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
	// Each name with answer series of its own adds two series to every
	// scrape (one per colour): a thousand names are two thousand series, as
	// many as a busy CoreDNS exports in all.
	defaultNameMetrics = 1000
	maxNameMetrics     = 100000
)

func setup(c *caddy.Controller) error {
	bg, err := parse(c)
	if err != nil {
		return plugin.Error(pluginName, err)
	}
	c.OnStartup(bg.start)
	c.OnRestart(bg.offer)
	c.OnRestartFailed(bg.withdraw)
	c.OnShutdown(bg.shutdown)
	warnCacheInFront(c)
	dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler {
		bg.Next = next
		return bg
	})
	return nil
}

func parse(c *caddy.Controller) (*BlueGreen, error) {
	bg := &BlueGreen{
		ttl:         defaultTTL,
		maxTTL:      schema.DefaultMaxTTL,
		nameMetrics: defaultNameMetrics,
		prefix:      defaultPrefix,
		probes:      defaultProbes,
		failover:    true,
		upstream:    upstream.New(),
		canaryV4:    defaultCanaryV4,
		canaryV6:    defaultCanaryV6,
		preview:     defaultPreview,
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
		lines := map[string]int{} // of each option: an error about two names the later one's
		for c.NextBlock() {
			lines[c.Val()] = c.Line()
			if err := parseOption(c, bg, root); err != nil {
				return nil, err
			}
		}
		// bind's setup has run: it comes before bluegreen in every build.
		bg.nameServers = nameServersByZone(bg.Zones, bg.nsOption, listenAddrs(dnsserver.GetConfig(c).ListenHosts))
		if bg.ttl > bg.maxTTL {
			return nil, errAt(c, max(lines["ttl"], lines["max_ttl"]), "ttl %d is above max_ttl %d", bg.ttl, bg.maxTTL)
		}
		if bg.probes.timeout > bg.probes.interval {
			return nil, errAt(c, max(lines["check_timeout"], lines["check_interval"]), "check_timeout %v is longer than check_interval %v", bg.probes.timeout, bg.probes.interval)
		}
	}
	return bg, nil
}

// errAt is c.Errf about the option on line, not the token c is at: two
// options that disagree are only found once the block is read.
func errAt(c *caddy.Controller, line int, format string, args ...any) error {
	return fmt.Errorf("%s:%d - Error during parsing: %s", c.File(), line, fmt.Sprintf(format, args...))
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
		return requireHTTPS(c, bg)
	case "prefix":
		if len(args) != 1 {
			return c.ArgErr()
		}
		bg.prefix = strings.TrimSuffix(args[0], "/") + "/"
	case "ttl", "max_ttl":
		if len(args) != 1 {
			return c.ArgErr()
		}
		ttl, err := schema.ParseTTL(args[0], schema.MaxTTL)
		if err != nil {
			return c.Errf("%s: %v", option, err)
		}
		if option == "ttl" {
			bg.ttl = ttl
		} else {
			bg.maxTTL = ttl
		}
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
		return requireHTTPS(c, bg)
	case "snapshot":
		if len(args) != 1 {
			return c.ArgErr()
		}
		bg.stateFile = inRoot(root, args[0])
	case "fallthrough":
		bg.Fall.SetZonesFromArgs(args)
	case "canary_subnet":
		if len(args) != 2 {
			return c.Errf("canary_subnet takes 2 arguments, the IPv4 and the IPv6 prefix length")
		}
		v4, err4 := strconv.ParseUint(args[0], 10, 8)
		v6, err6 := strconv.ParseUint(args[1], 10, 8)
		if err4 != nil || err6 != nil || v4 > 32 || v6 > 128 {
			return c.Errf("canary_subnet %s %s: want an IPv4 prefix length from 0 to 32 and an IPv6 one from 0 to 128", args[0], args[1])
		}
		bg.canaryV4, bg.canaryV6 = uint8(v4), uint8(v6)
	case "check_interval", "check_timeout":
		if len(args) != 1 {
			return c.ArgErr()
		}
		d, err := time.ParseDuration(args[0])
		if err != nil || d <= 0 {
			return c.Errf("%s %q: want a positive duration such as 2s or 500ms", option, args[0])
		}
		if option == "check_interval" {
			bg.probes.interval = d
		} else {
			bg.probes.timeout = d
		}
	case "check_rise", "check_fall":
		if len(args) != 1 {
			return c.ArgErr()
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 1 || n > 100 {
			return c.Errf("%s %q: want a count from 1 to 100", option, args[0])
		}
		if option == "check_rise" {
			bg.probes.rise = n
		} else {
			bg.probes.fall = n
		}
	case "preview", "check_networks":
		if len(args) == 0 {
			return c.ArgErr()
		}
		n, err := parseNetworks(args)
		if err != nil {
			return c.Errf("%s: %v", option, err)
		}
		if option == "preview" {
			bg.preview = n
		} else {
			bg.checkNets = n
		}
	case "ns":
		ns, err := parseNameServer(args)
		if err != nil {
			return c.Err(err.Error())
		}
		bg.nsOption = append(bg.nsOption, ns)
	case "name_metrics":
		if len(args) != 1 {
			return c.ArgErr()
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 0 || n > maxNameMetrics {
			return c.Errf("name_metrics %q: want a count from 0 to %d", args[0], maxNameMetrics)
		}
		bg.nameMetrics = n
	case "failover", "ready":
		if len(args) != 1 || (args[0] != "on" && args[0] != "off") {
			return c.Errf("%s takes on or off", option)
		}
		if option == "failover" {
			bg.failover = args[0] == "on"
		} else {
			bg.readyAlways = args[0] == "off"
		}
	default:
		return c.Errf("unknown property %q", option)
	}
	return nil
}

// requireHTTPS refuses tls with http:// endpoints, which the etcd client
// would quietly dial without TLS.
func requireHTTPS(c *caddy.Controller, bg *BlueGreen) error {
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

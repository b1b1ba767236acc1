package bluegreen

import (
	"slices"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
)

// InsertDirective returns directives, CoreDNS's plugin order, with bluegreen
// just before cache. Managed names are then answered from bluegreen's own
// memory, fresh at every query, while cache still serves what bluegreen
// passes on; plugins that act on every query (acl, rewrite, loadbalance,
// dns64, any, log, prometheus) stay in front of it. A custom main calls it
// on dnsserver.Directives before coremain.Run; builds from plugin.cfg list
// bluegreen there instead. A list that has bluegreen already is returned as
// it is; one without cache gets bluegreen last.
func InsertDirective(directives []string) []string {
	if slices.Contains(directives, pluginName) {
		return directives
	}
	i := slices.Index(directives, "cache")
	if i < 0 {
		i = len(directives)
	}
	return slices.Insert(slices.Clone(directives), i, pluginName)
}

// warnCacheInFront logs, at startup, when this build puts cache in front of
// bluegreen and the server block uses cache: flips then reach clients only
// as cached answers expire, and the canary split holds for no client.
func warnCacheInFront(c *caddy.Controller) {
	config := dnsserver.GetConfig(c)
	c.OnStartup(func() error {
		if config.Handler("cache") != nil && slices.Index(dnsserver.Directives, "cache") < slices.Index(dnsserver.Directives, pluginName) {
			log.Warningf("cache sits before bluegreen in this build's plugin order (%s): a flip reaches clients only as cached answers expire, and a canary split is not per client; list bluegreen before cache in plugin.cfg",
				config.Zone)
		}
		return nil
	})
}

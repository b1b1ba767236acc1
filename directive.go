package bluegreen

import "slices"

// InsertDirective returns directives, CoreDNS's plugin order, with bluegreen
// just before hosts, so that a managed name is answered before hosts,
// kubernetes, file, etcd or forward see it, and cache still sits in front.
// A custom main calls it on dnsserver.Directives before coremain.Run; builds
// from plugin.cfg list bluegreen there instead. A list that has bluegreen
// already is returned as it is; one without hosts gets bluegreen last.
func InsertDirective(directives []string) []string {
	if slices.Contains(directives, pluginName) {
		return directives
	}
	i := slices.Index(directives, "hosts")
	if i < 0 {
		i = len(directives)
	}
	return slices.Insert(slices.Clone(directives), i, pluginName)
}

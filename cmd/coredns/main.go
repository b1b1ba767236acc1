// Command coredns is CoreDNS with every in-tree plugin plus bluegreen, placed
// in the plugin order just before cache.
package main

import (
	"github.com/bluegreen-dns/bluegreen"
	"github.com/coredns/coredns/core/dnsserver"
	_ "github.com/coredns/coredns/core/plugin" // every in-tree plugin
	"github.com/coredns/coredns/coremain"
)

func init() { dnsserver.Directives = bluegreen.InsertDirective(dnsserver.Directives) }

func main() { coremain.Run() }

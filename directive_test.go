package bluegreen

import (
	"slices"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
)

func TestInsertDirective(t *testing.T) {
	in := []string{"log", "acl", "cache", "hosts", "kubernetes", "file", "etcd", "forward"}
	got := InsertDirective(in)
	want := []string{"log", "acl", "bluegreen", "cache", "hosts", "kubernetes", "file", "etcd", "forward"}
	if !slices.Equal(got, want) {
		t.Errorf("InsertDirective = %v, want %v", got, want)
	}
	if !slices.Equal(in, []string{"log", "acl", "cache", "hosts", "kubernetes", "file", "etcd", "forward"}) {
		t.Errorf("InsertDirective changed its input: %v", in)
	}
	if again := InsertDirective(got); !slices.Equal(again, want) {
		t.Errorf("InsertDirective twice = %v, want bluegreen once", again)
	}
	if noCache := InsertDirective([]string{"log", "forward"}); !slices.Equal(noCache, []string{"log", "forward", "bluegreen"}) {
		t.Errorf("InsertDirective without cache = %v", noCache)
	}

	// In CoreDNS's own order: behind what acts on every query, in front of
	// cache and of every plugin that answers from data.
	order := InsertDirective(dnsserver.Directives)
	at := func(name string) int { return slices.Index(order, name) }
	for _, before := range []string{"log", "prometheus", "acl", "rewrite", "loadbalance", "dns64", "any"} {
		if at(before) > at(pluginName) {
			t.Errorf("%s comes after bluegreen in %v", before, order)
		}
	}
	for _, after := range []string{"cache", "dnssec", "hosts", "kubernetes", "file", "etcd", "forward"} {
		if at(after) < at(pluginName) {
			t.Errorf("%s comes before bluegreen in %v", after, order)
		}
	}
}

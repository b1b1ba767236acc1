package bluegreen

import (
	"slices"
	"testing"
)

func TestInsertDirective(t *testing.T) {
	in := []string{"log", "cache", "hosts", "kubernetes", "file", "etcd", "forward"}
	got := InsertDirective(in)
	want := []string{"log", "cache", "bluegreen", "hosts", "kubernetes", "file", "etcd", "forward"}
	if !slices.Equal(got, want) {
		t.Errorf("InsertDirective = %v, want %v", got, want)
	}
	if !slices.Equal(in, []string{"log", "cache", "hosts", "kubernetes", "file", "etcd", "forward"}) {
		t.Errorf("InsertDirective changed its input: %v", in)
	}
	if again := InsertDirective(got); !slices.Equal(again, want) {
		t.Errorf("InsertDirective twice = %v, want bluegreen once", again)
	}
	if noHosts := InsertDirective([]string{"log", "forward"}); !slices.Equal(noHosts, []string{"log", "forward", "bluegreen"}) {
		t.Errorf("InsertDirective without hosts = %v", noHosts)
	}
}

package bluegreen

import (
	"os"
	"path/filepath"
	"testing"
)

func TestStateFileRoundTrip(t *testing.T) {
	m := testModel()
	put(m, 2, "active=green", "blue=10.0.1.1,2001:db8::1", "green=app-v2.example.net", "ttl=5", "canary=20", "check=tcp://:443")
	m.put("/bluegreen/idle.example.org/blue", "10.0.3.1", 9) // not served: no active key
	m.put("/bluegreen/other.example.org/active", "blue", 10)
	m.put("/bluegreen/other.example.org/blue", "10.0.4.1", 11)
	s := (&snapshot{}).with(11, m.entries())

	path := filepath.Join(t.TempDir(), "state.json")
	if err := writeStateFile(path, "/bluegreen/", 30, s); err != nil {
		t.Fatal(err)
	}
	got, err := readStateFile(path, testModel())
	if err != nil {
		t.Fatal(err)
	}
	if e := got.get(app); e == nil || e.canary != 20 || e.check != "tcp://:443" {
		t.Errorf("read back %+v, want canary 20 and the check", e)
	}
	if got.rev != 11 || got.names != 2 {
		t.Fatalf("read back revision %d with %d names, want 11 and 2", got.rev, got.names)
	}
	for _, name := range []string{app, "other.example.org."} {
		want, have := s.get(name), got.get(name)
		if have == nil || have.active != want.active || have.ttl != want.ttl || have.canary != want.canary || have.check != want.check ||
			have.targets[blue].raw != want.targets[blue].raw || have.targets[green].raw != want.targets[green].raw {
			t.Errorf("%s read back as %+v, want %+v", name, have, want)
		}
	}
	// No temporary file is left beside it.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want just the snapshot", len(entries))
	}

	if _, err := readStateFile(path, newModel("/other/", []string{"example.org."}, 30)); err == nil {
		t.Error("a snapshot of another prefix was read")
	}
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, err := readStateFile(path, testModel()); err == nil {
		t.Error("a corrupt snapshot was read")
	}
}

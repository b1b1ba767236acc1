package bluegreen

import (
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

func TestStateFileRoundTrip(t *testing.T) {
	bg := testPlugin(t, "app.example.org/active=green", "app.example.org/blue=10.0.1.1,2001:db8::1", "app.example.org/green=app-v2.example.net",
		"app.example.org/ttl=5", "app.example.org/canary=20", "app.example.org/check=tcp://:443",
		"idle.example.org/blue=10.0.3.1", // not served: no active key
		"other.example.org/active=blue", "other.example.org/blue=10.0.4.1")
	s := bg.snap.Load()

	path := filepath.Join(t.TempDir(), "state.json")
	if err := writeStateFile(path, "/bluegreen/", 30, s); err != nil {
		t.Fatal(err)
	}
	f, written, err := readStateFile(path, "/bluegreen/")
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(written) > time.Minute || f.Revision != 7 || len(f.Names) != 2 {
		t.Fatalf("read back revision %d with %d names, written %v; want 7, 2, just now", f.Revision, len(f.Names), written)
	}
	var read atomic.Pointer[snapshot]
	st := testStore(t, &read)
	st.seed(f, written, "from the file")
	if !st.serveSeed() {
		t.Fatal("serveSeed refused a store that was never listed")
	}
	got := read.Load()
	if e := got.get(app); e == nil || e.canary != 20 || e.check.Raw != "tcp://:443" {
		t.Errorf("read back %+v, want canary 20 and the check", e)
	}
	for _, name := range []string{app, "other.example.org."} {
		want, have := s.get(name), got.get(name)
		if have == nil || have.active != want.active || have.ttl != want.ttl || have.canary != want.canary || have.check != want.check ||
			have.targets[schema.Blue].Raw != want.targets[schema.Blue].Raw || have.targets[schema.Green].Raw != want.targets[schema.Green].Raw {
			t.Errorf("%s read back as %+v, want %+v", name, have, want)
		}
	}
	// No temporary file is left beside it.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d files, want just the state file", len(entries))
	}

	if _, _, err := readStateFile(path, "/other/"); err == nil {
		t.Error("a state file of another prefix was read")
	}
	os.WriteFile(path, []byte("{not json"), 0o644)
	if _, _, err := readStateFile(path, "/bluegreen/"); err == nil {
		t.Error("a corrupt state file was read")
	}
}

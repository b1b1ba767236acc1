package bluegreen

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/bluegreen-dns/bluegreen/schema"
)

// The snapshot option keeps the answered state in a file, so that CoreDNS
// can start answering while etcd cannot be reached.

// stateFile is the file's JSON: the keys of every served name, as of one
// revision, under the prefix they were read from.
type stateFile struct {
	Prefix   string                       `json:"prefix"`
	Revision int64                        `json:"revision"`
	Names    map[string]map[string]string `json:"names"` // name -> field -> value
}

// writeEvery bounds how often the file is written while names change.
const writeEvery = time.Second

// writeStateFiles writes the published snapshot to path whenever its
// revision moved on from written, at most every writeEvery, and once more
// when ctx ends.
func writeStateFiles(ctx context.Context, path, prefix string, ttl uint32, written int64, snap *atomic.Pointer[snapshot]) {
	write := func() {
		s := snap.Load()
		if s == nil || s.rev == written {
			return
		}
		if err := writeStateFile(path, prefix, ttl, s); err != nil {
			log.Errorf("snapshot: %v", err)
			return
		}
		written = s.rev
	}
	t := time.NewTicker(writeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			write()
			return
		case <-t.C:
			write()
		}
	}
}

// writeStateFile writes s to path atomically: a reader sees the old file or
// the new one, never part of one.
func writeStateFile(path, prefix string, ttl uint32, s *snapshot) error {
	data, err := json.Marshal(stateOf(s, prefix, ttl))
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// stateOf is the keys of every name s serves, as they would be in etcd to
// answer the same; a TTL equal to the default is left out.
func stateOf(s *snapshot, prefix string, ttl uint32) *stateFile {
	f := &stateFile{Prefix: prefix, Revision: s.rev, Names: make(map[string]map[string]string, s.served)}
	s.each(func(name string, e *entry) {
		if !e.serving() {
			return
		}
		keys := map[string]string{schema.FieldActive: e.active.String()}
		for _, c := range schema.Colours {
			if e.targets[c].Set() {
				keys[c.String()] = e.targets[c].Raw
			}
		}
		if e.ttl != ttl {
			keys[schema.FieldTTL] = strconv.FormatUint(uint64(e.ttl), 10)
		}
		if e.canary != 0 {
			keys[schema.FieldCanary] = strconv.FormatUint(uint64(e.canary), 10)
		}
		if e.check.Raw != "" {
			keys[schema.FieldCheck] = e.check.Raw // the file is the plugin's own: the check as it is probed
		}
		f.Names[strings.TrimSuffix(name, ".")] = keys
	})
	return f
}

// readStateFile reads the file at path, written for prefix, and when it
// was written.
func readStateFile(path, prefix string) (*stateFile, time.Time, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, time.Time{}, err
	}
	var f stateFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, time.Time{}, fmt.Errorf("reading %s: %w", path, err)
	}
	if f.Prefix != prefix {
		return nil, time.Time{}, fmt.Errorf("%s holds prefix %s, not %s", path, f.Prefix, prefix)
	}
	return &f, info.ModTime(), nil
}

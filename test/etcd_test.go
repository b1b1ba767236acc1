package test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/test/devetcd"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/snapshot"
	etcdutl "go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// etcdServer is a real, embedded, single-member etcd on a loopback port.
// Its member is the same across restarts, restores and wipes: same name,
// peer address and cluster token, so the same cluster id.
type etcdServer struct {
	*embed.Etcd     // nil while stopped
	dir, addr, peer string
	endpoint        string
	client          *clientv3.Client
	started         time.Time // when it last became ready
}

// startEtcd starts an etcd server on a free port for the test and stops it
// at cleanup.
func startEtcd(t *testing.T) *etcdServer { return startEtcdAt(t, "127.0.0.1:0") }

// startEtcdAt starts an etcd server whose clients connect to addr.
func startEtcdAt(t *testing.T, addr string) *etcdServer {
	t.Helper()
	s := &etcdServer{dir: t.TempDir(), addr: addr, peer: "127.0.0.1:" + freePort(t)}
	s.start(t)
	t.Cleanup(s.stop)
	s.endpoint = "http://" + s.Clients[0].Addr().String()
	var err error
	s.client, err = clientv3.New(clientv3.Config{Endpoints: []string{s.endpoint}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	t.Cleanup(func() { s.client.Close() })
	return s
}

// start starts the server, again after stop: same data, same address.
func (s *etcdServer) start(t *testing.T) {
	t.Helper()
	e, err := devetcd.StartConfig(testConfig(devetcd.Config("default", s.dir, s.addr, s.peer)))
	if err != nil {
		t.Fatal(err)
	}
	s.Etcd, s.started = e, time.Now()
	s.addr = e.Clients[0].Addr().String()
}

// testConfig is cfg as the tests run etcd: passwords hashed at bcrypt's
// lowest cost, since at the default each login takes seconds under the
// race detector on a busy machine, and auth tests log in often.
func testConfig(cfg *embed.Config) *embed.Config {
	cfg.BcryptCost = 4 // bcrypt.MinCost
	return cfg
}

// stop stops the server, as an outage would.
func (s *etcdServer) stop() {
	if s.Etcd != nil {
		s.Etcd.Close()
		s.Etcd = nil
	}
}

// saveSnapshot writes a backup of etcd's data to a file, as etcdctl
// snapshot save does, and returns its path.
func (s *etcdServer) saveSnapshot(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup.db")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := snapshot.SaveWithVersion(ctx, zap.NewNop(), clientv3.Config{Endpoints: []string{s.endpoint}}, path); err != nil {
		t.Fatalf("saving a snapshot: %v", err)
	}
	return path
}

// restore stops etcd and starts it again from backup, restored into a new
// data directory as etcdutl snapshot restore does: the same member at the
// same address, with the backup's data and revision.
func (s *etcdServer) restore(t *testing.T, backup string) {
	t.Helper()
	s.stop()
	s.dir = filepath.Join(t.TempDir(), "restored")
	err := etcdutl.NewV3(zap.NewNop()).Restore(etcdutl.RestoreConfig{
		SnapshotPath: backup, Name: "default", OutputDataDir: s.dir,
		PeerURLs: []string{"http://" + s.peer}, InitialCluster: "default=http://" + s.peer, InitialClusterToken: "etcd-cluster",
	})
	if err != nil {
		t.Fatalf("restoring %s: %v", backup, err)
	}
	s.start(t)
}

// wipe stops etcd and starts it again with an empty data directory: the
// same member at the same address, with nothing in it.
func (s *etcdServer) wipe(t *testing.T) {
	t.Helper()
	s.stop()
	s.dir = t.TempDir()
	s.start(t)
}

// put writes key=value and returns the revision etcd committed it at.
func (s *etcdServer) put(t *testing.T, key, value string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.client.Put(ctx, key, value)
	if err != nil {
		t.Fatalf("put %s=%s: %v", key, value, err)
	}
	return resp.Header.Revision
}

func (s *etcdServer) del(t *testing.T, key string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := s.client.Delete(ctx, key, opts...)
	if err != nil {
		t.Fatalf("delete %s: %v", key, err)
	}
	return resp.Header.Revision
}

// putName writes the keys of one name under /bluegreen/.
func (s *etcdServer) putName(t *testing.T, name, active, blue, green string) {
	t.Helper()
	s.put(t, "/bluegreen/"+name+"/blue", blue)
	s.put(t, "/bluegreen/"+name+"/green", green)
	s.put(t, "/bluegreen/"+name+"/active", active)
}

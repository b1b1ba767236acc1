package test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
)

const unit = "../deploy/systemd/coredns-bluegreen.service"

// TestSystemdUnit runs systemd-analyze verify on the unit. verify insists
// that ExecStart's binary exists, so it runs in a mount namespace of its
// own where /usr/local/bin is a tmpfs holding a stand-in: nothing is
// installed on this machine. Any output fails the test, since verify warns
// of an unknown key and still exits 0.
func TestSystemdUnit(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze is not installed (Debian's systemd); .ci/run installs it")
	}
	if os.Getuid() != 0 {
		t.Skip("the mount namespace needs root")
	}
	exec := execStart(t)
	if exec[0] != "/usr/local/bin/coredns" {
		t.Fatalf("ExecStart runs %s, want /usr/local/bin/coredns", exec[0])
	}
	abs, err := filepath.Abs(unit)
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, time.Minute, "unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount -t tmpfs tmpfs /usr/local/bin && printf '#!/bin/sh\n' > /usr/local/bin/coredns && chmod 755 /usr/local/bin/coredns && systemd-analyze verify "$1" 2>&1`, "sh", abs)
	if out != "" {
		t.Errorf("systemd-analyze verify %s:\n%s", unit, out)
	}
}

// execStart is the unit's ExecStart line, split into words.
func execStart(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(unit)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "ExecStart="); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatalf("%s has no ExecStart", unit)
	return nil
}

// TestSystemdCorefile starts CoreDNS from the unit's example Corefile as the
// unit runs it: the etcd password from the environment file, etcd over TLS
// with the CA file, the snapshot file in the state directory. What belongs
// to a host is changed: etcd's endpoints and CA, the state directory, and
// the ports (53, 9153, 8080, 8181) for free ones.
func TestSystemdCorefile(t *testing.T) {
	env, err := os.ReadFile("../deploy/systemd/bluegreen.env")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(env, []byte("\nETCD_PASSWORD=")) {
		t.Fatalf("bluegreen.env does not set ETCD_PASSWORD:\n%s", env)
	}
	conf, err := os.ReadFile("../deploy/systemd/Corefile")
	if err != nil {
		t.Fatal(err)
	}
	if args := execStart(t); !slices.Equal(args[1:], []string{"-conf", "/etc/coredns/Corefile"}) {
		t.Fatalf("ExecStart %v does not run /etc/coredns/Corefile", args)
	}

	p := newPKI(t)
	endpoint, root := startTLSEtcd(t, p, false)
	mustPut(t, root, appKeys...)
	setUpRoles(t, root)
	t.Setenv("ETCD_PASSWORD", "C0redns-pw")
	state, ready := t.TempDir(), "127.0.0.1:"+freePort(t)
	_, udp, _ := startCoreDNS(t, adapt(t, string(conf),
		"https://10.0.0.11:2379 https://10.0.0.12:2379 https://10.0.0.13:2379", endpoint,
		"/etc/coredns/etcd-ca.pem", p.ca,
		"/var/lib/coredns-bluegreen/", state+"/",
		"example.org {", "example.org:0 {",
		":9153", "127.0.0.1:"+freePort(t),
		":8080", "127.0.0.1:"+freePort(t),
		":8181", ready,
	))
	tlsConfig, err := (&transport.TLSInfo{TrustedCAFile: p.ca}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	admin, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tlsConfig, Username: "root", Password: "R00t-pw", DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	flips(t, admin, udp)
	if code := getStatus("http://" + ready + "/ready"); code != 200 {
		t.Errorf("/ready once bluegreen has listed etcd: %d, want 200", code)
	}
	waitFor(t, "the snapshot file in the state directory", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(state, "bluegreen.snapshot"))
		return err == nil
	})
}

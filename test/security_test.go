package test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bluegreen-dns/bluegreen/test/devetcd"
	"github.com/miekg/dns"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// pki is a throwaway certificate authority with a server certificate for
// 127.0.0.1 and a client certificate, as PEM files in a temporary directory.
type pki struct{ ca, serverCert, serverKey, clientCert, clientKey string }

func newPKI(t *testing.T) pki {
	t.Helper()
	dir := t.TempDir()
	caKey := newKey(t)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "bluegreen test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	issue := func(name string, usage x509.ExtKeyUsage, serial int64) (certFile, keyFile string) {
		key := newKey(t)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return writePEM(t, dir, name+".pem", "CERTIFICATE", der), writePEM(t, dir, name+"-key.pem", "EC PRIVATE KEY", marshalKey(t, key))
	}
	p := pki{ca: writePEM(t, dir, "ca.pem", "CERTIFICATE", caDER)}
	p.serverCert, p.serverKey = issue("server", x509.ExtKeyUsageServerAuth, 2)
	p.clientCert, p.clientKey = issue("coredns", x509.ExtKeyUsageClientAuth, 3)
	return p
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func marshalKey(t *testing.T, key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startTLSEtcd starts etcd serving clients over TLS with p's server
// certificate; with mtls it also requires a client certificate from p's CA.
// It returns the endpoint and a client with p's client certificate.
func startTLSEtcd(t *testing.T, p pki, mtls bool) (string, *clientv3.Client) {
	t.Helper()
	cfg := devetcd.Config("default", t.TempDir(), "127.0.0.1:"+freePort(t), "127.0.0.1:0")
	client := url.URL{Scheme: "https", Host: cfg.ListenClientUrls[0].Host}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
	cfg.ClientTLSInfo = transport.TLSInfo{CertFile: p.serverCert, KeyFile: p.serverKey}
	if mtls { // etcd asks for client certificates whenever it has a CA for them
		cfg.ClientTLSInfo.TrustedCAFile, cfg.ClientTLSInfo.ClientCertAuth = p.ca, true
	}
	e, err := embed.StartEtcd(testConfig(cfg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	if err := devetcd.Ready(e); err != nil {
		t.Fatal(err)
	}
	tlsConfig, err := (&transport.TLSInfo{CertFile: p.clientCert, KeyFile: p.clientKey, TrustedCAFile: p.ca}).ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	endpoint := "https://" + client.Host
	c, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tlsConfig, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return endpoint, c
}

func mustPut(t *testing.T, c *clientv3.Client, kvs ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := 0; i+1 < len(kvs); i += 2 {
		if _, err := c.Put(ctx, kvs[i], kvs[i+1]); err != nil {
			t.Fatalf("put %s: %v", kvs[i], err)
		}
	}
}

var appKeys = []string{
	"/bluegreen/app.example.org/blue", "10.0.1.100",
	"/bluegreen/app.example.org/green", "10.0.2.100",
	"/bluegreen/app.example.org/active", "blue",
}

// flips checks that the server at udp answers app.example.org from etcd and
// follows a flip made with c.
func flips(t *testing.T, c *clientv3.Client, udp string) {
	t.Helper()
	if got := answers(query(t, "udp", udp, "app.example.org", dns.TypeA)); !slices.Equal(got, []string{"A 10.0.1.100"}) {
		t.Fatalf("before the flip: %v, want A 10.0.1.100", got)
	}
	mustPut(t, c, "/bluegreen/app.example.org/active", "green")
	waitFor(t, "the flip", 10*time.Second, func() bool {
		return slices.Equal(answers(query(t, "udp", udp, "app.example.org", dns.TypeA)), []string{"A 10.0.2.100"})
	})
}

func TestTLS(t *testing.T) {
	p := newPKI(t)
	endpoint, c := startTLSEtcd(t, p, false)
	mustPut(t, c, appKeys...)
	_, udp, _ := startCoreDNS(t, corefile(endpoint, "tls "+p.ca))
	flips(t, c, udp)
}

func TestMutualTLS(t *testing.T) {
	p := newPKI(t)
	endpoint, c := startTLSEtcd(t, p, true)
	mustPut(t, c, appKeys...)
	_, udp, _ := startCoreDNS(t, corefile(endpoint, "tls "+p.clientCert+" "+p.clientKey+" "+p.ca))
	flips(t, c, udp)

	// Without a client certificate etcd refuses the plugin.
	_, refused, _ := startCoreDNS(t, corefile(endpoint, "tls "+p.ca))
	if m := query(t, "udp", refused, "app.example.org", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("without a client certificate: %s %v, want SERVFAIL", dns.RcodeToString[m.Rcode], m.Answer)
	}
}

// enableAuth sets etcd up as the README does: a user coredns whose role may
// only read the prefix, and root; then enables authentication. It returns a
// client logged in as root.
func enableAuth(t *testing.T, etcd *etcdServer, password, rootPassword string) *clientv3.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // bcrypt, slow under -race on a busy machine
	defer cancel()
	steps := []func() error{
		func() error { _, err := etcd.client.RoleAdd(ctx, "bluegreen-read"); return err },
		func() error {
			_, err := etcd.client.RoleGrantPermission(ctx, "bluegreen-read", "/bluegreen/", clientv3.GetPrefixRangeEnd("/bluegreen/"), clientv3.PermissionType(clientv3.PermRead))
			return err
		},
		func() error { _, err := etcd.client.UserAdd(ctx, "coredns", password); return err },
		func() error { _, err := etcd.client.UserGrantRole(ctx, "coredns", "bluegreen-read"); return err },
		func() error { _, err := etcd.client.UserAdd(ctx, "root", rootPassword); return err },
		func() error { _, err := etcd.client.UserGrantRole(ctx, "root", "root"); return err },
		func() error { _, err := etcd.client.AuthEnable(ctx); return err },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	root, err := clientv3.New(clientv3.Config{Endpoints: []string{etcd.endpoint}, Username: "root", Password: rootPassword, DialTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// TestCredentials runs the plugin as a user whose role may only read the
// prefix, as the README sets it up, and checks that no password reaches the
// logs, neither the right one nor a wrong one.
func TestCredentials(t *testing.T) {
	etcd := startEtcd(t)
	etcd.putName(t, "app.example.org", "blue", "10.0.1.100", "10.0.2.100")
	const rootPassword, password, wrong = "r00t-Passw0rd", "Read0nly-Passw0rd", "Wr0ng-Passw0rd"
	root := enableAuth(t, etcd, password, rootPassword)

	logs := captureLog(t)
	_, udp, _ := startCoreDNS(t, corefile(etcd.endpoint, "credentials coredns "+password))
	flips(t, root, udp)

	_, refused, _ := startCoreDNS(t, corefile(etcd.endpoint, "credentials coredns "+wrong))
	if m := query(t, "udp", refused, "app.example.org", dns.TypeA); m.Rcode != dns.RcodeServerFailure {
		t.Errorf("with a wrong password: %s %v, want SERVFAIL", dns.RcodeToString[m.Rcode], m.Answer)
	}
	waitFor(t, "the failed login in the log", 10*time.Second, func() bool { return strings.Contains(logs.String(), "authentication failed") })
	for _, secret := range []string{password, wrong, rootPassword} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("a password is in the log:\n%s", logs.String())
		}
	}
}

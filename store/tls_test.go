package store

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
)

// testPKI is a CA and the files of the certificates it issued, under dir.
type testPKI struct {
	dir  string
	ca   *x509.Certificate
	key  *ecdsa.PrivateKey
	next int64
}

// newPKI makes a CA and writes its certificate as dir/ca.pem.
func newPKI(t *testing.T, dir string) *testPKI {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	ca, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "ca.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	return &testPKI{dir: dir, ca: ca, key: key, next: 2}
}

// issue writes a certificate for cn (server and client use, IP 127.0.0.1)
// as dir/name.pem and dir/name-key.pem.
func (p *testPKI) issue(t *testing.T, name, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.next), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	p.next++
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(p.dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
}

// startTLSEtcd starts an etcd that serves clients over TLS only and
// requires a client certificate from the PKI (--client-cert-auth).
func startTLSEtcd(t *testing.T, p *testPKI) string {
	t.Helper()
	p.issue(t, "server", "etcd")
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "test", t.TempDir()
	cu := url.URL{Scheme: "https", Host: freeAddr(t)}
	pu := url.URL{Scheme: "http", Host: freeAddr(t)}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClientTLSInfo = transport.TLSInfo{
		CertFile: filepath.Join(p.dir, "server.pem"), KeyFile: filepath.Join(p.dir, "server-key.pem"),
		TrustedCAFile: filepath.Join(p.dir, "ca.pem"), ClientCertAuth: true,
	}
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs, cfg.ElectionMs = 10, 100
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(waitLimit):
		t.Fatalf("etcd not ready within %s", waitLimit)
	}
	return cu.String()
}

// adminClient connects to the TLS etcd with the PKI's client certificate
// named name and, when user is set, a user and password.
func adminClient(t *testing.T, p *testPKI, endpoint, name, user, password string) *clientv3.Client {
	t.Helper()
	tc, err := tlsConfig(&config.EtcdTLS{CA: filepath.Join(p.dir, "ca.pem"), Cert: filepath.Join(p.dir, name+".pem"), Key: filepath.Join(p.dir, name+"-key.pem")})
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, TLS: tc, Username: user, Password: password,
		DialTimeout: waitLimit, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// TestStoreTLSAuth: etcd over TLS with client certificates and auth on,
// as docs/config.md advises: the router's user may read and write its
// prefix only.
func TestStoreTLSAuth(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := newPKI(t, dir)
	endpoint := startTLSEtcd(t, p)
	p.issue(t, "admin", "root")
	p.issue(t, "router", "spacerouter")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()

	// The operator turns auth on: root, and a user for the routers whose
	// role reaches the space's prefix only.
	admin := adminClient(t, p, endpoint, "admin", "", "")
	_, err := admin.UserAdd(ctx, "root", "rootpw")
	require.NoError(t, err)
	_, err = admin.UserGrantRole(ctx, "root", "root")
	require.NoError(t, err)
	_, err = admin.RoleAdd(ctx, "space")
	require.NoError(t, err)
	_, err = admin.RoleGrantPermission(ctx, "space", prefix, clientv3.GetPrefixRangeEnd(prefix), clientv3.PermissionType(clientv3.PermReadWrite))
	require.NoError(t, err)
	_, err = admin.UserAdd(ctx, "spacerouter", "s3cret")
	require.NoError(t, err)
	_, err = admin.UserGrantRole(ctx, "spacerouter", "space")
	require.NoError(t, err)
	_, err = admin.AuthEnable(ctx)
	require.NoError(t, err)
	root := adminClient(t, p, endpoint, "admin", "root", "rootpw")
	put(t, root, "apps/shop", "domains: [shop.example.com]")
	_, err = root.Put(ctx, "/other-space/apps/x", "secret")
	require.NoError(t, err)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "etcd-password"), []byte("s3cret\n"), 0o600))
	src := fmt.Sprintf(`listen: {http: "127.0.0.1:0"}
store:
  etcd:
    endpoints: [%q]
    prefix: %s
    dial_timeout: 15s
    tls: {ca: ca.pem, cert: router.pem, key: router-key.pem}
    username: spacerouter
    password_file: etcd-password
  router_id: edge-tls
`, endpoint, prefix)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.yaml"), []byte(src), 0o600))
	local, err := config.Load(filepath.Join(dir, "tls.yaml"))
	require.NoError(t, err)

	r := runStore(t, local, Options{})
	r.waitSnap("shop", hasApp("shop"))
	rev := put(t, root, "dynos/shop/web.1", "address: 127.0.0.1:5001")
	r.waitSnap("shop web.1", hasApp("shop", "web.1"))
	waitStatus(t, root, "edge-tls", rev)

	// The router's user reaches no other prefix. A context of its own:
	// the setup's may have run out on a loaded machine (bcrypt under
	// -race), which would fail the calls below for the wrong reason.
	ctx, cancel2 := context.WithTimeout(context.Background(), waitLimit)
	defer cancel2()
	s, err := New(local, Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.cli.Get(ctx, "/other-space/apps/x")
	assert.ErrorContains(t, err, "permission denied")

	// A wrong password is refused by etcd.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etcd-password"), []byte("wrong\n"), 0o600))
	bad, err := New(local, Options{})
	if err == nil {
		defer bad.Close()
		_, err = bad.Get(ctx, "apps/shop")
	}
	assert.ErrorContains(t, err, "authentication failed")
	// Without a client certificate, TLS itself fails.
	noCert := *local
	st := *local.Store
	st.Etcd.TLS = &config.EtcdTLS{CA: filepath.Join(dir, "ca.pem")}
	st.Etcd.DialTimeout = 300 * time.Millisecond
	noCert.Store = &st
	require.NoError(t, os.WriteFile(filepath.Join(dir, "etcd-password"), []byte("s3cret\n"), 0o600))
	nc, err := New(&noCert, Options{})
	if err == nil {
		defer nc.Close()
		_, err = nc.Get(ctx, "apps/shop")
	}
	assert.Error(t, err, "a client without certificate")
}

// Package etcdtest runs a real etcd for tests: an embedded single-member
// cluster on loopback ports (go.etcd.io/etcd/server/v3/embed), which a test
// may stop and start again on the same ports and data, with short ticks so
// that leases end within a second or two. Only tests import it: the
// router's binary carries no etcd server.
package etcdtest

import (
	"context"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Wait bounds the waits of this package (etcd ready, one request) for
// what takes milliseconds when all goes well.
const Wait = 15 * time.Second

// Member is one embedded etcd.
type Member struct {
	t                 testing.TB
	dir, client, peer string
	mu                sync.Mutex
	e                 *embed.Etcd
}

// Start starts an etcd with its data under a new temporary directory; it
// stops when the test ends.
func Start(t testing.TB) *Member {
	t.Helper()
	m := &Member{t: t, dir: t.TempDir(), client: FreeAddr(t), peer: FreeAddr(t)}
	m.Restart()
	t.Cleanup(m.Stop)
	return m
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a server that must come back on the same port after a restart.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// Restart starts the member (again) on its ports and data directory.
func (m *Member) Restart() {
	m.t.Helper()
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "test", m.dir
	cu, pu := url.URL{Scheme: "http", Host: m.client}, url.URL{Scheme: "http", Host: m.peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.TickMs, cfg.ElectionMs = 10, 100
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	require.NoError(m.t, err, "starting etcd on %s", m.client)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(Wait):
		e.Close()
		m.t.Fatalf("etcd on %s not ready within %s", m.client, Wait)
	}
	m.mu.Lock()
	m.e = e
	m.mu.Unlock()
}

// Stop stops the member; its data stays for a Restart.
func (m *Member) Stop() {
	m.mu.Lock()
	e := m.e
	m.e = nil
	m.mu.Unlock()
	if e != nil {
		e.Close()
	}
}

// Endpoint is the member's client URL.
func (m *Member) Endpoint() string { return "http://" + m.client }

// Client is a client of the test itself, writing keys as an operator or
// a dyno manager would; it closes when the test ends.
func Client(t testing.TB, endpoint string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, DialTimeout: 2 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return cli
}

// Put writes key and returns the revision of the write.
func Put(t testing.TB, cli *clientv3.Client, key, value string, opts ...clientv3.OpOption) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	resp, err := cli.Put(ctx, key, value, opts...)
	require.NoError(t, err, "putting %s", key)
	return resp.Header.Revision
}

// Delete deletes key and returns the revision of the deletion.
func Delete(t testing.TB, cli *clientv3.Client, key string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), Wait)
	defer cancel()
	resp, err := cli.Delete(ctx, key)
	require.NoError(t, err, "deleting %s", key)
	return resp.Header.Revision
}

// ClientAddr is the member's client host:port.
func (m *Member) ClientAddr() string { return m.client }

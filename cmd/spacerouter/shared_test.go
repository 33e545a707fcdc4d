package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/spaceca"
)

// TestSharedSpace: three routers in this process share one space through
// a real etcd (SPEC.md section 14): an app put is served by every router
// and a deletion ends it everywhere; a dyno on a lease that ends leaves
// every router; a key that does not validate is refused alone and
// reported by every router under routers/<id>; the maintenance switch
// set on one router holds on all.
func TestSharedSpace(t *testing.T) {
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a, b := startTestDyno(t, "a"), startTestDyno(t, "b")
	dir := t.TempDir()
	routers := []*sharedRouter{
		startSharedRouter(t, dir, m.endpoint(), "edge-1"),
		startSharedRouter(t, dir, m.endpoint(), "edge-2"),
		startSharedRouter(t, dir, m.endpoint(), "edge-3"),
	}
	eventually(t, "healthz 200 (the first config, empty)", routers, func(sr *sharedRouter) (bool, string) {
		st := sr.healthz()
		return st == 200, http.StatusText(st)
	})

	t.Run("put and delete an app", func(t *testing.T) {
		etcdPut(t, cli, "dynos/shop/web.1", a.value())
		etcdPut(t, cli, "apps/shop", "domains: [shop.example.com]")
		eventually(t, "shop served by dyno a", routers, serves("shop.example.com", 200, "a"))
		etcdDel(t, cli, "apps/shop")
		eventually(t, "shop gone (404)", routers, serves("shop.example.com", 404, ""))
		etcdPut(t, cli, "apps/shop", "domains: [shop.example.com]")
		eventually(t, "shop back", routers, serves("shop.example.com", 200, "a"))
	})

	t.Run("a dyno lease ends", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), sharedWait)
		defer cancel()
		lease, err := cli.Grant(ctx, 1)
		require.NoError(t, err)
		etcdPut(t, cli, "dynos/shop/web.2", b.value(), clientv3.WithLease(lease.ID))
		eventually(t, "dyno b serving shop", routers, func(sr *sharedRouter) (bool, string) {
			for range 20 {
				if st, body := sr.get("shop.example.com"); st == 200 && body == "b" {
					return true, ""
				}
			}
			return false, "only a answered 20 requests"
		})
		// No keep-alive: the lease ends within about a second.
		eventually(t, "dyno b gone with its lease", routers, func(sr *sharedRouter) (bool, string) {
			for range 20 {
				if st, body := sr.get("shop.example.com"); st != 200 || body != "a" {
					return false, body
				}
			}
			return true, ""
		})
	})

	t.Run("a refused key", func(t *testing.T) {
		etcdPut(t, cli, "apps/bad-app", "domains: [shop.example.com]") // shop's domain, a later revision
		eventually(t, "apps/bad-app refused under routers/<id>", routers, func(sr *sharedRouter) (bool, string) {
			list, err := sharedBackend{st: sr.sh.st}.Routers(context.Background())
			if err != nil {
				return false, err.Error()
			}
			for _, r := range list {
				if r.ID == sr.id {
					for _, ref := range r.Refused {
						if ref.Key == "apps/bad-app" && strings.Contains(ref.Problem, "shop.example.com") {
							return true, ""
						}
					}
					return false, "refused: " + strings.Join(keysOf(r.Refused), ", ")
				}
			}
			return false, "no routers/" + sr.id
		})
		for _, sr := range routers {
			st, body := sr.get("shop.example.com")
			assert.Equal(t, 200, st, "router %s: shop still served by its own app", sr.id)
			assert.Equal(t, "a", body)
		}
		list, err := sharedBackend{st: routers[0].sh.st}.Routers(context.Background())
		require.NoError(t, err)
		require.Len(t, list, 3, "every router's status")
		etcdDel(t, cli, "apps/bad-app")
	})

	t.Run("maintenance on one router holds on all", func(t *testing.T) {
		on := true
		require.NoError(t, routers[0].sh.r.SetMaintenance("shop", &on, "test"))
		st, _ := routers[0].get("shop.example.com")
		assert.Equal(t, 503, st, "the router that switched answers H80 at once")
		eventually(t, "shop in maintenance", routers, serves("shop.example.com", 503, ""))
		require.NoError(t, routers[2].sh.r.SetMaintenance("shop", nil, "test"))
		eventually(t, "shop out of maintenance", routers, serves("shop.example.com", 200, "a"))
	})
}

func keysOf(rs []view.Refusal) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Key
	}
	return out
}

// TestSharedSpaceStart: a router started while etcd does not answer and
// without a cache file serves nothing and answers /healthz 503, then
// serves once etcd answers; a router started later, etcd away, serves
// the cache file another run wrote.
func TestSharedSpaceStart(t *testing.T) {
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a := startTestDyno(t, "a")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "apps/shop", "domains: [shop.example.com]")
	m.stop()

	dir := t.TempDir()
	sr := startSharedRouter(t, dir, m.endpoint(), "edge-1")
	time.Sleep(300 * time.Millisecond) // a few attempts to reach etcd
	assert.Equal(t, 503, sr.healthz(), "no config yet")
	st, _ := sr.get("shop.example.com")
	assert.Equal(t, 404, st, "no app served yet")

	m.start()
	eventually(t, "shop served once etcd answers", []*sharedRouter{sr}, serves("shop.example.com", 200, "a"))
	assert.Equal(t, 200, sr.healthz())
	sr.stop() // its cache file holds shop

	m.stop()
	again := startSharedRouter(t, dir, m.endpoint(), "edge-1")
	eventually(t, "shop served from the cache file", []*sharedRouter{again}, serves("shop.example.com", 200, "a"))
	assert.Equal(t, 200, again.healthz())
}

// TestSharedSpaceEtcdRestart: etcd stopped and started again while two
// routers carry load: no request fails, and a change made after the
// restart reaches both.
func TestSharedSpaceEtcdRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds of load")
	}
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a, b := startTestDyno(t, "a"), startTestDyno(t, "b")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "apps/shop", "domains: [shop.example.com]")
	dir := t.TempDir()
	routers := []*sharedRouter{startSharedRouter(t, dir, m.endpoint(), "edge-1"), startSharedRouter(t, dir, m.endpoint(), "edge-2")}
	eventually(t, "shop served", routers, serves("shop.example.com", 200, "a"))

	stop := make(chan struct{})
	wait := runLoad(routers, "shop.example.com", 4, stop)
	time.Sleep(500 * time.Millisecond)
	m.stop()
	time.Sleep(time.Second)
	m.start()
	time.Sleep(500 * time.Millisecond)
	close(stop)
	res := wait()
	t.Logf("%d requests during the etcd restart", res.requests)
	assert.Zero(t, res.failed, "failed requests: %v", res.firstFailures)
	assert.Greater(t, res.requests, int64(100))

	cli2 := etcdClient(t, m.endpoint())
	etcdPut(t, cli2, "dynos/shop/web.1", b.value())
	eventually(t, "the change after the restart", routers, serves("shop.example.com", 200, "b"))
}

// churn changes shop's dynos web.3 to web.12 (all at d's address) every
// interval until stop is closed: the n-th change puts or deletes
// web.(3 + n mod 10), each change on a goroutine of its own so that the
// pace holds however long etcd takes; changes of one key are 10
// intervals apart. It returns the number of changes made.
func churn(t testing.TB, cli *clientv3.Client, d *testDyno, interval time.Duration, stop <-chan struct{}) func() int {
	done := make(chan int, 1)
	var wg sync.WaitGroup
	change := func(n int) {
		key := fmt.Sprintf("%sdynos/shop/web.%d", sharedPrefix, 3+n%10)
		put := (n/10)%2 == 0
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), sharedWait)
			defer cancel()
			var err error
			if put {
				_, err = cli.Put(ctx, key, d.value())
			} else {
				_, err = cli.Delete(ctx, key)
			}
			if err != nil {
				t.Errorf("changing %s: %v", key, err)
			}
		}()
	}
	go func() {
		tick := time.NewTicker(interval)
		defer tick.Stop()
		began, n := time.Now(), 0
		for {
			select {
			case <-stop:
				wg.Wait()
				done <- n
				return
			case <-tick.C:
			}
			// Ticks a busy machine dropped are made up: n keeps to the clock.
			for due := int(time.Since(began) / interval); n < due; n++ {
				change(n)
			}
		}
	}()
	return func() int { return <-done }
}

// dynoCount is the number of shop's dynos in etcd.
func dynoCount(t *testing.T, cli *clientv3.Client) int {
	ctx, cancel := context.WithTimeout(context.Background(), sharedWait)
	defer cancel()
	resp, err := cli.Get(ctx, sharedPrefix+"dynos/shop/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return int(resp.Count)
}

// TestSharedSpacePoolsOfOtherApps: changes of one app's dynos leave the
// pooled dyno connections of another app alone: blog's dyno accepts no
// new connection while shop's dynos change 50 times.
func TestSharedSpacePoolsOfOtherApps(t *testing.T) {
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a, c, d := startTestDyno(t, "a"), startTestDyno(t, "c"), startTestDyno(t, "d")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "apps/shop", "domains: [shop.example.com]")
	etcdPut(t, cli, "dynos/blog/web.1", c.value())
	etcdPut(t, cli, "apps/blog", "domains: [blog.example.com]")
	dir := t.TempDir()
	routers := []*sharedRouter{startSharedRouter(t, dir, m.endpoint(), "edge-1"), startSharedRouter(t, dir, m.endpoint(), "edge-2")}
	eventually(t, "blog served", routers, serves("blog.example.com", 200, "c"))
	eventually(t, "shop served", routers, serves("shop.example.com", 200, "a"))
	for _, sr := range routers {
		for range 5 {
			st, _ := sr.get("blog.example.com")
			require.Equal(t, 200, st)
		}
	}
	before := c.accepted.Load()
	require.Equal(t, int64(2), before, "one pooled connection from each router to blog's dyno")

	stop := make(chan struct{})
	changes := churn(t, cli, d, 10*time.Millisecond, stop)
	deadline := time.Now().Add(5 * time.Second)
	for c := 0; c < 50 && time.Now().Before(deadline); {
		for _, sr := range routers { // blog in use throughout
			st, body := sr.get("blog.example.com")
			require.Equal(t, 200, st, body)
		}
		time.Sleep(10 * time.Millisecond)
		c++
	}
	close(stop)
	n := changes()
	require.GreaterOrEqual(t, n, 20, "changes made")
	// Every router applied the last change.
	want := dynoCount(t, cli)
	eventually(t, "the last change applied", routers, func(sr *sharedRouter) (bool, string) {
		app := sr.sh.current().App("shop")
		return app != nil && len(app.Dynos) == want, "shop's dynos: " + strings.Join(dynoNames(app), ",")
	})
	for _, sr := range routers {
		st, body := sr.get("blog.example.com")
		require.Equal(t, 200, st, body)
	}
	assert.Equal(t, before, c.accepted.Load(), "blog's dyno accepted new connections while shop's dynos changed %d times", n)
}

// TestSharedSpaceDynoChurn: 100 dyno changes a second for 10 s while two
// routers carry load on that app: no request fails.
func TestSharedSpaceDynoChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s of load")
	}
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a, b, d := startTestDyno(t, "a"), startTestDyno(t, "b"), startTestDyno(t, "d")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "dynos/shop/web.2", b.value())
	etcdPut(t, cli, "apps/shop", "domains: [shop.example.com]")
	dir := t.TempDir()
	routers := []*sharedRouter{startSharedRouter(t, dir, m.endpoint(), "edge-1"), startSharedRouter(t, dir, m.endpoint(), "edge-2")}
	eventually(t, "shop served", routers, serves("shop.example.com", 200, ""))

	stopLoad, stopChurn := make(chan struct{}), make(chan struct{})
	wait := runLoad(routers, "shop.example.com", 4, stopLoad)
	changes := churn(t, cli, d, 10*time.Millisecond, stopChurn)
	time.Sleep(10 * time.Second)
	close(stopChurn)
	n := changes()
	close(stopLoad)
	res := wait()
	t.Logf("%d dyno changes in 10 s, %d requests, dyno d got %d connections", n, res.requests, d.accepted.Load())
	assert.Zero(t, res.failed, "failed requests: %v", res.firstFailures)
	assert.GreaterOrEqual(t, n, 800, "about 100 changes a second")
	assert.Positive(t, d.accepted.Load(), "the changing dynos took requests")
	want := dynoCount(t, cli)
	eventually(t, "the last change applied", routers, func(sr *sharedRouter) (bool, string) {
		app := sr.sh.current().App("shop")
		return app != nil && len(app.Dynos) == want, "shop's dynos: " + strings.Join(dynoNames(app), ",")
	})
}

func dynoNames(a *config.App) []string {
	if a == nil {
		return nil
	}
	out := make([]string, len(a.Dynos))
	for i, d := range a.Dynos {
		out[i] = d.Name
	}
	return out
}

// TestSharedSpaceBinary: the spacerouter binary with a file with store
// serves the space from etcd (before issue 14 it refused to run), keeps
// serving over a SIGHUP (which only reopens the router log), and on
// SIGTERM exits 0 with its routers/<id> gone at once.
func TestSharedSpaceBinary(t *testing.T) {
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a := startTestDyno(t, "a")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "apps/shop", "domains: [shop.example.com]")
	dir := t.TempDir()
	httpAddr, adminAddr := unusedAddr(t), unusedAddr(t)
	writeFileTB(t, filepath.Join(dir, "edge.yaml"), fmt.Sprintf(`space: test
listen: {http: %q, admin: %q}
log: {router: lines.log}
store:
  etcd: {endpoints: [%q], prefix: %s, dial_timeout: 300ms}
  router_id: edge-bin
`, httpAddr, adminAddr, m.endpoint(), sharedPrefix))
	p := startBinary(t, dir, "-config", "edge.yaml")
	sr := &sharedRouter{id: "edge-bin", http: "http://" + httpAddr, admin: "http://" + adminAddr, client: &http.Client{Timeout: 5 * time.Second}}
	eventually(t, "shop served by the binary", []*sharedRouter{sr}, serves("shop.example.com", 200, "a"))
	assert.Equal(t, 200, sr.healthz())
	eventually(t, "routers/edge-bin", []*sharedRouter{sr}, func(*sharedRouter) (bool, string) {
		n := countKeys(t, cli, "routers/edge-bin")
		return n == 1, fmt.Sprint(n, " keys")
	})

	p.signal(t, syscall.SIGHUP)
	p.waitFor(t, "the SIGHUP line", func() bool { return strings.Contains(p.stderr.String(), "SIGHUP: the router log is reopened") })
	st, body := sr.get("shop.example.com")
	assert.Equal(t, 200, st, body)

	p.stop(t)
	assert.Zero(t, countKeys(t, cli, "routers/edge-bin"), "the status lease revoked at exit")
}

// countKeys counts the keys under the test prefix that start with key.
func countKeys(t *testing.T, cli *clientv3.Client, key string) int {
	ctx, cancel := context.WithTimeout(context.Background(), sharedWait)
	defer cancel()
	resp, err := cli.Get(ctx, sharedPrefix+key, clientv3.WithPrefix(), clientv3.WithCountOnly())
	require.NoError(t, err)
	return int(resp.Count)
}

// TestSharedSpaceClientRevocation: a client certificate issued through
// one router's admin API is accepted by the other router of the space
// (same space CA, state_dirs of their own), and once revoked on the
// first it is refused by both (495, H41 revoked) on the next request of
// a kept-alive connection, through clients/<app>/<id>.
func TestSharedSpaceClientRevocation(t *testing.T) {
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a := startTestDyno(t, "a")
	dirs := []string{t.TempDir(), t.TempDir()}
	writeServerChain(t, dirs[0], "shop", "shop.example.com")
	_, err := spaceca.Init(filepath.Join(dirs[0], "space-ca.pem"), filepath.Join(dirs[0], "space-ca-key.pem"), "test")
	require.NoError(t, err)
	for _, f := range []string{"shop.pem", "shop-key.pem", "space-ca.pem", "space-ca-key.pem"} {
		b, err := os.ReadFile(filepath.Join(dirs[0], f))
		require.NoError(t, err)
		writeFileTB(t, filepath.Join(dirs[1], f), string(b))
	}
	etcdPut(t, cli, "space", "space_ca: {cert: space-ca.pem, key: space-ca-key.pem, state_dir: state}")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "apps/shop", "{domains: [shop.example.com], tls: [{cert: shop.pem, key: shop-key.pem}], mtls: {mode: require}}")
	routers := []*sharedRouter{
		startSharedRouterListen(t, dirs[0], m.endpoint(), "edge-1", `, https: "127.0.0.1:0"`),
		startSharedRouterListen(t, dirs[1], m.endpoint(), "edge-2", `, https: "127.0.0.1:0"`),
	}
	eventually(t, "shop on https without a client certificate: 496", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(nil)
		return st == 496, fmt.Sprint(st, " ", body)
	})

	b1 := sharedBackend{AdminBackend: routers[0].sh.r.AdminBackend(), st: routers[0].sh.st}
	issued, err := b1.IssueClient("shop", "laptop")
	require.NoError(t, err)
	files, err := b1.DownloadClient("shop", issued.ID)
	require.NoError(t, err)
	var certPEM, keyPEM []byte
	for _, f := range files {
		switch f.Name {
		case "client.crt":
			certPEM = f.Data
		case "client.key":
			keyPEM = f.Data
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	eventually(t, "the certificate issued on edge-1 accepted", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(&pair)
		return st == 200 && body == "a", fmt.Sprint(st, " ", body)
	})
	assert.Equal(t, 1, countKeys(t, cli, "clients/shop/"+issued.ID), "the certificate recorded for every router")

	revoked, err := b1.RevokeClient("shop", issued.ID)
	require.NoError(t, err)
	assert.False(t, revoked.RevokedAt.IsZero())
	eventually(t, "the certificate revoked on edge-1 refused (495)", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(&pair)
		return st == 495, fmt.Sprint(st, " ", body)
	})
}

// getTLS asks the router's https listener for / of shop.example.com,
// presenting cert (nil: none), on a kept-alive connection per router and
// certificate.
func (sr *sharedRouter) getTLS(cert *tls.Certificate) (int, string) {
	key := "none"
	if cert != nil {
		key = string(cert.Certificate[0])
	}
	sr.tlsMu.Lock()
	if sr.tlsClients == nil {
		sr.tlsClients = map[string]*http.Client{}
	}
	c := sr.tlsClients[key]
	if c == nil {
		conf := &tls.Config{ServerName: "shop.example.com", InsecureSkipVerify: true} //nolint:gosec // a test's own chain
		if cert != nil {
			conf.Certificates = []tls.Certificate{*cert}
		}
		c = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: conf}}
		sr.tlsClients[key] = c
	}
	sr.tlsMu.Unlock()
	req, err := http.NewRequest("GET", "https://"+sr.sh.r.HTTPSAddr().String()+"/", nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Host = "shop.example.com"
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

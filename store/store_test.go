package store

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spacerouter/spacerouter/config"
)

// routerStatus reads routers/<id> as a test client.
func routerStatus(t *testing.T, cli *clientv3.Client, id string) (Status, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	resp, err := cli.Get(ctx, prefix+config.KeyRouters+id)
	require.NoError(t, err)
	if len(resp.Kvs) == 0 {
		return Status{}, false
	}
	var st Status
	require.NoError(t, json.Unmarshal(resp.Kvs[0].Value, &st), "routers/%s: %s", id, resp.Kvs[0].Value)
	return st, true
}

// waitStatus waits until routers/<id> says revision rev (or later).
func waitStatus(t *testing.T, cli *clientv3.Client, id string, rev int64) Status {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		st, ok := routerStatus(t, cli, id)
		if ok && st.Revision >= rev {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("routers/%s is %+v (present %v) after %s: want revision %d", id, st, ok, waitLimit, rev)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStorePutDeleteApp(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	dir := t.TempDir()
	put(t, cli, "apps/blog", "domains: [blog.example.com]")
	put(t, cli, "dynos/blog/web.1", "address: 127.0.0.1:6001")
	r := runStore(t, localConfig(t, dir, te.endpoint(), ""), Options{})

	first := r.waitSnap("blog", hasApp("blog", "web.1"))
	assert.True(t, first.a.FullRead, "the first config comes from a full read")
	assert.Empty(t, first.a.Refused)
	assert.Equal(t, float64(1), r.gauge("spacerouter_store_connected"))

	rev := put(t, cli, "apps/shop", "domains: [shop.example.com]\ntimeouts: {response: 2m}\n")
	s := r.waitSnap("shop", hasApp("shop"))
	assert.False(t, s.a.FullRead, "a watched change")
	assert.GreaterOrEqual(t, s.a.Revision, rev)
	assert.Equal(t, 2*time.Minute, s.cfg.App("shop").Timeouts.Response)
	assert.Equal(t, []config.Dyno{{Name: "web.1", Address: "127.0.0.1:6001", State: config.StateUp}}, s.cfg.App("blog").Dynos,
		"blog's dynos untouched")
	assert.Equal(t, float64(s.a.Revision), r.gauge("spacerouter_store_applied_revision"))
	st := waitStatus(t, cli, "edge-1", rev)
	assert.Empty(t, st.Refused)

	rev = del(t, cli, "apps/shop")
	s = r.waitSnap("no shop", func(s snap) bool { return s.cfg.App("shop") == nil })
	assert.GreaterOrEqual(t, s.a.Revision, rev)
	assert.NotNil(t, s.cfg.App("blog"))

	// The cache file holds the keys in force; it is written once the
	// config is handed over.
	var c cacheFile
	deadline := time.Now().Add(waitLimit)
	for c.Revision < rev && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
		var err error
		c, err = readCache(filepath.Join(dir, "last-good.json"))
		require.NoError(t, err)
	}
	assert.GreaterOrEqual(t, c.Revision, rev)
	var keys []string
	for _, kv := range c.Keys {
		keys = append(keys, kv.Key)
	}
	assert.Equal(t, []string{"apps/blog", "dynos/blog/web.1"}, keys)
	fi, err := os.Stat(filepath.Join(dir, "last-good.json"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// The router leaves: its status goes with its lease at once.
	r.stop()
	_, ok := routerStatus(t, cli, "edge-1")
	assert.False(t, ok, "routers/edge-1 after Run returned")
}

func TestStoreDynoLease(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("waits for an etcd lease to expire")
	}
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	put(t, cli, "apps/blog", "domains: [blog.example.com]")
	put(t, cli, "dynos/blog/web.1", "address: 127.0.0.1:6001")
	put(t, cli, "dynos/shop/web.1", "address: 127.0.0.1:5001")
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{})
	r.waitSnap("shop web.1", hasApp("shop", "web.1"))

	// A dyno manager puts web.2 on a lease and vanishes: no keep-alive.
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	lease, err := cli.Grant(ctx, 1)
	require.NoError(t, err)
	put(t, cli, "dynos/shop/web.2", "{address: \"127.0.0.1:5002\", state: starting}", clientv3.WithLease(lease.ID))
	s := r.waitSnap("shop web.1 and web.2", hasApp("shop", "web.1", "web.2"))
	assert.Equal(t, config.StateStarting, s.cfg.App("shop").Dynos[1].State)
	start := time.Now()
	s = r.waitSnap("web.2 gone with its lease", hasApp("shop", "web.1"))
	t.Logf("web.2 left %s after it came", time.Since(start))
	assert.Equal(t, []config.Dyno{{Name: "web.1", Address: "127.0.0.1:6001", State: config.StateUp}}, s.cfg.App("blog").Dynos)
}

func TestStoreRefusedKey(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{})
	r.waitSnap("shop", hasApp("shop"))

	put(t, cli, "apps/shop", "domains: [shop.example.com]\nfeatures: [spaces-tls-moden]\n")
	rev := put(t, cli, "apps/blog", "domains: [Blog.example.com]")
	s := r.waitSnap("two refused keys", func(s snap) bool { return len(s.a.Refused) == 2 })
	assert.Equal(t, []config.Refusal{
		{Key: "apps/blog", Problem: `domains: domain "Blog.example.com" is not lower case: write "blog.example.com"`},
		{Key: "apps/shop", Problem: `features: unknown feature "spaces-tls-moden": known features are spaces-tls-salesforce, ` +
			`spaces-tls-modern, spaces-strict-tls, http-disable-http2, http-disable-keepalive-to-dyno, http-end-to-end-continue, spaces-extra-resolver`},
	}, s.a.Refused)
	assert.Equal(t, []string{"shop"}, appNames(s.cfg), "shop's last good value serves; blog stays absent")
	assert.Equal(t, []string{config.FeatureTLSSalesforce}, s.cfg.App("shop").Features)
	assert.Equal(t, float64(2), r.gauge("spacerouter_store_refused_keys"))
	st := waitStatus(t, cli, "edge-1", rev)
	assert.Equal(t, s.a.Refused, st.Refused)

	// Fixing the keys brings them into force and clears the refusals.
	put(t, cli, "apps/blog", "domains: [blog.example.com]")
	rev = put(t, cli, "apps/shop", "domains: [shop.example.com]\nfeatures: [spaces-tls-modern]\n")
	s = r.waitSnap("no refusal", func(s snap) bool { return len(s.a.Refused) == 0 && s.cfg.App("blog") != nil })
	assert.Equal(t, []string{config.FeatureTLSModern}, s.cfg.App("shop").Features)
	r.waitGauge("spacerouter_store_refused_keys", 0)
	assert.Empty(t, waitStatus(t, cli, "edge-1", rev).Refused)
}

func TestStoreDomainConflict(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{})
	r.waitSnap("the empty space", func(s snap) bool { return s.a.FullRead })
	shopRev := put(t, cli, "apps/shop", "domains: [shop.example.com]")
	r.waitSnap("shop", hasApp("shop"))
	put(t, cli, "apps/blog", "domains: [blog.example.com, shop.example.com]")
	s := r.waitSnap("blog refused", func(s snap) bool { return len(s.a.Refused) == 1 })
	assert.Equal(t, "apps/blog", s.a.Refused[0].Key)
	assert.Contains(t, s.a.Refused[0].Problem, fmt.Sprintf(`already a domain of app "shop" (key apps/shop, since revision %d)`, shopRev))
	assert.Equal(t, []string{"shop"}, appNames(s.cfg))
	// shop changes later: it still holds the domain it held first.
	put(t, cli, "apps/shop", "domains: [shop.example.com, www.shop.example.com]")
	s = r.waitSnap("shop's second value", func(s snap) bool {
		a := s.cfg.App("shop")
		return a != nil && len(a.Domains) == 2
	})
	require.Len(t, s.a.Refused, 1)
	assert.Equal(t, "apps/blog", s.a.Refused[0].Key)
}

func TestStoreSharedState(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{})
	r.waitSnap("shop", hasApp("shop"))
	ctx := context.Background()

	_, err := r.s.SetMaintenance(ctx, "shop", true)
	require.NoError(t, err)
	r.waitSnap("shop in maintenance", func(s snap) bool { return s.cfg.App("shop").Maintenance })
	_, err = r.s.ClearMaintenance(ctx, "shop")
	require.NoError(t, err)
	r.waitSnap("shop out of maintenance", func(s snap) bool { return !s.cfg.App("shop").Maintenance })

	_, err = r.s.PutClient(ctx, "shop", "c1", `{"serial":"01","revoked":false}`)
	require.NoError(t, err)
	r.waitSnap("client c1", func(s snap) bool { return s.a.Clients["shop/c1"] != "" })
	_, err = r.s.PutClient(ctx, "shop", "c1", `{"serial":"01","revoked":true}`)
	require.NoError(t, err)
	r.waitSnap("client c1 revoked", func(s snap) bool { return s.a.Clients["shop/c1"] == `{"serial":"01","revoked":true}` })
	clients, err := r.s.Clients(ctx, "shop")
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"c1": `{"serial":"01","revoked":true}`}, clients)
	require.NoError(t, r.s.DeleteClient(ctx, "shop", "c1"))
	r.waitSnap("no client", func(s snap) bool { return len(s.a.Clients) == 0 })

	routers, err := r.s.Routers(ctx)
	require.NoError(t, err)
	require.Contains(t, routers, "edge-1")
}

func TestStoreCoalesce(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{Settle: 200 * time.Millisecond, Coalesce: 500 * time.Millisecond})
	r.waitSnap("shop", hasApp("shop"))

	const n = 50
	want := make([]string, n)
	for i := range n {
		want[i] = fmt.Sprintf("web.%02d", i)
	}
	start := time.Now()
	for i := range n {
		put(t, cli, "dynos/shop/"+want[i], fmt.Sprintf("address: 127.0.0.1:%d", 5000+i))
	}
	written := time.Since(start)
	handed, changes := 0, 0
	r.waitSnap("all dynos", func(s snap) bool {
		handed++
		changes += s.a.Changes
		return hasApp("shop", want...)(s)
	})
	t.Logf("%d changes written in %s were handed over in %d configs", n, written, handed)
	assert.Equal(t, n, changes, "every change counted once")
	if written < 400*time.Millisecond {
		// Written within one coalescing window: one config.
		assert.Equal(t, 1, handed, "a burst within Coalesce is handed over once")
	} else {
		assert.LessOrEqual(t, handed, int(written/(500*time.Millisecond))+2, "at most one config per Coalesce")
	}
}

func TestStoreCompaction(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	px := startProxy(t, te.ClientAddr())
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	r := runStore(t, localConfig(t, t.TempDir(), px.endpoint(), ""), Options{})
	r.waitSnap("shop", hasApp("shop"))

	// The link to etcd is cut; meanwhile keys change and the history the
	// watch would resume from is compacted away.
	px.setCut(true)
	r.waitGauge("spacerouter_store_connected", 0)
	put(t, cli, "apps/blog", "domains: [blog.example.com]")
	del(t, cli, "apps/shop")
	rev := put(t, cli, "dynos/blog/web.1", "address: 127.0.0.1:6001")
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	_, err := cli.Compact(ctx, rev, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	r.noSnap(200 * time.Millisecond)

	px.setCut(false)
	s := r.waitSnap("blog without shop", func(s snap) bool { return s.cfg.App("shop") == nil && hasApp("blog", "web.1")(s) })
	assert.True(t, s.a.FullRead, "a compacted revision forces a full read")
	assert.GreaterOrEqual(t, s.a.Revision, rev)
	r.waitGauge("spacerouter_store_connected", 1)
}

func TestStoreEtcdRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("restarts etcd")
	}
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{})
	r.waitSnap("shop", hasApp("shop"))

	te.stop()
	r.waitGauge("spacerouter_store_connected", 0)
	r.noSnap(300 * time.Millisecond) // the last config stays
	te.start()
	r.waitGauge("spacerouter_store_connected", 1)
	rev := put(t, cli, "dynos/shop/web.1", "address: 127.0.0.1:5001")
	s := r.waitSnap("shop web.1", hasApp("shop", "web.1"))
	assert.False(t, s.a.FullRead, "the watch resumes from the last revision")
	assert.GreaterOrEqual(t, s.a.Revision, rev)
	waitStatus(t, cli, "edge-1", rev)
}

func TestStoreBootFromCache(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	dir := t.TempDir()
	local := localConfig(t, dir, te.endpoint(), "")
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	rev := put(t, cli, "dynos/shop/web.1", "address: 127.0.0.1:5001")
	r := runStore(t, local, Options{})
	r.waitSnap("shop web.1", hasApp("shop", "web.1"))
	deadline := time.Now().Add(waitLimit)
	for {
		c, err := readCache(local.Store.CacheFile)
		if err == nil && c.Revision >= rev {
			break
		}
		require.True(t, time.Now().Before(deadline), "cache file at revision %d after %s: want %d (%v)", c.Revision, waitLimit, rev, err)
		time.Sleep(10 * time.Millisecond)
	}
	r.stop()
	te.stop()

	// A start while etcd is away serves the cache file.
	r = runStore(t, local, Options{})
	s := r.waitSnap("shop web.1 from the cache", hasApp("shop", "web.1"))
	assert.True(t, s.a.FromCache)
	assert.Equal(t, rev, s.a.Revision)
	assert.Equal(t, float64(0), r.gauge("spacerouter_store_connected"))
	assert.Equal(t, float64(rev), r.gauge("spacerouter_store_applied_revision"))

	// etcd comes back: a full read, then the watch.
	te.start()
	s = r.waitSnap("a full read", func(s snap) bool { return s.a.FullRead })
	assert.False(t, s.a.FromCache)
	assert.True(t, hasApp("shop", "web.1")(s))
	r.waitGauge("spacerouter_store_connected", 1)
	put(t, cli, "apps/blog", "domains: [blog.example.com]")
	r.waitSnap("blog", hasApp("blog"))
}

func TestStoreBootWithoutEtcdOrCache(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	local := localConfig(t, t.TempDir(), "http://"+addr, "")
	r := runStore(t, local, Options{})
	r.noSnap(700 * time.Millisecond) // nothing to serve: no etcd, no cache file
	assert.Equal(t, float64(0), r.gauge("spacerouter_store_connected"))
	_, err := os.Stat(local.Store.CacheFile)
	assert.True(t, os.IsNotExist(err), "no cache file written: %v", err)
}

// TestStoreLogsRefusalOnce: a refused key is logged once, naming the key
// and the problem, however many changes are applied while it stays
// refused; fixed and broken again, it is logged again.
func TestStoreLogsRefusalOnce(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	core, logs := observer.New(zap.WarnLevel)
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{Logger: zap.New(core)})
	r.waitSnap("the empty space", func(s snap) bool { return s.a.FullRead })
	put(t, cli, "apps/blog", "domains: [Blog.example.com]")
	r.waitSnap("blog refused", func(s snap) bool { return len(s.a.Refused) == 1 })
	for i := range 3 {
		put(t, cli, "dynos/shop/web.1", fmt.Sprintf("address: 127.0.0.1:%d", 5000+i))
		r.waitSnap("a dyno change", func(s snap) bool { return len(s.a.Refused) == 1 })
	}
	refusals := func() []observer.LoggedEntry {
		return logs.FilterMessage("store key refused: its last good value, if any, stays in force").All()
	}
	require.Len(t, refusals(), 1)
	fields := refusals()[0].ContextMap()
	assert.Equal(t, "etcd:apps/blog", fields["key"])
	assert.Equal(t, `domains: domain "Blog.example.com" is not lower case: write "blog.example.com"`, fields["problem"])

	put(t, cli, "apps/blog", "domains: [blog.example.com]")
	r.waitSnap("blog", hasApp("blog"))
	put(t, cli, "apps/blog", "domains: [BLOG.example.com]")
	r.waitSnap("blog refused again", func(s snap) bool { return len(s.a.Refused) == 1 })
	assert.Len(t, refusals(), 2)
}

// TestStatusJSON: routers/<id> holds the JSON of SPEC.md section 14.
func TestStatusJSON(t *testing.T) {
	t.Parallel()
	data, err := json.Marshal(Status{Revision: 42, Refused: []config.Refusal{{Key: "apps/blog", Problem: "domains: x"}}})
	require.NoError(t, err)
	assert.JSONEq(t, `{"revision": 42, "refused": [{"key": "apps/blog", "problem": "domains: x"}]}`, string(data))
}

// TestStoreDynoChurn: a dyno manager changes dynos 100 times a second for
// 2 s; the store applies them at most once per Coalesce and ends on the
// final set, with the other app's dynos untouched.
func TestStoreDynoChurn(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("writes 200 changes over 2 s")
	}
	te := startEtcd(t)
	cli := newClient(t, te.endpoint())
	put(t, cli, "apps/shop", "domains: [shop.example.com]")
	put(t, cli, "apps/blog", "domains: [blog.example.com]")
	put(t, cli, "dynos/blog/web.1", "address: 127.0.0.1:6001")
	r := runStore(t, localConfig(t, t.TempDir(), te.endpoint(), ""), Options{})
	r.waitSnap("blog", hasApp("blog", "web.1"))

	const changes, every = 200, 10 * time.Millisecond
	start := time.Now()
	tick := time.NewTicker(every)
	defer tick.Stop()
	final := map[string]bool{} // dyno name -> there now
	events := 0                // deleting a dyno that is not there is no change
	for i := range changes {
		<-tick.C
		name := fmt.Sprintf("web.%d", i%10)
		if i%3 == 2 {
			del(t, cli, "dynos/shop/"+name)
			if final[name] {
				events++
			}
			final[name] = false
		} else {
			put(t, cli, "dynos/shop/"+name, fmt.Sprintf("address: 127.0.0.1:%d", 5000+i))
			events++
			final[name] = true
		}
	}
	elapsed := time.Since(start)
	var want []string
	for i := range 10 {
		if n := fmt.Sprintf("web.%d", i); final[n] {
			want = append(want, n)
		}
	}
	handed, counted := 0, 0
	s := r.waitSnap("the final dyno set", func(s snap) bool {
		handed++
		counted += s.a.Changes
		return hasApp("shop", want...)(s) && counted >= events
	})
	t.Logf("%d changes over %s handed over in %d configs", events, elapsed, handed)
	assert.Equal(t, events, counted, "every change applied once")
	assert.LessOrEqual(t, handed, int(elapsed/defaultCoalesce)+3, "at most one config per Coalesce")
	assert.Equal(t, []config.Dyno{{Name: "web.1", Address: "127.0.0.1:6001", State: config.StateUp}}, s.cfg.App("blog").Dynos)
}

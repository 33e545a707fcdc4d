package main

import (
	"bytes"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/store"
)

// startEtcd starts an embedded single-member etcd on loopback ports until
// the test ends, and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	free := func() url.URL {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer ln.Close()
		return url.URL{Scheme: "http", Host: ln.Addr().String()}
	}
	cfg := embed.NewConfig()
	cfg.Name, cfg.Dir = "test", t.TempDir()
	cu, pu := free(), free()
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	require.NoError(t, err)
	t.Cleanup(e.Close)
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(15 * time.Second):
		t.Fatal("etcd not ready within 15s")
	}
	return cu.String()
}

// unusedAddr is a loopback address nothing listens on.
func unusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// storeCmd runs spacerouter store with args.
func storeCmd(t *testing.T, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := runStore(args, &stdout, &stderr, config.Load)
	return result{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// TestStoreImportGet: a file-based space goes into etcd with store import
// and comes back with store get; a space the routers would refuse writes
// nothing; -check of the router's file checks the keys too.
func TestStoreImportGet(t *testing.T) {
	t.Parallel()
	endpoint := startEtcd(t)
	dir := t.TempDir()
	writeFile(t, dir, "router.yaml", "space: demo\nlisten: {http: \"127.0.0.1:0\"}\n"+
		"store: {etcd: {endpoints: [\""+endpoint+"\"], prefix: /spacerouter/demo/}, router_id: edge-1}\n")
	writeFile(t, dir, "space.yaml", `listen: {http: "127.0.0.1:0"}
timeouts: {connect: 2s}
apps:
  - name: shop
    domains: [shop.example.com]
    dynos:
      - {name: web.1, address: "127.0.0.1:5001"}
  - {name: blog, domains: [blog.example.com]}
`)
	router, space := filepath.Join(dir, "router.yaml"), filepath.Join(dir, "space.yaml")

	res := storeCmd(t, "import", "-config", router, "-from", space)
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	assert.Regexp(t, `^/spacerouter/demo/space\n/spacerouter/demo/apps/shop\n/spacerouter/demo/dynos/shop/web.1\n/spacerouter/demo/apps/blog\nwrote 4 keys at revision \d+\n$`, res.stdout)

	res = storeCmd(t, "get", "-config", router, "apps/shop")
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	assert.Equal(t, "name: shop\ndomains: [shop.example.com]\n", res.stdout)

	res = storeCmd(t, "get", "-config", router, "dynos/")
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	assert.Regexp(t, `^--- # dynos/shop/web.1, revision \d+\n\{address: "127.0.0.1:5001"\}\n$`, res.stdout)

	res = storeCmd(t, "get", "-config", router)
	require.Equal(t, exitOK, res.code, "stderr:\n%s", res.stderr)
	assert.Equal(t, 4, strings.Count(res.stdout, "--- # "), "every key:\n%s", res.stdout)

	res = storeCmd(t, "get", "-config", router, "apps/none")
	assert.Equal(t, exitFail, res.code)
	assert.Equal(t, "spacerouter store get: no key apps/none\n", res.stderr)

	// -check of the router's file checks the keys: all good.
	var stdout, stderr bytes.Buffer
	require.Equal(t, exitOK, checkConfig(router, &stdout, &stderr), "stderr:\n%s", stderr.String())

	// A space whose certificate file the router cannot find from its own
	// directory: nothing is written.
	other := t.TempDir()
	writeCert(t, other, "blog", time.Now().Add(90*24*time.Hour), "blog.example.com")
	writeFile(t, other, "space.yaml", "listen: {http: \"127.0.0.1:0\"}\n"+
		"apps: [{name: blog, domains: [blog.example.com], tls: [{cert: blog.pem, key: blog-key.pem}], features: [spaces-tls-modern]}]\n")
	res = storeCmd(t, "import", "-config", router, "-from", filepath.Join(other, "space.yaml"))
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "etcd:apps/blog: tls[0].cert: stat "+filepath.Join(dir, "blog.pem")+": no such file or directory\n")
	assert.Contains(t, res.stderr, "spacerouter store import: nothing was written")
	res = storeCmd(t, "get", "-config", router, "apps/blog")
	assert.Equal(t, "name: blog\ndomains: [blog.example.com]\n", res.stdout, "apps/blog unchanged")

	// A file that fails -check: its problems, nothing written.
	writeFile(t, other, "bad.yaml", "listen: {http: \"127.0.0.1:0\"}\napps: [{name: Shop, domains: [shop.example.com]}]\n")
	res = storeCmd(t, "import", "-config", router, "-from", filepath.Join(other, "bad.yaml"))
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, `bad.yaml:2: apps[0].name: bad app name "Shop"`)
}

// TestStoreCheckRefusedKey: -check prints a refused key as SPEC.md
// section 14 names it, and a config without etcd is only warned about.
func TestStoreCheckRefusedKey(t *testing.T) {
	t.Parallel()
	endpoint := startEtcd(t)
	dir := t.TempDir()
	writeFile(t, dir, "router.yaml", "listen: {http: \"127.0.0.1:0\"}\n"+
		"store: {etcd: {endpoints: [\""+endpoint+"\"], prefix: /spacerouter/demo/}}\n")
	writeFile(t, dir, "space.yaml", "listen: {http: \"127.0.0.1:0\"}\napps: [{name: shop, domains: [shop.example.com]}]\n")
	router := filepath.Join(dir, "router.yaml")
	require.Equal(t, exitOK, storeCmd(t, "import", "-config", router, "-from", filepath.Join(dir, "space.yaml")).code)
	cfg, err := config.Load(router)
	require.NoError(t, err)
	s, err := store.New(cfg, store.Options{})
	require.NoError(t, err)
	defer s.Close()
	_, err = s.SetMaintenance(t.Context(), "shop", true)
	require.NoError(t, err)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{endpoint}, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	_, err = cli.Put(t.Context(), "/spacerouter/demo/apps/blog", "domains: [Blog.example.com]")
	require.NoError(t, err)

	var stdout, stderr bytes.Buffer
	assert.Equal(t, exitUsage, checkConfig(router, &stdout, &stderr))
	assert.Equal(t, "etcd:apps/blog: domains: domain \"Blog.example.com\" is not lower case: write \"blog.example.com\"\n", stderr.String())

	// etcd away: the file is checked, the keys are not.
	writeFile(t, dir, "away.yaml", "listen: {http: \"127.0.0.1:0\"}\n"+
		"store: {etcd: {endpoints: [\"http://"+unusedAddr(t)+"\"], prefix: /spacerouter/demo/, dial_timeout: 200ms}}\n")
	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, exitOK, checkConfig(filepath.Join(dir, "away.yaml"), &stdout, &stderr))
	assert.Contains(t, stderr.String(), "warning: "+filepath.Join(dir, "away.yaml")+": store: the keys in etcd were not checked: ")
}

// TestStoreUsage: bad uses of spacerouter store say what is wrong and
// exit 2, without contacting etcd.
func TestStoreUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, dir, "file.yaml", "listen: {http: \"127.0.0.1:0\"}\napps: [{name: shop, domains: [shop.example.com]}]\n")
	file := filepath.Join(dir, "file.yaml")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"no subcommand", nil, "Usage:\n  spacerouter store import"},
		{"unknown subcommand", []string{"put"}, `spacerouter store: unknown subcommand "put": want import or get (spacerouter store -help)`},
		{"no config", []string{"get"}, "spacerouter store get: -config is required (spacerouter store -help)"},
		{"no from", []string{"import", "-config", file}, "spacerouter store import: -from is required: the file-based space to import"},
		{"from for get", []string{"get", "-config", file, "-from", file}, "spacerouter store get: -from is for import"},
		{"two keys", []string{"get", "-config", file, "a", "b"}, `spacerouter store get: unexpected argument "b"`},
		{"no store", []string{"get", "-config", file}, "spacerouter store get: " + file + " has no store section: add store.etcd (docs/config.md)"},
		{"bad file", []string{"get", "-config", filepath.Join(dir, "none.yaml")}, "no such file or directory"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := storeCmd(t, tc.args...)
			assert.Equal(t, exitUsage, res.code, "stderr:\n%s", res.stderr)
			assert.Contains(t, res.stderr, tc.want)
			assert.Empty(t, res.stdout)
		})
	}
	res := storeCmd(t, "-help")
	assert.Equal(t, exitOK, res.code)
	assert.Contains(t, res.stderr, "spacerouter store get -config FILE [KEY]")
}

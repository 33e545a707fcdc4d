package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/spacerouter/spacerouter/spaceca"
)

// writeCAStoreConfig writes the config file of an operator's spacerouter
// ca in dir: store only, the space in etcd at endpoint.
func writeCAStoreConfig(t *testing.T, dir, endpoint string) string {
	t.Helper()
	path := filepath.Join(dir, "ca.yaml")
	writeFileTB(t, path, fmt.Sprintf(`space: test
listen: {http: "127.0.0.1:0"}
store:
  etcd: {endpoints: [%q], prefix: %s, dial_timeout: 300ms}
`, endpoint, sharedPrefix))
	return path
}

// clientRecord reads clients/<app>/<id> from etcd.
func clientRecord(t *testing.T, cli *clientv3.Client, app, id string) spaceca.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sharedWait)
	defer cancel()
	resp, err := cli.Get(ctx, sharedPrefix+"clients/"+app+"/"+id)
	require.NoError(t, err)
	require.Len(t, resp.Kvs, 1, "clients/%s/%s in etcd", app, id)
	c, err := spaceca.UnmarshalClient(string(resp.Kvs[0].Value))
	require.NoError(t, err)
	return c
}

// downloadPair runs ca download for id and loads the client certificate
// and key it wrote.
func downloadPair(t *testing.T, cfg, id string) tls.Certificate {
	t.Helper()
	out := t.TempDir()
	res := ca(t, "download", "-config", cfg, "-id", id, "-dir", out)
	require.Equal(t, exitOK, res.code, "ca download: %s", res.stderr)
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, spaceca.FileCert), filepath.Join(out, spaceca.FileKey))
	require.NoError(t, err)
	return pair
}

// TestSharedCAIssueRevoke: with store in its config file, spacerouter ca
// finds the space CA and the apps in etcd, and its issue and revoke are
// seen by every router of the space through clients/<app>/<id>, as the
// admin API's are: a router whose state_dir never heard of the
// certificate refuses it (495) once revoked from the command line.
func TestSharedCAIssueRevoke(t *testing.T) {
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a := startTestDyno(t, "a")
	dirs := []string{t.TempDir(), t.TempDir()}
	cfgs := []string{writeCAStoreConfig(t, dirs[0], m.endpoint()), writeCAStoreConfig(t, dirs[1], m.endpoint())}
	writeServerChain(t, dirs[0], "shop", "shop.example.com")
	etcdPut(t, cli, "space", "space_ca: {cert: space-ca.pem, key: space-ca-key.pem, state_dir: state}")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "apps/shop", "{domains: [shop.example.com], tls: [{cert: shop.pem, key: shop-key.pem}], mtls: {mode: require}}")

	// ca init makes the CA named by key space (its files are not there
	// yet), relative to the config file's directory.
	res := ca(t, "init", "-config", cfgs[0])
	require.Equal(t, exitOK, res.code, "ca init: %s", res.stderr)
	assert.FileExists(t, filepath.Join(dirs[0], "space-ca-key.pem"))
	for _, f := range []string{"shop.pem", "shop-key.pem", "space-ca.pem", "space-ca-key.pem"} {
		b, err := os.ReadFile(filepath.Join(dirs[0], f))
		require.NoError(t, err)
		writeFileTB(t, filepath.Join(dirs[1], f), string(b))
	}
	routers := []*sharedRouter{
		startSharedRouterListen(t, dirs[0], m.endpoint(), "edge-1", `, https: "127.0.0.1:0"`),
		startSharedRouterListen(t, dirs[1], m.endpoint(), "edge-2", `, https: "127.0.0.1:0"`),
	}
	eventually(t, "shop on https without a client certificate: 496", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(nil)
		return st == 496, fmt.Sprint(st, " ", body)
	})

	res = ca(t, "issue", "-config", cfgs[0], "-app", "shop", "-name", "laptop")
	require.Equal(t, exitOK, res.code, "ca issue: %s", res.stderr)
	id := lastWord(res.stdout)
	rec := clientRecord(t, cli, "shop", id)
	assert.Equal(t, "laptop", rec.Name)
	assert.True(t, rec.RevokedAt.IsZero())
	pair := downloadPair(t, cfgs[0], id)
	eventually(t, "the certificate issued by ca issue accepted", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(&pair)
		return st == 200 && body == "a", fmt.Sprint(st, " ", body)
	})

	res = ca(t, "revoke", "-config", cfgs[0], "-id", id)
	require.Equal(t, exitOK, res.code, "ca revoke: %s", res.stderr)
	assert.False(t, clientRecord(t, cli, "shop", id).RevokedAt.IsZero(), "the revocation recorded in etcd")
	eventually(t, "the certificate revoked by ca revoke refused (495)", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(&pair)
		return st == 495, fmt.Sprint(st, " ", body)
	})

	// A certificate issued from the other state_dir: ca list here shows
	// it from etcd, and ca revoke here revokes its record.
	res = ca(t, "issue", "-config", cfgs[1], "-app", "shop", "-name", "phone")
	require.Equal(t, exitOK, res.code, "ca issue: %s", res.stderr)
	other := lastWord(res.stdout)
	otherPair := downloadPair(t, cfgs[1], other)
	eventually(t, "the certificate issued from the other state_dir accepted", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(&otherPair)
		return st == 200, fmt.Sprint(st, " ", body)
	})
	res = ca(t, "list", "-config", cfgs[0], "-app", "shop")
	require.Equal(t, exitOK, res.code, "ca list: %s", res.stderr)
	assert.Regexp(t, regexp.MustCompile(`(?m)^ID\s+APP\s+NAME\s+CREATED\s+NOT_AFTER\s+STATUS\s+WHERE$`), res.stdout)
	assert.Regexp(t, regexp.MustCompile(`(?m)^`+id+`\s+shop\s+laptop\s.*\srevoked\s+state_dir$`), res.stdout)
	assert.Regexp(t, regexp.MustCompile(`(?m)^`+other+`\s+shop\s+phone\s.*\sready\s+etcd$`), res.stdout)

	res = ca(t, "revoke", "-config", cfgs[0], "-id", other)
	require.Equal(t, exitOK, res.code, "ca revoke of a certificate of the other state_dir: %s", res.stderr)
	eventually(t, "the certificate revoked through its record refused (495)", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(&otherPair)
		return st == 495, fmt.Sprint(st, " ", body)
	})
	// The other state_dir still says ready; etcd says revoked, and wins.
	res = ca(t, "list", "-config", cfgs[1], "-app", "shop")
	require.Equal(t, exitOK, res.code, "ca list: %s", res.stderr)
	assert.Regexp(t, regexp.MustCompile(`(?m)^`+other+`\s+shop\s+phone\s.*\srevoked\s+etcd$`), res.stdout)
}

// TestSharedCAEtcdDown: with store in its config file and no etcd
// answering, spacerouter ca fails within dial_timeout, naming the
// endpoint and the fix.
func TestSharedCAEtcdDown(t *testing.T) {
	t.Parallel()
	endpoint := "http://" + unusedAddrTB(t)
	cfg := writeCAStoreConfig(t, t.TempDir(), endpoint)
	for _, args := range [][]string{
		{"list", "-config", cfg},
		{"issue", "-config", cfg, "-app", "shop"},
		{"revoke", "-config", cfg, "-id", "0123456789abcdef"},
		{"init", "-config", cfg},
	} {
		start := time.Now()
		res := ca(t, args...)
		assert.Equal(t, exitFail, res.code, "ca %s: %s", args[0], res.stderr)
		assert.Contains(t, res.stderr, "spacerouter ca "+args[0]+": etcd at "+endpoint+
			" did not answer within store.etcd.dial_timeout (300ms)", "ca %s", args[0])
		assert.Contains(t, res.stderr, "start etcd, or fix store.etcd.endpoints in "+cfg, "ca %s", args[0])
		assert.Empty(t, res.stdout)
		assert.Less(t, time.Since(start), 10*time.Second, "ca %s gave up within dial_timeout, not much later", args[0])
	}
}

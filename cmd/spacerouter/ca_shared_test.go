package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/spacerouter/spacerouter/admin/view"
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

// getVerified asks sr's https listener for / of shop.example.com as a
// client holding only the four downloaded files would: root.crt verifies
// the router, client.crt and client.key are its certificate. It returns
// the status, or 0 and the error.
func getVerified(t *testing.T, sr *sharedRouter, files map[string][]byte) (int, string) {
	t.Helper()
	pair, err := tls.X509KeyPair(files[spaceca.FileCert], files[spaceca.FileKey])
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(files[spaceca.FileRootCA]), "root.crt holds a certificate")
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{
		ServerName: "shop.example.com", RootCAs: roots, Certificates: []tls.Certificate{pair}}}}
	defer c.CloseIdleConnections()
	req, err := http.NewRequest("GET", "https://"+sr.sh.r.HTTPSAddr().String()+"/", nil)
	require.NoError(t, err)
	req.Host = "shop.example.com"
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// checkFiles checks a download of certificate serial: the certificate
// chains to the space CA for client authentication, client.pk8 is the
// key of client.key.
func checkFiles(t *testing.T, files map[string][]byte, spaceCA []byte, serial string) {
	t.Helper()
	require.Len(t, files, 4, "client.crt, client.key, client.pk8, root.crt")
	block, rest := pem.Decode(files[spaceca.FileCert])
	require.NotNil(t, block)
	leaf, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	assert.Equal(t, serial, leaf.SerialNumber.Text(16))
	inter := x509.NewCertPool()
	inter.AppendCertsFromPEM(rest)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(spaceCA))
	_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	require.NoError(t, err, "client.crt verifies against the space CA")
	kb, _ := pem.Decode(files[spaceca.FileKey])
	require.NotNil(t, kb)
	assert.Equal(t, kb.Bytes, files[spaceca.FilePKCS8], "client.pk8 is client.key's PKCS#8 DER")
}

// backendFiles downloads id of shop through b, the admin API's backend.
func backendFiles(b sharedBackend, id string) (map[string][]byte, error) {
	files, err := b.DownloadClient("shop", id)
	if err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range files {
		out[f.Name] = f.Data
	}
	return out, nil
}

// caFiles downloads id with spacerouter ca download -config cfg.
func caFiles(t *testing.T, cfg, id string) (map[string][]byte, result) {
	t.Helper()
	dir := t.TempDir()
	res := ca(t, "download", "-config", cfg, "-id", id, "-dir", dir)
	if res.code != exitOK {
		return nil, res
	}
	out := map[string][]byte{}
	for _, n := range []string{spaceca.FileCert, spaceca.FileKey, spaceca.FilePKCS8, spaceca.FileRootCA} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		require.NoError(t, err)
		out[n] = b
	}
	return out, res
}

// TestSharedClientDownload: a client certificate issued on one router
// (its admin API, or spacerouter ca issue with its state_dir) is
// downloaded on the other, whose state_dir never held it, from its
// record under clients/<app>/<id>: through that router's admin API and
// through ca download with its state_dir. The files verify and are
// accepted (200) by the mtls: require app on both routers. A record
// whose key is not its certificate's is refused, as is a revoked one.
func TestSharedClientDownload(t *testing.T) {
	m := startMember(t)
	cli := etcdClient(t, m.endpoint())
	a := startTestDyno(t, "a")
	dirs := []string{t.TempDir(), t.TempDir()}
	cfgs := []string{writeCAStoreConfig(t, dirs[0], m.endpoint()), writeCAStoreConfig(t, dirs[1], m.endpoint())}
	writeServerChain(t, dirs[0], "shop", "shop.example.com")
	etcdPut(t, cli, "space", "space_ca: {cert: space-ca.pem, key: space-ca-key.pem, state_dir: state}")
	etcdPut(t, cli, "dynos/shop/web.1", a.value())
	etcdPut(t, cli, "apps/shop", "{domains: [shop.example.com], tls: [{cert: shop.pem, key: shop-key.pem}], mtls: {mode: require}}")
	res := ca(t, "init", "-config", cfgs[0])
	require.Equal(t, exitOK, res.code, "ca init: %s", res.stderr)
	for _, f := range []string{"shop.pem", "shop-key.pem", "space-ca.pem", "space-ca-key.pem"} {
		b, err := os.ReadFile(filepath.Join(dirs[0], f))
		require.NoError(t, err)
		writeFileTB(t, filepath.Join(dirs[1], f), string(b))
	}
	spaceCA, err := os.ReadFile(filepath.Join(dirs[0], "space-ca.pem"))
	require.NoError(t, err)
	routers := []*sharedRouter{
		startSharedRouterListen(t, dirs[0], m.endpoint(), "edge-1", `, https: "127.0.0.1:0"`),
		startSharedRouterListen(t, dirs[1], m.endpoint(), "edge-2", `, https: "127.0.0.1:0"`),
	}
	eventually(t, "shop on https without a client certificate: 496", routers, func(sr *sharedRouter) (bool, string) {
		st, body := sr.getTLS(nil)
		return st == 496, fmt.Sprint(st, " ", body)
	})
	b1 := sharedBackend{AdminBackend: routers[0].sh.r.AdminBackend(), st: routers[0].sh.st}
	b2 := sharedBackend{AdminBackend: routers[1].sh.r.AdminBackend(), st: routers[1].sh.st}

	// downloadOnB downloads id through edge-2's admin API (once edge-2
	// applied its record) and through ca download with state_dir B, and
	// checks both sets of files on both routers.
	downloadOnB := func(id, serial string) {
		t.Helper()
		var files map[string][]byte
		eventually(t, "the download of "+id+" on edge-2", routers[1:], func(*sharedRouter) (bool, string) {
			files, err = backendFiles(b2, id)
			return err == nil, fmt.Sprint(err)
		})
		checkFiles(t, files, spaceCA, serial)
		fromCA, res := caFiles(t, cfgs[1], id)
		require.NotNil(t, fromCA, "ca download with state_dir B: %s", res.stderr)
		checkFiles(t, fromCA, spaceCA, serial)
		assert.Equal(t, files, fromCA, "the admin API and ca download give the same files")
		for _, sr := range routers {
			st, body := getVerified(t, sr, files)
			assert.Equal(t, 200, st, "router %s with the files downloaded on edge-2: %s", sr.id, body)
			assert.Equal(t, "a", body)
		}
	}

	// Issued through edge-1's admin API.
	issued, err := b1.IssueClient("shop", "laptop")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(dirs[1], "state", "clients", issued.ID))
	require.ErrorIs(t, err, os.ErrNotExist, "state_dir B never held it")
	downloadOnB(issued.ID, issued.Serial)

	// Issued by ca issue with state_dir A.
	res = ca(t, "issue", "-config", cfgs[0], "-app", "shop", "-name", "phone")
	require.Equal(t, exitOK, res.code, "ca issue: %s", res.stderr)
	byCA := lastWord(res.stdout)
	downloadOnB(byCA, clientRecord(t, cli, "shop", byCA).Serial.Text(16))

	// Tampered: the record of byCA with the key of issued.
	ctx, cancel := context.WithTimeout(context.Background(), sharedWait)
	defer cancel()
	raw := func(id string) map[string]any {
		resp, err := cli.Get(ctx, sharedPrefix+"clients/shop/"+id)
		require.NoError(t, err)
		require.Len(t, resp.Kvs, 1)
		var v map[string]any
		require.NoError(t, json.Unmarshal(resp.Kvs[0].Value, &v))
		return v
	}
	tampered := raw(byCA)
	require.NotEmpty(t, tampered["key"], "the record holds the key")
	tampered["key"] = raw(issued.ID)["key"]
	tb, err := json.Marshal(tampered)
	require.NoError(t, err)
	etcdPut(t, cli, "clients/shop/"+byCA, string(tb))
	eventually(t, "the tampered record refused on edge-2", routers[1:], func(*sharedRouter) (bool, string) {
		_, err := backendFiles(b2, byCA)
		return errors.Is(err, view.ErrConflict) && strings.Contains(err.Error(), "key: it is not the key of the certificate in cert"), fmt.Sprint(err)
	})
	_, err = backendFiles(b2, byCA)
	assert.ErrorContains(t, err, "client certificate "+byCA+": its record clients/shop/"+byCA+" in etcd is refused: key: it is not the key of the certificate in cert")
	files, res := caFiles(t, cfgs[1], byCA)
	assert.Nil(t, files)
	assert.Equal(t, exitFail, res.code)
	assert.Contains(t, res.stderr, "client certificate "+byCA+": its record clients/shop/"+byCA+" in etcd is refused: key: it is not the key of the certificate in cert")
	// edge-1's state_dir (that of ca issue) holds it: served from there
	// once edge-1 read it, not from the record.
	eventually(t, "edge-1 serving the certificate of its state_dir", routers[:1], func(*sharedRouter) (bool, string) {
		files, err = backendFiles(b1, byCA)
		return err == nil, fmt.Sprint(err)
	})
	checkFiles(t, files, spaceCA, clientRecord(t, cli, "shop", byCA).Serial.Text(16))

	// Revoked on edge-1: edge-2 refuses the download (409), as does ca
	// download with state_dir B, and the record no longer holds the key.
	_, err = b1.RevokeClient("shop", issued.ID)
	require.NoError(t, err)
	assert.NotContains(t, raw(issued.ID), "key", "a revoked certificate's key leaves etcd")
	eventually(t, "the revoked certificate's download refused on edge-2 (409)", routers[1:], func(*sharedRouter) (bool, string) {
		_, err := backendFiles(b2, issued.ID)
		return errors.Is(err, view.ErrConflict) && strings.Contains(err.Error(), "is revoked"), fmt.Sprint(err)
	})
	files, res = caFiles(t, cfgs[1], issued.ID)
	assert.Nil(t, files)
	assert.Equal(t, exitFail, res.code)
	assert.Contains(t, res.stderr, "client certificate "+issued.ID+" was revoked on")
}

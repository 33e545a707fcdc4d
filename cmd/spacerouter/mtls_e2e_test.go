package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Issue 11 end to end, as the README's "Private apps" section walks it:
// the real binary's ca init, issue and download make the files, the
// router runs on them, and real curl (and openssl s_client) present the
// downloaded certificate: 200, and 496 without it, 495 once revoked.

// writeServerChain writes a root CA and a certificate for names signed by
// it, as dir/name.pem (leaf, then root: the chain the router serves, so
// ca download finds the root for root.crt) and dir/name-key.pem.
func writeServerChain(t *testing.T, dir, name string, names ...string) {
	t.Helper()
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	rootTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	rootDER, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, rootKey.Public(), rootKey)
	require.NoError(t, err)
	root, err := x509.ParseCertificate(rootDER)
	require.NoError(t, err)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(0, 6, 0),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root, key.Public(), rootKey)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	chain := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER})...)
	writeFile(t, dir, name+".pem", string(chain))
	writeFile(t, dir, name+"-key.pem", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})))
}

// curlResult is what one curl run got.
type curlResult struct {
	status string // %{http_code}: "000" when no response came
	body   string
	stderr string
}

// curl runs curl in dir against https://shop.example.com:port/path,
// resolved to 127.0.0.1, verifying the router with laptop/root.crt, with
// the extra arguments.
func curl(t *testing.T, dir string, port int, path string, extra ...string) curlResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	bodyFile := filepath.Join(t.TempDir(), "body")
	args := append([]string{"-sS", "-o", bodyFile, "-w", "%{http_code}", "--cacert", "laptop/root.crt",
		"--resolve", fmt.Sprintf("shop.example.com:%d:127.0.0.1", port)}, extra...)
	args = append(args, fmt.Sprintf("https://shop.example.com:%d%s", port, path))
	cmd := exec.CommandContext(ctx, "curl", args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	_ = cmd.Run() // a refused handshake exits non-zero; the status says it
	body, _ := os.ReadFile(bodyFile)
	return curlResult{status: stdout.String(), body: string(body), stderr: stderr.String()}
}

// TestCurlClientCertificate: the README's walk from ca init to a curl
// --cert that works and one without that gets 496 (H40), with the files
// of spacerouter ca download, over HTTP/2 and HTTP/1.1; the dyno gets the
// router's X-Forwarded-Client-Cert; openssl s_client with the same files
// gets 200; ca revoke makes the next connection get 495 (H41 revoked)
// within 2 s, without a reload.
func TestCurlClientCertificate(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (CI installs it)")
	}
	t.Parallel()
	dir := t.TempDir()
	writeServerChain(t, dir, "shop", "shop.example.com")
	dynoAddr, requests := startRawDyno(t)
	httpPort, httpsPort, adminPort := freePort(t), freePort(t), freePort(t)
	writeFile(t, dir, "space.yaml", fmt.Sprintf(`space: my-space
listen:
  http: 127.0.0.1:%d
  https: 127.0.0.1:%d
  admin: 127.0.0.1:%d
log:
  router: router.log
space_ca:
  cert: ca/space-ca.pem
  key: ca/space-ca-key.pem
  state_dir: ca/state
apps:
  - name: shop
    domains: [shop.example.com]
    tls:
      - {cert: shop.pem, key: shop-key.pem}
    mtls: {mode: require}
    ip_rules:
      - {cidr: 127.0.0.0/8, description: this machine}
    dynos:
      - {name: web.1, address: %q}
`, httpPort, httpsPort, adminPort, dynoAddr))

	res := runBinary(t, dir, "ca", "init", "-config", "space.yaml")
	require.Equal(t, exitOK, res.code, "ca init: %s", res.stderr)
	res = runBinary(t, dir, "ca", "issue", "-config", "space.yaml", "-app", "shop", "-name", "laptop")
	require.Equal(t, exitOK, res.code, "ca issue: %s", res.stderr)
	id := lastWord(res.stdout)
	res = runBinary(t, dir, "ca", "list", "-config", "space.yaml")
	require.Equal(t, exitOK, res.code, "ca list: %s", res.stderr)
	assert.Regexp(t, id+`\s+shop\s+laptop\s+\S+\s+\S+\s+ready`, res.stdout)
	res = runBinary(t, dir, "ca", "download", "-config", "space.yaml", "-id", id, "-dir", "laptop")
	require.Equal(t, exitOK, res.code, "ca download: %s", res.stderr)

	p := startBinary(t, dir, "-config", "space.yaml")
	p.file.adminPort = adminPort
	p.waitFor(t, "/healthz to answer 200", func() bool {
		code, _, err := p.admin("/healthz")
		return err == nil && code == http.StatusOK
	})
	routerLog := filepath.Join(dir, "router.log")
	withCert := []string{"--cert", "laptop/client.crt", "--key", "laptop/client.key"}

	for _, proto := range []string{"--http2", "--http1.1"} {
		r := curl(t, dir, httpsPort, "/with-cert"+proto, append([]string{proto}, withCert...)...)
		require.Equal(t, "200", r.status, "curl %s --cert: %s", proto, r.stderr)
		assert.Equal(t, "hello from raw", r.body)
		head := <-requests
		assert.Contains(t, head, `;Subject="CN=laptop,OU=shop,O=my-space";URI=spiffe://my-space/apps/shop/clients/`+id+"\r\n",
			"the dyno's X-Forwarded-Client-Cert")
		assert.Contains(t, head, "X-SSL-Client-Verify: SUCCESS\r\n")
		line := p.routerLogLine(t, routerLog, `path="/with-cert`+proto+`"`)
		assert.Regexp(t, ` status=200 .* client_cert=[0-9a-f]{16}\n$`, line)

		r = curl(t, dir, httpsPort, "/without-cert"+proto, proto)
		assert.Equal(t, "496", r.status, "curl %s without --cert: %s", proto, r.stderr)
		line = p.routerLogLine(t, routerLog, `path="/without-cert`+proto+`"`)
		assert.Contains(t, line, `at=warning code=H40 desc="Client certificate required" method=GET`)
		assert.Contains(t, line, " dyno= connect= service= status=496 ")
	}

	// The key as PKCS#8 DER works the same.
	r := curl(t, dir, httpsPort, "/pk8", "--cert", "laptop/client.crt", "--key", "laptop/client.pk8", "--key-type", "DER")
	assert.Equal(t, "200", r.status, "curl --key client.pk8 --key-type DER: %s", r.stderr)
	<-requests

	if _, err := exec.LookPath("openssl"); err == nil {
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "openssl", "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", httpsPort),
			"-servername", "shop.example.com", "-cert", "laptop/client.crt", "-key", "laptop/client.key",
			"-CAfile", "laptop/root.crt", "-verify_return_error", "-quiet")
		cmd.Dir = dir
		cmd.Stdin = strings.NewReader("GET /openssl HTTP/1.1\r\nHost: shop.example.com\r\nConnection: close\r\n\r\n")
		out, err := cmd.Output()
		require.NoError(t, err, "openssl s_client: %s", out)
		assert.True(t, strings.HasPrefix(string(out), "HTTP/1.1 200 OK\r\n"), "openssl s_client got %q", out)
		<-requests
	}

	// Revoked: the next connection is refused within 2 s, without a
	// reload.
	res = runBinary(t, dir, "ca", "revoke", "-config", "space.yaml", "-id", id)
	require.Equal(t, exitOK, res.code, "ca revoke: %s", res.stderr)
	revoked := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		r := curl(t, dir, httpsPort, fmt.Sprintf("/revoked-%d", i), withCert...)
		if r.status == "495" {
			break
		}
		require.Equal(t, "200", r.status, "before the revocation took effect: %s", r.stderr)
		require.Less(t, time.Since(revoked), 3*time.Second, "still 200 %v after ca revoke", time.Since(revoked))
		<-requests
		<-tick.C
	}
	assert.Less(t, time.Since(revoked), 2500*time.Millisecond, "ca revoke took effect after %v", time.Since(revoked))
	assert.Contains(t, p.routerLogLine(t, routerLog, `cause="revoked"`), `code=H41 desc="Client certificate rejected" cause="revoked"`)
	p.stop(t)
}

package admin

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router"
	"github.com/spacerouter/spacerouter/spaceca"
)

// routerEnv is a real router with the admin API on its own admin
// listener, the way cmd/spacerouter wires it, and a dyno.
type routerEnv struct {
	t      *testing.T
	r      *router.Router
	proxy  string // the router's listen.http
	admin  string // the admin listener's base URL
	lines  *lineSink
	idp    *idp
	clock  *testClock
	audits *observer.ObservedLogs
	client *http.Client // to the admin listener
}

// lineSink collects the router's lines.
type lineSink struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *lineSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lineSink) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func startRouterEnv(t *testing.T) *routerEnv {
	t.Helper()
	return startRouterEnvWith(t, routerOptions{})
}

// startRouterEnvTLS is startRouterEnv with, when shopTLS is not "", an
// https listener and shopTLS as the YAML of shop's tls key.
func startRouterEnvTLS(t *testing.T, shopTLS string) *routerEnv {
	t.Helper()
	return startRouterEnvWith(t, routerOptions{shopTLS: shopTLS})
}

// routerOptions vary the router of startRouterEnvWith.
type routerOptions struct {
	shopTLS  string // the YAML of shop's tls key; an https listener with it
	shopMore string // more YAML keys of shop (each line indented 4)
	top      string // more top-level YAML (space, space_ca)
	adminTLS string // the YAML of admin.tls; the admin listener serves HTTPS
	noAuth   bool   // no admin.auth: the router as cmd/spacerouter runs it then
}

// startRouterEnvWith starts a provider, a dyno and a router with o, with
// the admin API wired the way cmd/spacerouter's startAdminAPI does it
// (admin.auth present; Secure cookies when admin.tls is set). The router's
// operational log and the admin API's go to one observer (audits), as
// they go to one log in cmd/spacerouter.
func startRouterEnvWith(t *testing.T, o routerOptions) *routerEnv {
	t.Helper()
	dyno := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "from the dyno "+r.URL.Path)
	})}
	dl, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go dyno.Serve(dl)
	t.Cleanup(func() { dyno.Close() })

	// The admin listener's address is chosen first: the redirect URL names it.
	al, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	adminAddr := al.Addr().String()
	al.Close()
	p := startIDP(t, nil)
	secretFile := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secretFile, []byte(p.ClientSecret), 0o600))
	https, shopTLSKey := "", ""
	if o.shopTLS != "" {
		https, shopTLSKey = `, https: "127.0.0.1:0"`, "\n    tls: "+o.shopTLS
	}
	for _, ln := range strings.Split(strings.TrimRight(o.shopMore, "\n"), "\n") {
		if ln != "" {
			shopTLSKey += "\n    " + ln
		}
	}
	scheme, adminSection := "http", ""
	if o.adminTLS != "" {
		scheme = "https"
		adminSection = "  tls: " + o.adminTLS + "\n"
	}
	if !o.noAuth {
		adminSection += fmt.Sprintf(`  auth:
    issuer: %q
    client_id: %q
    client_secret_file: %q
    redirect_url: "%s://%s/auth/callback"
    roles:
      - {group: shop-owners, role: owner, apps: [shop]}
      - {group: shop-devs, role: collaborator, apps: [shop]}
      - {group: blog-owners, role: owner, apps: [blog]}
`, p.Issuer(), p.ClientID, secretFile, scheme, adminAddr)
	}
	if adminSection != "" {
		adminSection = "admin:\n" + adminSection
	}
	yamlText := fmt.Sprintf(`%slisten: {http: "127.0.0.1:0", admin: %q%s}
%sapps:
  - name: shop
    domains: [shop.test]%s
    dynos: [{name: web.1, address: %q}]
  - name: blog
    domains: [blog.test]
    dynos: [{name: web.1, address: %q}]
`, o.top, adminAddr, https, adminSection, shopTLSKey, dl.Addr().String(), dl.Addr().String())
	cfg, err := config.Parse("space.yaml", []byte(yamlText))
	require.NoError(t, err, yamlText)

	e := &routerEnv{t: t, idp: p, clock: &testClock{}, lines: &lineSink{}}
	core, logs := observer.New(zap.InfoLevel)
	e.audits = logs
	rl := logging.NewRouterLog(e.lines, "heroku[router]", nil)
	e.r, err = router.New(cfg, router.Options{Lines: rl, Logger: zap.New(core)})
	require.NoError(t, err)
	if cfg.Admin != nil && cfg.Admin.Auth != nil {
		srv, err := New(Options{Auth: cfg.Admin.Auth, TLS: cfg.Admin.TLS != nil, Backend: e.r.AdminBackend(),
			Log: zap.New(core).Named("admin"), Now: e.clock.Now})
		require.NoError(t, err)
		e.r.SetAdminHandler(srv.Handler)
	}
	require.NoError(t, e.r.Start())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		e.r.Shutdown(ctx)
	})
	e.proxy = e.r.HTTPAddr().String()
	e.admin = scheme + "://" + e.r.AdminAddr().String()
	e.client = http.DefaultClient
	return e
}

// get sends GET path for host through the router and returns the status.
func (e *routerEnv) get(host, path string) int {
	e.t.Helper()
	req, err := http.NewRequest("GET", "http://"+e.proxy+path, nil)
	require.NoError(e.t, err)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// api calls the admin API with a bearer token.
func (e *routerEnv) api(method, path, token, body string) (int, string) {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.admin+path, rd)
	require.NoError(e.t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := e.client.Do(req)
	require.NoError(e.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(e.t, err)
	return resp.StatusCode, string(b)
}

func (e *routerEnv) token(sub string, groups ...string) string {
	return e.idp.sign(e.t, e.idp.claims(e.clock.Now(), sub, groups...))
}

// TestRouterAdminAPI drives the admin API of a real router with bearer
// tokens from a real provider: the apps and their traffic, the
// maintenance switch answering H80 from the next request, the router
// lines recent and live, and /healthz and /metrics unchanged beside it.
func TestRouterAdminAPI(t *testing.T) {
	e := startRouterEnv(t)
	owner := e.token("olga", "shop-owners")
	dev := e.token("dev", "shop-devs")

	for _, path := range []string{"/healthz", "/metrics"} {
		status, body := e.api("GET", path, "", "")
		assert.Equal(t, 200, status, "%s needs no sign-in: %s", path, body)
	}
	status, _ := e.api("GET", "/api/apps", "", "")
	assert.Equal(t, 401, status)

	require.Equal(t, 200, e.get("shop.test", "/first"))
	require.Equal(t, 200, e.get("blog.test", "/blog"))

	status, body := e.api("GET", "/api/apps", dev, "")
	require.Equal(t, 200, status, body)
	var apps []view.App
	require.NoError(t, json.Unmarshal([]byte(body), &apps))
	require.Len(t, apps, 1, "a collaborator of shop sees shop only: %s", body)
	assert.Equal(t, "shop", apps[0].Name)
	assert.Equal(t, "web.1", apps[0].Dynos[0].Name)
	assert.Equal(t, "up", apps[0].Dynos[0].State)
	assert.Equal(t, uint64(1), apps[0].Traffic.Requests)
	assert.Equal(t, map[string]uint64{"2xx": 1}, apps[0].Traffic.Statuses)

	status, _ = e.api("GET", "/api/apps/blog", dev, "")
	assert.Equal(t, 404, status, "another app is not found")

	// Recent lines: the router's own line for the request.
	status, body = e.api("GET", "/api/lines?app=shop", dev, "")
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, `path=\"/first\"`)
	assert.NotContains(t, body, "/blog")

	// A live stream sees the next request's line.
	req, err := http.NewRequest("GET", e.admin+"/api/lines?app=shop", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+dev)
	req.Header.Set("Accept", "text/event-stream")
	sresp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer sresp.Body.Close()
	require.Equal(t, 200, sresp.StatusCode)
	rd := bufio.NewReader(sresp.Body)
	_, err = rd.ReadString('\n') // the stream has begun: the feed is open
	require.NoError(t, err)
	require.Equal(t, 200, e.get("shop.test", "/live"))
	got := make(chan string, 1)
	go func() {
		for {
			l, err := rd.ReadString('\n')
			if err != nil {
				close(got)
				return
			}
			if strings.HasPrefix(l, "data: ") && strings.Contains(l, "/live") {
				got <- l
				return
			}
		}
	}()
	select {
	case l := <-got:
		assert.Contains(t, l, "host=shop.test")
		assert.Contains(t, l, "status=200")
	case <-time.After(10 * time.Second):
		t.Fatal("the live line of /live did not arrive")
	}

	// Maintenance: a collaborator may not, an owner may; the next request
	// answers H80, and the audit line names who.
	status, _ = e.api("PUT", "/api/apps/shop/maintenance", dev, `{"maintenance":true}`)
	assert.Equal(t, 403, status)
	logged := e.logged(func() {
		status, body = e.api("PUT", "/api/apps/shop/maintenance", owner, `{"maintenance":true}`)
	})
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, `"maintenance":true`)
	assert.Equal(t, 503, e.get("shop.test", "/down"))
	require.Eventually(t, func() bool { return strings.Contains(e.lines.String(), "code=H80") }, 5*time.Second, 5*time.Millisecond)
	assert.Contains(t, lineOf(e.lines.String(), "/down"), "code=H80")
	assert.Equal(t, 1, e.audits.FilterMessage("admin change").Len())
	require.Len(t, logged, 1, "a change is one operational log line: %v", messages(logged))
	assertAudit(t, logged[0], "olga", "owner", "shop", "maintenance.on")
	assert.Equal(t, 1, e.audits.FilterMessageSnippet("kept in memory until a restart").Len(),
		"without a state_dir the start says once that switches do not outlive a restart")

	// The H-code counts of the last 5 minutes hold the H80.
	status, body = e.api("GET", "/api/apps", owner, "")
	require.Equal(t, 200, status, body)
	require.NoError(t, json.Unmarshal([]byte(body), &apps))
	require.Len(t, apps, 1)
	assert.Equal(t, map[string]uint64{"H80": 1}, apps[0].Traffic.Codes, body)
	assert.Equal(t, uint64(3), apps[0].Traffic.Requests, "/first, /live and /down")
	assert.Equal(t, map[string]uint64{"2xx": 2, "5xx": 1}, apps[0].Traffic.Statuses)
	assert.True(t, apps[0].Maintenance)
	assert.Equal(t, "off", apps[0].MTLSMode)
	assert.Equal(t, "none", apps[0].TLSSource)
	assert.Equal(t, []string{"shop.test"}, apps[0].Domains)
	assert.Contains(t, body, `"tls_source":"none"`)
	assert.Contains(t, body, `"mtls_mode":"off"`)
	assert.Contains(t, body, `"domains":["shop.test"]`)

	status, body = e.api("PUT", "/api/apps/shop/maintenance", owner, `{"maintenance":null}`)
	require.Equal(t, 200, status, body)
	assert.Equal(t, 200, e.get("shop.test", "/up"))

	// Client certificates need a space CA: a clear conflict without one.
	status, body = e.api("POST", "/api/apps/shop/clients", owner, `{"name":"laptop"}`)
	assert.Equal(t, 409, status, body)
	assert.Contains(t, body, "space_ca")
	status, body = e.api("GET", "/api/apps/shop/clients", dev, "")
	assert.Equal(t, 200, status, body)
	assert.JSONEq(t, `[]`, body)
}

// logged runs f and returns the operational log lines (Info and above)
// written meanwhile.
func (e *routerEnv) logged(f func()) []observer.LoggedEntry {
	n := e.audits.Len()
	f()
	return e.audits.All()[n:]
}

func messages(es []observer.LoggedEntry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Message)
	}
	return out
}

// assertAudit checks that l is the audit line of a change: the subject,
// role, app and action (SPEC.md section 13).
func assertAudit(t *testing.T, l observer.LoggedEntry, subject, role, app, action string) {
	t.Helper()
	f := l.ContextMap()
	assert.Equal(t, "admin change", l.Message)
	assert.Equal(t, []any{subject, role, app, action}, []any{f["subject"], f["role"], f["app"], f["action"]}, "%v", f)
}

// lineOf returns the last router line of path in lines.
func lineOf(lines, path string) string {
	all := strings.Split(lines, "\n")
	for i := len(all) - 1; i >= 0; i-- { // the last: a path may be asked until an answer changes
		if strings.Contains(all[i], `path="`+path+`"`) {
			return all[i]
		}
	}
	return ""
}

// TestBrowserRouter signs in to a real router's dashboard in headless
// Chromium, sees the app, watches a live router line of a request arrive,
// switches maintenance on and sees the next request answered H80.
func TestBrowserRouter(t *testing.T) {
	e := startRouterEnv(t)
	ctx, shot := headless(t) // after the servers: its cleanup closes the browser first
	require.Equal(t, 200, e.get("shop.test", "/before"))

	e.idp.queueUser(newUser("olga", "shop-owners"))
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate(e.admin+"/"),
		chromedp.WaitVisible(chromedp.CSS(`#apps tbody tr[data-app="shop"]`)),
	), "signing in and seeing the apps")
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#apps tbody tr").length`))
	require.NoError(t, err)
	assert.Equal(t, 1, rows, "only shop: olga owns no other app")
	shot("router-1-apps")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#apps button.link[data-app="shop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#detail`)),
	), "opening shop")
	// The page opens its live stream; a request made then shows up in it.
	require.Eventually(t, func() bool {
		if e.get("shop.test", "/browser-live") != 200 {
			return false
		}
		text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#lines")))
		return err == nil && strings.Contains(text, "/browser-live")
	}, 20*time.Second, 500*time.Millisecond, "a live router line appears")
	shot("router-2-live-line")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`button.toggle-maintenance[data-app="shop"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#apps tbody tr[data-app="shop"] .maintenance.on`)),
	), "switching maintenance on")
	assert.Equal(t, 503, e.get("shop.test", "/after-switch"))
	require.Eventually(t, func() bool {
		return strings.Contains(lineOf(e.lines.String(), "/after-switch"), "code=H80")
	}, 5*time.Second, 5*time.Millisecond, "the next request is H80")
	shot("router-3-maintenance")
	assert.Equal(t, 1, e.audits.FilterMessage("admin change").Len(), "one audit line")
	assert.Equal(t, map[string]any{"app": "shop"}, map[string]any{"app": e.audits.FilterMessage("admin change").All()[0].ContextMap()["app"]})
}

// selfSigned writes a self-signed ECDSA certificate for names into dir
// and returns the cert and key paths and the certificate.
func selfSigned(t *testing.T, dir string, names ...string) (string, string, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(0x5eed), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	kd, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	cp, kp := filepath.Join(dir, "shop.pem"), filepath.Join(dir, "shop-key.pem")
	require.NoError(t, os.WriteFile(cp, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(kp, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd}), 0o600))
	return cp, kp, cert
}

// TestRouterAdminTLSView: the certificates of an app and the open TLS
// connections that use them, as a real router serves them through the
// API, only to callers with a role on the app.
func TestRouterAdminTLSView(t *testing.T) {
	cp, kp, cert := selfSigned(t, t.TempDir(), "shop.test")
	e := startRouterEnvTLS(t, fmt.Sprintf("[{cert: %q, key: %q}]", cp, kp))
	dev := e.token("dev", "shop-devs")

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	conn, err := tls.Dial("tcp", e.r.HTTPSAddr().String(), &tls.Config{ServerName: "shop.test", RootCAs: pool, NextProtos: []string{"http/1.1"}})
	require.NoError(t, err)
	defer conn.Close()
	_, err = io.WriteString(conn, "GET /tls HTTP/1.1\r\nHost: shop.test\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err)
	require.Equal(t, 200, resp.StatusCode)
	resp.Body.Close()

	status, body := e.api("GET", "/api/apps/shop", dev, "")
	require.Equal(t, 200, status, body)
	var detail view.AppDetail
	require.NoError(t, json.Unmarshal([]byte(body), &detail))
	require.Len(t, detail.Certificates, 1, body)
	c := detail.Certificates[0]
	assert.Equal(t, "file", c.Source)
	assert.Equal(t, "ok", c.State)
	assert.Equal(t, "5eed", c.Serial)
	assert.Equal(t, []string{"shop.test"}, c.Names)
	assert.Equal(t, "ECDSA", c.KeyType)
	assert.Equal(t, cert.NotAfter.Unix(), c.NotAfter.Unix())
	assert.Equal(t, "files", detail.TLSSource)

	status, body = e.api("GET", "/api/tls/connections?app=shop", dev, "")
	require.Equal(t, 200, status, body)
	var conns []view.TLSConnection
	require.NoError(t, json.Unmarshal([]byte(body), &conns))
	require.Len(t, conns, 1, body)
	assert.Equal(t, conn.LocalAddr().String(), conns[0].RemoteAddr)
	assert.Equal(t, "shop.test", conns[0].SNI)
	assert.Equal(t, "5eed", conns[0].Served.Serial)
	assert.Equal(t, "http/1.1", conns[0].ALPN)
	assert.Equal(t, uint64(1), conns[0].Requests)

	status, body = e.api("GET", "/api/tls/summary", dev, "")
	require.Equal(t, 200, status, body)
	var sum view.TLSSummary
	require.NoError(t, json.Unmarshal([]byte(body), &sum))
	assert.Equal(t, 1, sum.Connections)
	assert.Equal(t, 1, sum.WithoutClientCert)

	// A caller with no role on shop sees none of it.
	blog := e.token("b", "blog-owners")
	status, body = e.api("GET", "/api/tls/connections", blog, "")
	assert.Equal(t, 200, status, body)
	assert.JSONEq(t, `[]`, body, "blog's owner sees no connection of shop")
	status, body = e.api("GET", "/api/tls/connections?app=shop", blog, "")
	assert.Equal(t, 404, status, body)
	status, body = e.api("GET", "/api/tls/summary", blog, "")
	assert.Equal(t, 200, status, body)
	assert.Contains(t, body, `"connections":0`)
	status, body = e.api("GET", "/api/tls/connections", e.token("x", "marketing"), "")
	assert.Equal(t, 403, status, "no role at all: %s", body)
}

// untar reads a tar into name -> mode and data.
func untar(t *testing.T, b []byte) map[string]tarFile {
	t.Helper()
	out := map[string]tarFile{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		require.NoError(t, err)
		data, err := io.ReadAll(tr)
		require.NoError(t, err)
		out[h.Name] = tarFile{mode: h.Mode, data: data}
	}
}

type tarFile struct {
	mode int64
	data []byte
}

// TestRouterClientCertificates: an owner issues a client certificate of
// a real space CA through the API, downloads the tar of SPEC.md section
// 11.3 and connects with it (verify-full with root.crt) to the app that
// requires one; the TLS view finds the connection by the client's serial
// and CA; the revocation through the API refuses the connection's next
// request (H41). Each change is one audit line.
func TestRouterClientCertificates(t *testing.T) {
	dir := t.TempDir()
	caCert, caKey := filepath.Join(dir, "space-ca.pem"), filepath.Join(dir, "space-ca-key.pem")
	ca, err := spaceca.Init(caCert, caKey, "acme-space")
	require.NoError(t, err)
	cp, kp, served := selfSigned(t, t.TempDir(), "shop.test")
	e := startRouterEnvWith(t, routerOptions{
		top:      fmt.Sprintf("space: acme-space\nspace_ca: {cert: %q, key: %q, state_dir: %q}\n", caCert, caKey, filepath.Join(dir, "state")),
		shopTLS:  fmt.Sprintf("[{cert: %q, key: %q}]", cp, kp),
		shopMore: "mtls: {mode: require, trust: [space]}",
	})
	owner, dev, blog := e.token("olga", "shop-owners"), e.token("dev", "shop-devs"), e.token("b", "blog-owners")

	var status int
	var body string
	logged := e.logged(func() { status, body = e.api("POST", "/api/apps/shop/clients", owner, `{"name":"laptop"}`) })
	require.Equal(t, 201, status, body)
	require.Len(t, logged, 1, "%v", messages(logged))
	assertAudit(t, logged[0], "olga", "owner", "shop", "client.issue")
	var cl view.Client
	require.NoError(t, json.Unmarshal([]byte(body), &cl))
	assert.Regexp(t, `^[0-9a-f]{16}$`, cl.ID)
	assert.Equal(t, "laptop", cl.Name)
	assert.Equal(t, "ready", cl.Status)
	assert.Equal(t, cl.ID, logged[0].ContextMap()["cert_id"])
	assert.Zero(t, e.audits.FilterMessageSnippet("kept in memory").Len(), "a state_dir keeps the switches")

	status, body = e.api("POST", "/api/apps/shop/clients", dev, `{"name":"x"}`)
	assert.Equal(t, 403, status, body)
	status, body = e.api("POST", "/api/apps/shop/clients", blog, `{"name":"x"}`)
	assert.Equal(t, 404, status, body)
	status, body = e.api("GET", "/api/apps/shop/clients", dev, "")
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, `"id":"`+cl.ID+`"`)
	status, _ = e.api("GET", "/api/apps/shop/clients/"+cl.ID+"/download", dev, "")
	assert.Equal(t, 403, status, "a collaborator may not download a key")
	status, _ = e.api("GET", "/api/apps/blog/clients/"+cl.ID+"/download", blog, "")
	assert.Equal(t, 404, status, "shop's certificate through blog")

	// The download: a tar of the four files of SPEC.md 11.3.
	status, body = e.api("GET", "/api/apps/shop/clients/"+cl.ID+"/download", owner, "")
	require.Equal(t, 200, status, body)
	files := untar(t, []byte(body))
	require.ElementsMatch(t, []string{"client.crt", "client.key", "client.pk8", "root.crt"}, keysOf(files))
	assert.Equal(t, int64(0o600), files["client.key"].mode)
	assert.Equal(t, int64(0o600), files["client.pk8"].mode)
	blk, _ := pem.Decode(files["client.key"].data)
	require.NotNil(t, blk)
	assert.Equal(t, "PRIVATE KEY", blk.Type, "PKCS#8")
	assert.Equal(t, blk.Bytes, files["client.pk8"].data, "client.pk8 is client.key's PKCS#8 in DER")
	rootBlk, _ := pem.Decode(files["root.crt"].data)
	require.NotNil(t, rootBlk)
	assert.Equal(t, served.Raw, rootBlk.Bytes, "root.crt: the top of shop's served chain")
	var chain []*x509.Certificate
	for rest := files["client.crt"].data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		require.NoError(t, err)
		chain = append(chain, c)
	}
	require.Len(t, chain, 2, "the certificate and the chain to the CA")
	assert.True(t, chain[1].Equal(ca))
	require.Len(t, chain[0].URIs, 1)
	assert.Equal(t, "spiffe://acme-space/apps/shop/clients/"+cl.ID, chain[0].URIs[0].String())
	assert.Equal(t, cl.Serial, chain[0].SerialNumber.Text(16))

	// Connect with the downloaded files, verifying the router with root.crt.
	pair, err := tls.X509KeyPair(files["client.crt"].data, files["client.key"].data)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(files["root.crt"].data))
	httpsAddr := e.r.HTTPSAddr().String()
	tr := &http.Transport{TLSClientConfig: &tls.Config{ServerName: "shop.test", RootCAs: roots, Certificates: []tls.Certificate{pair}},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
		}, MaxConnsPerHost: 1}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	get := func(path string) int {
		resp, err := client.Get("https://shop.test" + path)
		require.NoError(t, err)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	require.Equal(t, 200, get("/with-cert"))

	// The TLS view finds the connection by the client's serial and CA.
	sum := sha256.Sum256(ca.Raw)
	fp := hex.EncodeToString(sum[:])
	for _, q := range []string{"serial=" + cl.Serial, "serial=" + strings.ToUpper(cl.Serial), "ca=" + url.QueryEscape(ca.Subject.CommonName),
		"ca=" + fp, "ca=" + fp[:16], "app=shop&serial=" + served.SerialNumber.Text(16), "serial=" + cl.Serial + "&ca=" + fp} {
		status, body = e.api("GET", "/api/tls/connections?"+q, dev, "")
		require.Equal(t, 200, status, body)
		var conns []view.TLSConnection
		require.NoError(t, json.Unmarshal([]byte(body), &conns))
		require.Len(t, conns, 1, "?%s: %s", q, body)
		require.NotNil(t, conns[0].Client, q)
		assert.Equal(t, cl.Serial, conns[0].Client.Serial, q)
		assert.Equal(t, fp, conns[0].Client.CASHA256, q)
		assert.Equal(t, "ok", conns[0].Client.Status, q)
	}
	for _, q := range []string{"serial=ffff", "ca=other", "ca=" + strings.Repeat("0", 16), "serial=not-hex"} {
		status, body = e.api("GET", "/api/tls/connections?"+q, dev, "")
		require.Equal(t, 200, status, body)
		assert.JSONEq(t, `[]`, body, "?%s", q)
	}
	status, body = e.api("GET", "/api/tls/summary", dev, "")
	require.Equal(t, 200, status, body)
	var summary view.TLSSummary
	require.NoError(t, json.Unmarshal([]byte(body), &summary))
	require.Len(t, summary.ByClientCA, 1, body)
	assert.Equal(t, fp, summary.ByClientCA[0].CASHA256)
	assert.Equal(t, 1, summary.ByClientCA[0].Connections)

	// The revocation: one audit line; the connection's next request is H41.
	logged = e.logged(func() { status, body = e.api("DELETE", "/api/apps/shop/clients/"+cl.ID, owner, "") })
	require.Equal(t, 200, status, body)
	assert.Contains(t, body, `"status":"revoked"`)
	require.Len(t, logged, 1, "%v", messages(logged))
	assertAudit(t, logged[0], "olga", "owner", "shop", "client.revoke")
	require.Eventually(t, func() bool { return get("/after-revoke") == 495 }, 3*time.Second, 50*time.Millisecond, "revoked within 2 s")
	// The line is written after the response: wait for it.
	require.Eventually(t, func() bool { return strings.Contains(lineOf(e.lines.String(), "/after-revoke"), "status=495") },
		5*time.Second, 5*time.Millisecond, "the 495's line")
	assert.Contains(t, lineOf(e.lines.String(), "/after-revoke"), "code=H41")
	status, body = e.api("GET", "/api/apps/shop/clients/"+cl.ID+"/download", owner, "")
	assert.Equal(t, 409, status, body)
	assert.Contains(t, body, "revoked")
	status, body = e.api("DELETE", "/api/apps/shop/clients/"+strings.Repeat("0", 16), owner, "")
	assert.Equal(t, 404, status, body)
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestRouterAdminTLS: with admin.tls and admin.auth the router's admin
// listener serves HTTPS (and nothing in plain HTTP); a browser signs in
// over it and gets its cookies Secure, HttpOnly, SameSite=Lax and
// __Host-; a change with the session needs the CSRF token; /healthz and
// /metrics answer over TLS without sign-in.
func TestRouterAdminTLS(t *testing.T) {
	dir := t.TempDir()
	cp, kp, cert := selfSigned(t, dir, "admin.test")
	e := startRouterEnvWith(t, routerOptions{adminTLS: fmt.Sprintf("{cert: %q, key: %q}", cp, kp)})
	require.True(t, strings.HasPrefix(e.admin, "https://"))
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tlsClient := func(jar http.CookieJar) *http.Client {
		return &http.Client{Jar: jar, Timeout: 10 * time.Second,
			Transport:     &http.Transport{TLSClientConfig: &tls.Config{ServerName: "admin.test", RootCAs: pool}},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	e.client = tlsClient(nil)

	for _, path := range []string{"/healthz", "/metrics"} {
		status, body := e.api("GET", path, "", "")
		assert.Equal(t, 200, status, "%s over TLS needs no sign-in: %s", path, body)
	}
	status, _ := e.api("GET", "/api/apps", "", "")
	assert.Equal(t, 401, status)
	status, body := e.api("GET", "/api/apps", e.token("olga", "shop-owners"), "")
	require.Equal(t, 200, status, body)
	// HTTP/2 (the listener offers h2 in ALPN) answers the same.
	h2 := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{ForceAttemptHTTP2: true,
		TLSClientConfig: &tls.Config{ServerName: "admin.test", RootCAs: pool}}}
	req, err := http.NewRequest("GET", e.admin+"/api/apps/shop", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.token("olga", "shop-owners"))
	resp, err := h2.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.Equal(t, 200, resp.StatusCode, "%s", b)
	assert.Contains(t, string(b), `"name":"shop"`)
	_, err = http.Get("http://" + e.r.AdminAddr().String() + "/healthz")
	if err == nil {
		resp, _ := http.Get("http://" + e.r.AdminAddr().String() + "/api/apps")
		require.NotNil(t, resp)
		resp.Body.Close()
		assert.NotEqual(t, 200, resp.StatusCode, "no plain HTTP on a TLS admin listener")
	}

	// Sign in as a browser, step by step to see each cookie.
	jar := newJar(t)
	c := tlsClient(jar)
	step := func(u string, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", u, nil)
		require.NoError(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		cl := c
		if !strings.HasPrefix(u, "https://") {
			cl = noRedirect(jar) // the provider is plain HTTP
		}
		resp, err := cl.Do(req)
		require.NoError(t, err, "GET %s", u)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	resp = step(e.admin+"/", "Accept", "text/html")
	require.Equal(t, 302, resp.StatusCode)
	resp = step(e.admin + resp.Header.Get("Location"))
	require.Equal(t, 302, resp.StatusCode)
	assertCookie(t, resp, "__Host-spacerouter_signin")
	e.idp.queueUser(newUser("olga", "shop-owners"))
	resp = step(resp.Header.Get("Location"))
	require.Equal(t, 302, resp.StatusCode, "the provider's authorize")
	cb := resp.Header.Get("Location")
	require.True(t, strings.HasPrefix(cb, e.admin+"/auth/callback?"), cb)
	resp = step(cb)
	require.Equal(t, 302, resp.StatusCode)
	assertCookie(t, resp, "__Host-spacerouter_admin")

	req, err = http.NewRequest("GET", e.admin+"/", nil)
	require.NoError(t, err)
	resp, err = c.Do(req)
	require.NoError(t, err)
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode, "%s", page)
	_, after, ok := strings.Cut(string(page), `name="csrf-token" content="`)
	require.True(t, ok)
	csrf, _, _ := strings.Cut(after, `"`)

	put := func(hdr ...string) int {
		req, err := http.NewRequest("PUT", e.admin+"/api/apps/shop/maintenance", strings.NewReader(`{"maintenance":true}`))
		require.NoError(t, err)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 403, put(), "a change with the session and no CSRF token")
	assert.Equal(t, 200, e.get("shop.test", "/still-up"))
	assert.Equal(t, 200, put("X-CSRF-Token", csrf))
	assert.Equal(t, 503, e.get("shop.test", "/down"))
}

// assertCookie checks that resp sets cookie name Secure, HttpOnly,
// SameSite=Lax, Path=/.
func assertCookie(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Name == name {
			assert.True(t, c.Secure, "%s Secure", name)
			assert.True(t, c.HttpOnly, "%s HttpOnly", name)
			assert.Equal(t, http.SameSiteLaxMode, c.SameSite, name)
			assert.Equal(t, "/", c.Path, name)
			assert.Empty(t, c.Domain, name)
			return
		}
	}
	t.Errorf("no cookie %s in %v", name, resp.Header.Values("Set-Cookie"))
}

// TestRouterAdminWithoutAuth: without admin.auth the admin listener
// serves /healthz and /metrics only: every admin path is 404, with a
// token or without.
func TestRouterAdminWithoutAuth(t *testing.T) {
	e := startRouterEnvWith(t, routerOptions{noAuth: true})
	tok := e.token("admin", "shop-owners")
	for _, path := range []string{"/healthz", "/metrics"} {
		status, body := e.api("GET", path, "", "")
		assert.Equal(t, 200, status, "%s: %s", path, body)
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/api/apps"}, {"GET", "/api/apps/shop"}, {"PUT", "/api/apps/shop/maintenance"},
		{"GET", "/api/apps/shop/clients"}, {"POST", "/api/apps/shop/clients"}, {"GET", "/api/apps/shop/clients/00000000000000a1/download"},
		{"DELETE", "/api/apps/shop/clients/00000000000000a1"}, {"GET", "/api/tls/connections"}, {"GET", "/api/tls/summary"},
		{"GET", "/api/lines?app=shop"}, {"GET", "/auth/login"}, {"GET", "/auth/callback"}, {"POST", "/auth/logout"},
		{"GET", "/static/app.js"}, {"GET", "/static/index.html"},
	} {
		for _, token := range []string{"", tok} {
			status, body := e.api(r.method, r.path, token, `{"maintenance":true}`)
			assert.Equal(t, 404, status, "%s %s: %s", r.method, r.path, body)
		}
	}
	assert.Equal(t, 200, e.get("shop.test", "/"), "no maintenance switched")
}

// TestRouterProviderDown: with the provider gone, the real router's
// protected routes answer 503 (the dashboard's sign-in too) while
// /healthz, /metrics and the proxy stay up.
func TestRouterProviderDown(t *testing.T) {
	e := startRouterEnvWith(t, routerOptions{})
	tok := e.token("olga", "shop-owners")
	require.NoError(t, e.idp.Shutdown())
	for _, path := range []string{"/api/apps", "/api/apps/shop", "/api/lines?app=shop", "/api/tls/summary", "/", "/auth/login"} {
		status, body := e.api("GET", path, tok, "")
		assert.Equal(t, 503, status, "GET %s: %s", path, body)
		assert.NotContains(t, body, "127.0.0.1", "no internal detail")
	}
	status, body := e.api("PUT", "/api/apps/shop/maintenance", tok, `{"maintenance":true}`)
	assert.Equal(t, 503, status, body)
	for _, path := range []string{"/healthz", "/metrics"} {
		status, body := e.api("GET", path, "", "")
		assert.Equal(t, 200, status, "%s: %s", path, body)
	}
	assert.Equal(t, 200, e.get("shop.test", "/"))
}

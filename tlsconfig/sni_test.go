package tlsconfig

import (
	"context"
	"crypto/tls"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failures records Options.OnHandshakeFailure calls.
type failures struct {
	mu   sync.Mutex
	seen []string // "reason sni"; guarded by mu
}

func (f *failures) record(reason, sni string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, reason+" "+sni)
}

func (f *failures) list() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...)
}

// sniApps is a space with an exact domain, a wildcard over it and a longer
// wildcard; each app's certificate names the app (CommonName = file).
func sniApps(t testing.TB) []App {
	p, dir := pkiFor(t), t.TempDir()
	cert := func(name string, names ...string) []CertFiles {
		return []CertFiles{p.writeLeaf(t, dir, leafSpec{file: name, ecdsa: true, names: names})}
	}
	return []App{
		{Name: "api", Domains: []string{"api.example.com"}, Certs: cert("api", "api.example.com")},
		{Name: "wild", Domains: []string{"*.example.com"}, Certs: cert("wild", "*.example.com", "*.b.example.com")},
		{Name: "deep", Domains: []string{"*.A.example.com"}, Certs: cert("deep", "*.a.example.com")},
		{Name: "bare", Domains: []string{"nocert.example.org"}},
	}
}

func TestSNIPicksApp(t *testing.T) {
	t.Parallel()
	var f failures
	s := newStore(t, Options{OnHandshakeFailure: f.record}, sniApps(t)...)
	addr := serve(t, s)
	for _, tc := range []struct{ sni, app string }{
		{"api.example.com", "api"},
		{"API.Example.COM", "api"},
		{"x.example.com", "wild"},
		{"x.b.example.com", "wild"},
		{"x.a.example.com", "deep"},
		{"X.A.EXAMPLE.COM", "deep"},
	} {
		t.Run(tc.sni, func(t *testing.T) {
			st, err := handshake(addr, clientConfig(t, tc.sni))
			require.NoError(t, err, "SNI %s", tc.sni)
			assert.Equal(t, tc.app, st.PeerCertificates[0].Subject.CommonName, "SNI %s served the wrong app's certificate", tc.sni)
			app, ok := s.AppForSNI(tc.sni)
			assert.True(t, ok)
			assert.Equal(t, tc.app, app)
		})
	}
	assert.Empty(t, f.list(), "no handshake was refused")
}

func TestSNIRefusedWithUnrecognizedName(t *testing.T) {
	t.Parallel()
	var f failures
	s := newStore(t, Options{OnHandshakeFailure: f.record}, sniApps(t)...)
	addr := serve(t, s)
	for _, tc := range []struct{ name, sni, want string }{
		{"no SNI", "", "no_sni "},
		{"unknown name", "shop.example.net", "unknown_sni shop.example.net"},
		{"wildcard parent", "example.com", "unknown_sni example.com"},
		{"unknown name, upper case", "Shop.Example.NET", "unknown_sni shop.example.net"},
		{"app without certificate", "nocert.example.org", "no_certificate nocert.example.org"},
	} {
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			t.Run(tc.name+"/"+tls.VersionName(v), func(t *testing.T) {
				cfg := clientConfig(t, tc.sni)
				cfg.InsecureSkipVerify = tc.sni == "" // a Go client verifying needs a name
				cfg.MaxVersion = v
				before := len(f.list())
				_, err := handshake(addr, cfg)
				require.Error(t, err)
				assert.True(t, receivedAlert(err, "unrecognized name"), "SNI %q: want alert unrecognized_name (112), got %v", tc.sni, err)
				assert.Equal(t, []string{tc.want}, f.list()[before:])
			})
		}
	}
}

// TestSNIRefusedOpenSSL checks the alert number on the wire with openssl
// s_client, for a client that sends no SNI at all.
func TestSNIRefusedOpenSSL(t *testing.T) {
	bin, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	s := newStore(t, Options{}, sniApps(t)...)
	addr := serve(t, s)
	for _, args := range [][]string{{"-noservername"}, {"-servername", "shop.example.net"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, append([]string{"s_client", "-connect", addr}, args...)...)
			out, _ := cmd.CombinedOutput() // exits non-zero on the alert
			text := string(out)
			assert.Contains(t, text, "unrecognized name", "openssl s_client %v", args)
			assert.Contains(t, text, "alert number 112", "openssl s_client %v", args)
		})
	}
}

func TestVerifyFullChain(t *testing.T) {
	t.Parallel()
	p := pkiFor(t)
	s := newStore(t, Options{}, App{Name: "shop", Domains: []string{"shop.example.com"}, Certs: bothCerts(t, "shop", "shop.example.com")})
	addr := serve(t, s)
	for _, suites := range [][]uint16{nil, {tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}} {
		cfg := clientConfig(t, "shop.example.com") // RootCAs: the root only
		cfg.CipherSuites = suites
		if suites != nil {
			cfg.MaxVersion = tls.VersionTLS12
		}
		st, err := handshake(addr, cfg)
		require.NoError(t, err, "a client checking chain and host name must succeed (suites %v)", suiteNames(suites))
		require.Len(t, st.PeerCertificates, 2, "leaf and intermediate are served")
		assert.Equal(t, p.inter.Raw, st.PeerCertificates[1].Raw)
		require.NotEmpty(t, st.VerifiedChains)
		assert.Equal(t, p.root.Raw, st.VerifiedChains[0][2].Raw)
	}
}

func TestECDSAPreferred(t *testing.T) {
	t.Parallel()
	s := newStore(t, Options{}, App{Name: "shop", Domains: []string{"shop.example.com"}, Certs: bothCerts(t, "shop", "shop.example.com")})
	addr := serve(t, s)
	for _, tc := range []struct {
		name   string
		max    uint16
		suites []uint16
		want   string
	}{
		{"TLS 1.3", tls.VersionTLS13, nil, "shop-ecdsa"},
		{"TLS 1.2, both kinds offered", tls.VersionTLS12, nil, "shop-ecdsa"},
		{"TLS 1.2, RSA suites only", tls.VersionTLS12, []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_RSA_WITH_AES_128_GCM_SHA256}, "shop-rsa"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := clientConfig(t, "shop.example.com")
			cfg.MaxVersion, cfg.CipherSuites = tc.max, tc.suites
			st, err := handshake(addr, cfg)
			require.NoError(t, err)
			assert.Equal(t, tc.want, st.PeerCertificates[0].Subject.CommonName)
		})
	}
}

func TestAppForSNI(t *testing.T) {
	t.Parallel()
	s := newStore(t, Options{}, sniApps(t)...)
	for name, want := range map[string]string{
		"api.example.com":    "api",
		"API.EXAMPLE.COM.":   "api",
		"a.example.com":      "wild",
		"z.a.example.com":    "deep",
		"nocert.example.org": "bare",
		"example.com":        "",
		".example.com":       "",
		"":                   "",
		"api.example.com.x":  "",
	} {
		got, ok := s.AppForSNI(name)
		assert.Equal(t, want != "", ok, "AppForSNI(%q)", name)
		assert.Equal(t, want, got, "AppForSNI(%q)", name)
	}
}

func FuzzSNI(f *testing.F) {
	s := newStore(f, Options{}, sniApps(f)...)
	domains := map[string][]string{}
	for _, a := range sniApps(f) {
		for _, d := range a.Domains {
			domains[a.Name] = append(domains[a.Name], lowerASCII(d))
		}
	}
	for _, seed := range []string{"api.example.com", "API.EXAMPLE.COM.", "x.a.example.com", "", ".", "..", "*.example.com",
		".example.com", "é.example.com", "apı.example.com", "\x00", "x.A.Example.Com", "nocert.example.org", "127.0.0.1"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		app, ok := s.AppForSNI(name)
		for _, variant := range []string{lowerASCII(name), upperASCII(name), normalizeSNI(name)} {
			a2, ok2 := s.AppForSNI(variant)
			if a2 != app || ok2 != ok {
				t.Fatalf("AppForSNI(%q) = %q, %v but AppForSNI(%q) = %q, %v", name, app, ok, variant, a2, ok2)
			}
		}
		if ok && !matchesDomain(normalizeSNI(name), domains[app]) {
			t.Fatalf("AppForSNI(%q) = %q, whose domains %q do not match", name, app, domains[app])
		}
		cfg, err := s.GetConfigForClient(&tls.ClientHelloInfo{ServerName: name})
		if err != nil || cfg == nil {
			t.Fatalf("GetConfigForClient(%q) = %v, %v: want a config and no error", name, cfg, err)
		}
		if served := cfg != s.reject; served != (ok && app != "bare") {
			t.Fatalf("GetConfigForClient(%q): served %v, but AppForSNI says %q, %v", name, served, app, ok)
		}
	})
}

// upperASCII raises ASCII letters only: strings.ToUpper would map "ı" to
// "I", a different name under the ASCII-only folding SNI lookup uses.
func upperASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// matchesDomain is the SPEC.md 4.3 rule, written plainly for the fuzz
// target: an exact domain, or a wildcard with one or more labels in front.
func matchesDomain(name string, domains []string) bool {
	for _, d := range domains {
		if suffix, ok := strings.CutPrefix(d, "*"); ok {
			if len(name) > len(suffix) && strings.HasSuffix(name, suffix) {
				return true
			}
		} else if name == d {
			return true
		}
	}
	return false
}

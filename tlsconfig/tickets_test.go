package tlsconfig

import (
	"crypto/tls"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lastSession is a ClientSessionCache that keeps the last session put,
// whatever its key.
type lastSession struct {
	mu sync.Mutex // guards cs
	cs *tls.ClientSessionState
}

func (c *lastSession) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs, c.cs != nil
}

func (c *lastSession) Put(_ string, cs *tls.ClientSessionState) {
	if cs == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cs = cs
}

func (c *lastSession) session() *tls.ClientSessionState {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cs
}

// stolenTicket is a ClientSessionCache that offers one session for every
// server name, as an attacker holding a copied ticket does: crypto/tls
// clients key their cache by server name, so an honest one never offers
// app A's ticket to app B. New sessions are dropped.
type stolenTicket struct {
	cs   *tls.ClientSessionState
	gets atomic.Int32 // lookups, so a test knows the ticket was on offer
}

func (c *stolenTicket) Get(string) (*tls.ClientSessionState, bool) {
	c.gets.Add(1)
	return c.cs, true
}

func (c *stolenTicket) Put(string, *tls.ClientSessionState) {}

// ticketClient is a client for sni at version v only that does not verify
// the server: crypto/tls would otherwise not offer a ticket whose
// certificate does not cover sni (RFC 8446 section 4.6.1), and an attacker
// does not care.
func ticketClient(sni string, v uint16, cache tls.ClientSessionCache) *tls.Config {
	return &tls.Config{
		ServerName:         sni,
		InsecureSkipVerify: true,
		MinVersion:         v,
		MaxVersion:         v,
		ClientSessionCache: cache,
	}
}

// TestSessionTicketBinding: a session ticket issued for one app never
// resumes a session of another app, nor of another name of the same app,
// on one listener; it does resume for the same name, also once the Store
// has been rebuilt with the same Tickets, as on a reload (issue 9).
func TestSessionTicketBinding(t *testing.T) {
	t.Parallel()
	alphaCerts := bothCerts(t, "alpha", "a.test", "a2.test")
	bravoCerts := bothCerts(t, "bravo", "b.test")
	apps := func(alpha, bravo []string) []App {
		return []App{
			{Name: "alpha", Domains: alpha, Certs: alphaCerts},
			{Name: "bravo", Domains: bravo, Certs: bravoCerts},
		}
	}
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			t.Parallel()
			tickets := NewTickets()
			// The listener's config asks the current Store, as the
			// router's does, so a rebuilt Store serves the same listener.
			var cur atomic.Pointer[Store]
			cur.Store(newStore(t, Options{Tickets: tickets}, apps([]string{"a.test", "a2.test"}, []string{"b.test"})...))
			addr := serveConfig(t, &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
				return cur.Load().GetConfigForClient(h)
			}})

			first := &lastSession{}
			st, err := handshake(addr, ticketClient("a.test", v, first))
			require.NoError(t, err, "first handshake for a.test")
			require.False(t, st.DidResume, "first handshake for a.test resumed")
			require.Equal(t, tls.VersionName(v), tls.VersionName(st.Version))
			ticket := first.session()
			require.NotNil(t, ticket, "no session ticket from a.test at %s", tls.VersionName(v))

			// resumed offers a.test's ticket for sni and reports whether
			// the server took it.
			resumed := func(t *testing.T, sni string) bool {
				t.Helper()
				cache := &stolenTicket{cs: ticket}
				st, err := handshake(addr, ticketClient(sni, v, cache))
				require.NoError(t, err, "handshake for %s offering a.test's ticket", sni)
				require.Positive(t, cache.gets.Load(), "the client for %s did not look for a ticket", sni)
				return st.DidResume
			}

			t.Run("same app and name", func(t *testing.T) {
				assert.True(t, resumed(t, "a.test"), "a.test's ticket offered to a.test: full handshake")
			})
			t.Run("other app", func(t *testing.T) {
				assert.False(t, resumed(t, "b.test"), "a.test's ticket (app alpha) resumed a session for b.test (app bravo)")
			})
			t.Run("same app, other name", func(t *testing.T) {
				assert.False(t, resumed(t, "a2.test"), "a.test's ticket resumed a session for a2.test (RFC 6066 section 3)")
			})
			t.Run("store rebuilt", func(t *testing.T) {
				cur.Store(newStore(t, Options{Tickets: tickets}, apps([]string{"a.test", "a2.test"}, []string{"b.test"})...))
				assert.True(t, resumed(t, "a.test"), "a.test's ticket offered to a.test after the rebuild: full handshake")
				assert.False(t, resumed(t, "b.test"), "a.test's ticket resumed a session for b.test after the rebuild")
			})
			t.Run("domain moved to another app", func(t *testing.T) {
				cur.Store(newStore(t, Options{Tickets: tickets}, apps([]string{"a2.test"}, []string{"b.test", "a.test"})...))
				assert.False(t, resumed(t, "a.test"), "a.test's ticket from app alpha resumed a session of app bravo, which now has a.test")
			})
			t.Run("store rebuilt with other tickets", func(t *testing.T) {
				cur.Store(newStore(t, Options{}, apps([]string{"a.test", "a2.test"}, []string{"b.test"})...))
				assert.False(t, resumed(t, "a.test"), "a ticket sealed by other keys resumed")
			})
		})
	}
}

// TestSessionTicketBindingEntry checks the binding entry of
// SessionState.Extra on its own.
func TestSessionTicketBindingEntry(t *testing.T) {
	t.Parallel()
	gen := []byte("generation-1")
	want := binding("shop", gen, "shop.example.com")
	foreign := []byte("another-layer/v3\x00data")
	for _, tc := range []struct {
		name  string
		extra [][]byte
		bound bool
	}{
		{"none", nil, false},
		{"foreign only", [][]byte{foreign}, false},
		{"ours", [][]byte{want}, true},
		{"ours among foreign", [][]byte{foreign, want, foreign}, true},
		{"other app", [][]byte{binding("shop2", gen, "shop.example.com")}, false},
		{"other name", [][]byte{binding("shop", gen, "www.shop.example.com")}, false},
		{"other generation", [][]byte{binding("shop", []byte("generation-2"), "shop.example.com")}, false},
		{"no generation", [][]byte{binding("shop", nil, "shop.example.com")}, false},
		{"ours and another binding", [][]byte{want, binding("blog", gen, "shop.example.com")}, false},
		{"truncated", [][]byte{want[:len(want)-1]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tc.bound, boundTo(&tls.SessionState{Extra: tc.extra}, want), "Extra %q", tc.extra)
		})
	}
	t.Run("app, generation and name do not run together", func(t *testing.T) {
		t.Parallel()
		assert.NotEqual(t, binding("ab", gen, "c.test"), binding("a", gen, "bc.test"))
		assert.NotEqual(t, binding("a", []byte("g"), "c.test"), binding("a", nil, "gc.test"))
	})
}

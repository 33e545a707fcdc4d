package router

import (
	"crypto/tls"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

// stolenTicketCache offers the one session it holds for any server name:
// what a client replaying another app's ticket does.
type stolenTicketCache struct{ s *tls.ClientSessionState }

func (c *stolenTicketCache) Get(string) (*tls.ClientSessionState, bool) { return c.s, c.s != nil }
func (c *stolenTicketCache) Put(_ string, s *tls.ClientSessionState) {
	if s != nil {
		c.s = s
	}
}

// TestTLSTicketsBoundToApp is issue 9 item 3: a session ticket from one
// app's handshake resumes a session for that app and name only, never for
// another app of the space (RFC 6066 section 3), and still resumes after
// a reload.
func TestTLSTicketsBoundToApp(t *testing.T) {
	p := newTestPKI(t)
	shop, blog := okDyno(t, "shop"), okDyno(t, "blog")
	// ECDSA certificates: the modern profile has ECDSA suites for TLS 1.2.
	text := "listen: {http: \"127.0.0.1:0\", https: \"127.0.0.1:0\"}\n" +
		oneApp(p.leaf(t, "shop.test")+"\nfeatures: [spaces-tls-modern]", shop.addr()) +
		"  - name: blog\n    domains: [blog.test]\n    features: [spaces-tls-modern]\n    " + p.leaf(t, "blog.test") +
		"\n    dynos: [{name: web.1, address: \"" + blog.addr() + "\"}]\n"
	tr := startRouter(t, text)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		name := map[uint16]string{tls.VersionTLS12: "TLS 1.2", tls.VersionTLS13: "TLS 1.3"}[v]
		t.Run(name, func(t *testing.T) {
			cache := &stolenTicketCache{}
			resumed := func(sni string) bool {
				conn, err := tls.Dial("tcp", tr.HTTPSAddr().String(), &tls.Config{RootCAs: p.pool, ServerName: sni,
					MinVersion: v, MaxVersion: v, ClientSessionCache: cache, NextProtos: []string{"http/1.1"}})
				require.NoError(t, err)
				defer conn.Close()
				// TLS 1.3 tickets come after the handshake: one request.
				io.WriteString(conn, "GET / HTTP/1.1\r\nHost: "+sni+"\r\nConnection: close\r\n\r\n")
				io.Copy(io.Discard, conn)
				return conn.ConnectionState().DidResume
			}
			require.False(t, resumed("shop.test"), "the first handshake is a full one")
			assert.True(t, resumed("shop.test"), "shop's ticket resumes shop")
			assert.False(t, resumed("blog.test"), "shop's ticket must not resume a session for app blog")
			cache.s = nil
			require.False(t, resumed("shop.test"))
			cfg, err := config.Parse("test.yaml", []byte(text))
			require.NoError(t, err)
			require.NoError(t, tr.Reload(cfg))
			assert.True(t, resumed("shop.test"), "a ticket from before a reload still resumes its app")
			assert.False(t, resumed("blog.test"), "nor does a reload let it resume another app")
		})
	}
}

package router

import (
	"net"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// startDNS answers A queries for every name with 127.0.0.1 (TTL 60) over
// UDP on 127.0.0.1 and counts the questions; AAAA gets no records.
func startDNS(t testing.TB) (addr string, queries *atomic.Int64) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { pc.Close() })
	queries = new(atomic.Int64)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			var p dnsmessage.Parser
			h, err := p.Start(buf[:n])
			if err != nil {
				continue
			}
			q, err := p.Question()
			if err != nil {
				continue
			}
			queries.Add(1)
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
			b.EnableCompression()
			b.StartQuestions()
			b.Question(q)
			b.StartAnswers()
			if q.Type == dnsmessage.TypeA {
				b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
					dnsmessage.AResource{A: [4]byte{127, 0, 0, 1}})
			}
			msg, err := b.Finish()
			if err == nil {
				pc.WriteTo(msg, from)
			}
		}
	}()
	return pc.LocalAddr().String(), queries
}

// TestExtraResolver: with spaces-extra-resolver a dyno host name resolves
// through HEROKU_EXTRA_RESOLVER (SPEC.md section 3), and the answer is
// cached for its TTL.
func TestExtraResolver(t *testing.T) {
	dns, queries := startDNS(t)
	d := okDyno(t, "via dns")
	_, port, _ := net.SplitHostPort(d.addr())
	extra := "features: [spaces-extra-resolver, http-disable-keepalive-to-dyno]\nconfig_vars: {HEROKU_EXTRA_RESOLVER: \"" + dns + "\"}"
	tr := startRouter(t, oneApp(extra, "dyno1.space.internal:"+port)+
		"    # a name only the extra resolver knows\n")
	for i := 0; i < 3; i++ {
		// A fresh dyno connection each time: each dial resolves the name.
		resp, body := tr.roundTrip(t, "GET / HTTP/1.1\r\nHost: shop.test\r\nConnection: close\r\n\r\n", "GET")
		require.Equal(t, 200, resp.StatusCode, "the dyno's name resolved through the extra resolver")
		assert.Equal(t, "via dns", body)
	}
	assert.LessOrEqual(t, queries.Load(), int64(2), "one A and one AAAA question, then the cache")
	assert.GreaterOrEqual(t, queries.Load(), int64(1))
}

package admin

import (
	"fmt"
	"io"
	"net/http"
	"testing"
)

// BenchmarkPublishSSEViewers is the request path's cost of a router line
// while 10 dashboards stream the app's lines over real SSE connections
// (the issue 13 goal: the proxy's benchmark does not move), against no
// viewer.
func BenchmarkPublishSSEViewers(b *testing.B) {
	for _, viewers := range []int{0, 10} {
		b.Run(fmt.Sprintf("viewers=%d", viewers), func(b *testing.B) {
			p := startIDP(b, nil)
			e := newEnv(b, p, envOptions{})
			tok := e.idp.sign(b, e.idp.claims(e.clock.Now(), "bench", "ops"))
			for range viewers {
				req, _ := http.NewRequest("GET", e.url+"/api/lines?app=shop", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				req.Header.Set("Accept", "text/event-stream")
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("SSE viewer: %v %v", err, resp)
				}
				go func() {
					io.Copy(io.Discard, resp.Body)
				}()
				b.Cleanup(func() { resp.Body.Close() })
			}
			// The handler subscribes before it answers the header.
			if n := e.backend.hub.Viewers("shop"); n != viewers {
				b.Fatalf("%d viewers, want %d", n, viewers)
			}
			line := []byte(`at=info method=GET path="/" host=shop.example.com request_id=0123456789abcdef fwd="127.0.0.1" dyno=web.1 connect=0ms service=1ms status=200 bytes=12 protocol=http`)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					e.backend.hub.Publish("shop", line)
				}
			})
		})
	}
}

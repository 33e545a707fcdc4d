package bench

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeAdmin serves the dashboard's routes to the token "good": the page
// and assets, the data routes (counted), and a line stream that sends one
// event every 10 ms.
func fakeAdmin(t *testing.T, polls *atomic.Int64) *httptest.Server {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("Authorization") != "Bearer good" {
				http.Error(w, "no", http.StatusUnauthorized)
				return
			}
			h(w, r)
		}
	}
	page := auth(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("page")) })
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /static/", page)
	mux.HandleFunc("GET /api/tls/summary", page)
	mux.HandleFunc("GET /api/apps", auth(func(w http.ResponseWriter, r *http.Request) {
		polls.Add(1)
		w.Write([]byte("[]"))
	}))
	mux.HandleFunc("GET /api/lines", auth(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("app") != "shop" || r.Header.Get("Accept") != "text/event-stream" {
			http.Error(w, "bad stream request", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		w.Write([]byte("retry: 2000\n: live router lines\n\n"))
		w.(http.Flusher).Flush()
		for i := 0; ; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(10 * time.Millisecond):
			}
			fmt.Fprintf(w, "data: at=info line=%d\n\n", i)
			w.(http.Flusher).Flush()
		}
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestViewersReadStreamsAndPoll(t *testing.T) {
	var polls atomic.Int64
	srv := fakeAdmin(t, &polls)
	v, err := StartViewers(context.Background(), ViewersConfig{Admin: srv.URL, Token: "good", App: "shop", N: 3, Poll: 20 * time.Millisecond})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, polls.Load(), int64(3), "each viewer loads the page's data once at the start (and polls every 20 ms after)")
	require.Eventually(t, func() bool { return v.Events() >= 30 && v.Polls() >= 6 }, 5*time.Second, 5*time.Millisecond)
	assert.Greater(t, v.Bytes(), v.Events()*int64(len("data: at=info line=0\n")))
	assert.NoError(t, v.Err())
	v.Close()
	assert.NoError(t, v.Err(), "closing is no failure")
}

func TestViewersRefused(t *testing.T) {
	var polls atomic.Int64
	srv := fakeAdmin(t, &polls)
	_, err := StartViewers(context.Background(), ViewersConfig{Admin: srv.URL, Token: "bad", App: "shop", N: 1})
	require.ErrorContains(t, err, "401")
	_, err = StartViewers(context.Background(), ViewersConfig{Admin: srv.URL, Token: "good", App: "blog", N: 1})
	require.ErrorContains(t, err, "the live lines: GET /api/lines?app=blog: 400")
}

func TestViewersStreamEnds(t *testing.T) {
	var polls atomic.Int64
	srv := fakeAdmin(t, &polls)
	v, err := StartViewers(context.Background(), ViewersConfig{Admin: srv.URL, Token: "good", App: "shop", N: 2})
	require.NoError(t, err)
	defer v.Close()
	srv.CloseClientConnections()
	require.Eventually(t, func() bool { return v.Err() != nil }, 5*time.Second, 5*time.Millisecond)
	assert.ErrorContains(t, v.Err(), "the live lines ended")
}

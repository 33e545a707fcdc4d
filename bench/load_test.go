package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// delayHandler answers "ok" after d, without sleeping past a gone client.
func delayHandler(d time.Duration) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if d > 0 {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "ok")
	}
}

// newServer starts a test server speaking proto: "h1", "h1-tls", "h2-tls" or "h2c".
func newServer(t *testing.T, proto string, h http.Handler) *httptest.Server {
	t.Helper()
	s := httptest.NewUnstartedServer(h)
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // handshake failures are expected in some tests
	switch proto {
	case "h1":
		s.Start()
	case "h1-tls":
		s.StartTLS()
	case "h2-tls":
		s.EnableHTTP2 = true
		s.StartTLS()
	case "h2c":
		s.Config.Protocols = new(http.Protocols)
		s.Config.Protocols.SetHTTP1(true)
		s.Config.Protocols.SetUnencryptedHTTP2(true)
		s.Start()
	default:
		t.Fatalf("unknown protocol %q", proto)
	}
	t.Cleanup(s.Close)
	return s
}

func TestRunLatency(t *testing.T) {
	t.Parallel()
	const delay = 20 * time.Millisecond
	for _, proto := range []string{"h1", "h1-tls", "h2-tls", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			t.Parallel()
			var seenProto atomic.Value
			var inFlight, maxInFlight atomic.Int64
			s := newServer(t, proto, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				seenProto.Store(r.Proto)
				n := inFlight.Add(1)
				for m := maxInFlight.Load(); n > m && !maxInFlight.CompareAndSwap(m, n); m = maxInFlight.Load() {
				}
				defer inFlight.Add(-1)
				delayHandler(delay)(w, r)
			}))
			cfg := Config{URL: s.URL + "/x?y=1", Conns: 2, Streams: 2, Duration: 300 * time.Millisecond,
				HTTP2: strings.HasPrefix(proto, "h2"), Insecure: true}
			res, err := Run(t.Context(), cfg, nil)
			require.NoError(t, err)
			assert.Zerof(t, res.ErrorCount(), "errors: %v", res.Errors)
			require.Positive(t, res.Requests)
			assert.Equal(t, map[int]int{200: int(res.Requests)}, res.Status)
			assert.Equal(t, 2*res.Requests, res.Bytes, "every body is \"ok\"")
			p50 := res.Latency.Percentile(50)
			assert.GreaterOrEqualf(t, p50, delay, "p50 with %v injected", delay)
			// Generous: a loaded 2-core machine adds tens of ms of scheduling delay.
			assert.LessOrEqualf(t, p50, delay+100*time.Millisecond, "p50 with %v injected", delay)
			assert.InDelta(t, float64(res.Requests)/res.Elapsed.Seconds(), res.RPS, 0.001)
			wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[cfg.HTTP2]
			assert.Equal(t, wantProto, seenProto.Load(), "protocol the server saw")
			if cfg.HTTP2 {
				// 2 conns × 2 streams: the server sees more requests at once than
				// there are connections. (Counting requests per second instead
				// flakes on a loaded machine.)
				assert.Greater(t, maxInFlight.Load(), int64(2), "streams must run concurrently")
			}
		})
	}
}

func TestRunRate(t *testing.T) {
	t.Parallel()
	s := newServer(t, "h1", delayHandler(0))
	res, err := Run(t.Context(), Config{URL: s.URL, Conns: 4, Rate: 200, Duration: time.Second}, nil)
	require.NoError(t, err)
	assert.InDeltaf(t, 200, res.Requests, 20, "rate 200 for 1s, got %d requests", res.Requests)
	assert.Zero(t, res.ErrorCount())
}

// TestRunCoordinatedOmission stalls the server once for 300 ms. A fixed-rate
// run must charge the stall to every request that was due during it; a
// closed loop only sees one slow request.
func TestRunCoordinatedOmission(t *testing.T) {
	t.Parallel()
	const stall = 300 * time.Millisecond
	stallingServer := func() *httptest.Server {
		var n atomic.Int64
		return newServer(t, "h1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if n.Add(1) == 10 {
				delayHandler(stall)(w, r)
				return
			}
			io.WriteString(w, "ok")
		}))
	}
	open, err := Run(t.Context(), Config{URL: stallingServer().URL, Rate: 200, Duration: time.Second}, nil)
	require.NoError(t, err)
	// About 60 of 200 requests were due during the stall: p90 sees it.
	assert.GreaterOrEqual(t, open.Latency.Percentile(99), stall*8/10, "open-loop p99 must show the stall")
	assert.GreaterOrEqual(t, open.Latency.Percentile(90), stall/10, "open-loop p90 must show the queue behind the stall")
	assert.GreaterOrEqual(t, open.Latency.Max(), stall)

	closed, err := Run(t.Context(), Config{URL: stallingServer().URL, Requests: 500}, nil)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, closed.Latency.Max(), stall)
	assert.Less(t, closed.Latency.Percentile(99), stall/2, "closed loop hides the stall below p99")
}

func TestRunRequests(t *testing.T) {
	t.Parallel()
	var n atomic.Int64
	s := newServer(t, "h1", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	res, err := Run(t.Context(), Config{URL: s.URL, Conns: 3, Requests: 50}, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 50, res.Requests)
	assert.EqualValues(t, 50, n.Load(), "requests the server saw")
	assert.Equal(t, map[int]int{http.StatusTeapot: 50}, res.Status)
	t.Run("open loop", func(t *testing.T) {
		res, err := Run(t.Context(), Config{URL: s.URL, Rate: 1000, Requests: 20}, nil)
		require.NoError(t, err)
		assert.EqualValues(t, 20, res.Requests)
	})
}

func TestRunRequestShape(t *testing.T) {
	t.Parallel()
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			t.Parallel()
			type seen struct{ method, host, hdr, ua, body string }
			got := make(chan seen, 100)
			s := newServer(t, map[bool]string{false: "h1-tls", true: "h2-tls"}[h2],
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					got <- seen{r.Method, r.Host, r.Header.Get("X-Test"), r.UserAgent(), string(b)}
				}))
			hdr := http.Header{"X-Test": {"yes"}, "Host": {"app.example"}}
			res, err := Run(t.Context(), Config{URL: s.URL, Method: "POST", Headers: hdr, Body: []byte("hello"),
				Requests: 3, HTTP2: h2, Insecure: true, SNI: "sni.example"}, nil)
			require.NoError(t, err)
			require.EqualValues(t, 3, res.Requests, "errors: %v", res.Errors)
			assert.Equal(t, seen{"POST", "app.example", "yes", "spacebench", "hello"}, <-got)
		})
	}
	t.Run("verified TLS fails without -insecure", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, "h1-tls", delayHandler(0))
		res, err := Run(t.Context(), Config{URL: s.URL, Requests: 2}, nil)
		require.NoError(t, err)
		assert.Equal(t, 2, res.Errors[KindTLS], "errors: %v", res.Errors)
	})
}

func TestRunResponses(t *testing.T) {
	t.Parallel()
	mux := http.NewServeMux()
	mux.HandleFunc("/chunked", func(w http.ResponseWriter, r *http.Request) {
		for range 3 {
			io.WriteString(w, "abcd")
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/close", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		io.WriteString(w, "bye")
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		c, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			c.Close()
		}
	})
	s := newServer(t, "h1", mux)
	for _, tc := range []struct {
		path      string
		wantBytes int64
		wantErr   string
	}{
		{"/chunked", 12, ""},
		{"/close", 3, ""},
		{"/reset", 0, KindReset},
	} {
		t.Run(tc.path, func(t *testing.T) {
			t.Parallel()
			res, err := Run(t.Context(), Config{URL: s.URL + tc.path, Requests: 5}, nil)
			require.NoError(t, err)
			if tc.wantErr != "" {
				assert.Equal(t, 5, res.Errors[tc.wantErr], "errors: %v", res.Errors)
				return
			}
			assert.EqualValues(t, 5, res.Requests, "errors: %v", res.Errors)
			assert.Equal(t, 5*tc.wantBytes, res.Bytes)
		})
	}
}

func TestRunErrors(t *testing.T) {
	t.Parallel()
	// A refused connection is counted, over HTTP/2 too (its check before
	// the run leaves unreachable targets to the run).
	for _, h2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "connect", true: "h2 connect errors are counted"}[h2], func(t *testing.T) {
			t.Parallel()
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			addr := ln.Addr().String()
			ln.Close()
			res, err := Run(t.Context(), Config{URL: "http://" + addr, HTTP2: h2, Requests: 3}, nil)
			require.NoError(t, err)
			assert.Equal(t, 3, res.Errors[KindConnect], "errors: %v", res.Errors)
			assert.Zero(t, res.Requests)
		})
	}
	// -h2 against a server that answers but only in HTTP/1.1 stops the run
	// with the reason, instead of one error per request.
	for _, proto := range []string{"h1", "h1-tls"} {
		t.Run("h2 against "+proto, func(t *testing.T) {
			t.Parallel()
			s := newServer(t, proto, delayHandler(0))
			res, err := Run(t.Context(), Config{URL: s.URL, HTTP2: true, Insecure: true, Duration: time.Minute}, nil)
			require.ErrorIs(t, err, errNotH2)
			assert.Nil(t, res)
			if proto == "h1" {
				assert.Contains(t, err.Error(), "h2c")
			} else {
				assert.Contains(t, err.Error(), "leave out -h2")
			}
		})
	}
	t.Run("timeout", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, "h1", delayHandler(time.Second))
		res, err := Run(t.Context(), Config{URL: s.URL, Requests: 2, Timeout: 50 * time.Millisecond}, nil)
		require.NoError(t, err)
		assert.Equal(t, 2, res.Errors[KindTimeout], "errors: %v", res.Errors)
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, "h1", delayHandler(0))
		ctx, cancel := context.WithCancel(t.Context())
		res, err := Run(ctx, Config{URL: s.URL, Duration: time.Minute}, func(Snapshot) { cancel() })
		require.ErrorIs(t, err, context.Canceled)
		require.NotNil(t, res, "a canceled run still returns what it measured")
		assert.Positive(t, res.Requests)
		assert.Zero(t, res.ErrorCount(), "requests cut off by the cancel are not errors")
	})
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"ok", Config{URL: "http://x", Requests: 1}, ""},
		{"scheme", Config{URL: "ftp://x", Requests: 1}, "url:"},
		{"no host", Config{URL: "http:///p", Requests: 1}, "url:"},
		{"no limit", Config{URL: "http://x"}, "duration:"},
		{"conns", Config{URL: "http://x", Requests: 1, Conns: -1}, "conns:"},
		{"rate", Config{URL: "http://x", Requests: 1, Rate: -1}, "rate:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.withDefaults().Validate()
			if tc.want == "" {
				assert.NoError(t, err)
				return
			}
			// The message names the field: the one place we look at error text.
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}

func TestResultJSON(t *testing.T) {
	t.Parallel()
	s := newServer(t, "h1", delayHandler(2*time.Millisecond))
	res, err := Run(t.Context(), Config{URL: s.URL, Conns: 2, Requests: 40}, nil)
	require.NoError(t, err)
	b, err := res.JSON()
	require.NoError(t, err)

	var keys map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &keys))
	for _, k := range []string{"url", "protocol", "mode", "conns", "streams", "rate", "requests",
		"elapsed_s", "rps", "bytes", "latency_ms", "status", "errors", "error_count",
		"sent", "status_errors", "all_failed", "end_timeouts", "first_errors", "due", "unsent", "achieved_rate"} {
		assert.Containsf(t, keys, k, "JSON %s", b)
	}
	var got struct {
		Requests int64 `json:"requests"`
		Mode     string
		RPS      float64
		Bytes    int64
		Latency  map[string]float64 `json:"latency_ms"`
		Status   map[string]int
		Errors   map[string]int
	}
	require.NoError(t, json.Unmarshal(b, &got))
	assert.EqualValues(t, 40, got.Requests)
	assert.Equal(t, "closed", got.Mode)
	assert.Positive(t, got.RPS)
	assert.EqualValues(t, 80, got.Bytes)
	assert.Equal(t, map[string]int{"200": 40}, got.Status)
	assert.Len(t, got.Errors, len(Kinds), "every error kind is present")
	for _, k := range []string{"min", "mean", "p50", "p90", "p99", "p999", "max"} {
		assert.GreaterOrEqualf(t, got.Latency[k], 2.0, "latency_ms.%s with 2 ms injected", k)
	}
	assert.LessOrEqual(t, got.Latency["p50"], got.Latency["p99"])
	assert.LessOrEqual(t, got.Latency["p999"], got.Latency["max"])
}

func TestReadResponse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, in   string
		head       bool
		wantStatus int
		wantN      int64
		wantKeep   bool
		wantKind   string
	}{
		{"length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", false, 200, 5, true, ""},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx", false, 200, 1, false, ""},
		{"chunked trailers", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\nA\r\n0123456789\r\n0\r\nT: v\r\n\r\n", false, 200, 13, true, ""},
		{"to eof", "HTTP/1.1 200 OK\r\n\r\nabcdef", false, 200, 6, false, ""},
		{"http/1.0", "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false, 200, 0, false, ""},
		{"http/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", false, 200, 0, true, ""},
		{"interim", "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n", false, 204, 0, true, ""},
		{"head", "HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", true, 200, 0, true, ""},
		{"bad status", "HTTP/1.1 2x0 OK\r\n\r\n", false, 0, 0, false, KindProtocol},
		{"bad length", "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", false, 0, 0, false, KindProtocol},
		{"bad chunk", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", false, 200, 0, false, KindProtocol},
		{"short body", "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", false, 200, 3, true, KindReset},
		{"empty", "", false, 0, 0, false, KindReset},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, n, keep, err := readResponse(bufio.NewReader(strings.NewReader(tc.in)), tc.head)
			if tc.wantKind != "" {
				require.Errorf(t, err, "response %q", tc.in)
				assert.Equal(t, tc.wantKind, classify(err, KindRead), "kind of %v", err)
				return
			}
			require.NoErrorf(t, err, "response %q", tc.in)
			assert.Equal(t, tc.wantStatus, status)
			assert.Equal(t, tc.wantN, n)
			assert.Equal(t, tc.wantKeep, keep)
		})
	}
}

// stallServer accepts connections and never answers; it returns the URL.
func stallServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var mu sync.Mutex // guards conns
	var conns []net.Conn
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return "http://" + ln.Addr().String() + "/"
}

// TestRunInFlightAtEnd checks the end of a run with a Duration: requests in
// flight then are waited for up to Timeout, counted when they complete and
// counted as timeouts when they do not (issue 9: a stalled server reported
// no requests and no errors).
func TestRunInFlightAtEnd(t *testing.T) {
	t.Parallel()
	t.Run("stalled server", func(t *testing.T) {
		t.Parallel()
		for _, rate := range []float64{0, 1000} {
			res, err := Run(t.Context(), Config{URL: stallServer(t), Conns: 2, Rate: rate,
				Duration: 200 * time.Millisecond, Timeout: 300 * time.Millisecond}, nil)
			require.NoError(t, err)
			assert.Zerof(t, res.Requests, "rate %v", rate)
			assert.Equalf(t, 2, res.Errors[KindTimeout], "rate %v: one request per connection, then it hangs; errors %v", rate, res.Errors)
			assert.Equalf(t, 2, res.EndTimeouts, "rate %v", rate)
			assert.EqualValues(t, 2, res.Sent)
			assert.GreaterOrEqual(t, res.Elapsed, 300*time.Millisecond, "the run waits for the requests in flight")
			assert.True(t, res.AllFailed())
			var ne net.Error
			require.ErrorAs(t, res.FirstErrors[KindTimeout], &ne)
			assert.True(t, ne.Timeout(), "first timeout error: %v", ne)
		}
	})
	t.Run("slow responses complete", func(t *testing.T) {
		t.Parallel()
		// Each connection's first response comes 50 ms after the run's
		// duration; with 5 s of timeout it is still counted.
		s := newServer(t, "h1", delayHandler(150*time.Millisecond))
		for _, rate := range []float64{0, 20} {
			res, err := Run(t.Context(), Config{URL: s.URL, Conns: 2, Rate: rate,
				Duration: 100 * time.Millisecond, Timeout: 5 * time.Second}, nil)
			require.NoError(t, err)
			assert.EqualValuesf(t, 2, res.Requests, "rate %v: errors %v", rate, res.Errors)
			assert.Zerof(t, res.ErrorCount(), "rate %v: errors %v", rate, res.Errors)
			assert.Zero(t, res.EndTimeouts)
			assert.GreaterOrEqual(t, res.Elapsed, 150*time.Millisecond)
			assert.InDelta(t, float64(res.Requests)/res.Elapsed.Seconds(), res.RPS, 0.001)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		// A cancel is not the end of the duration: what it cuts off is
		// counted nowhere.
		ctx, cancel := context.WithCancel(t.Context())
		res, err := Run(ctx, Config{URL: stallServer(t), Conns: 2, Duration: time.Minute}, func(Snapshot) { cancel() })
		require.ErrorIs(t, err, context.Canceled)
		assert.Zero(t, res.ErrorCount(), "errors: %v", res.Errors)
	})
}

// TestRunRateNotReached: one connection held by a stalled server cannot
// send 100 requests per second; the requests due meanwhile are reported as
// never sent, and the rate achieved as what it was.
func TestRunRateNotReached(t *testing.T) {
	t.Parallel()
	res, err := Run(t.Context(), Config{URL: stallServer(t), Conns: 1, Rate: 100,
		Duration: 200 * time.Millisecond, Timeout: 300 * time.Millisecond}, nil)
	require.NoError(t, err)
	assert.EqualValues(t, 20, res.Due, "due at 0, 10, ..., 190 ms")
	assert.EqualValues(t, 1, res.Sent, "the one connection hangs on its first request past the end")
	assert.EqualValues(t, 19, res.Unsent)
	assert.Equal(t, 200*time.Millisecond, res.Sending)
	assert.InDelta(t, 5, res.AchievedRate, 1e-9, "1 request in 200 ms")

	t.Run("reached", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, "h1", delayHandler(0))
		res, err := Run(t.Context(), Config{URL: s.URL, Conns: 4, Rate: 200, Duration: 200 * time.Millisecond}, nil)
		require.NoError(t, err)
		assert.EqualValues(t, 40, res.Due)
		assert.Zero(t, res.Unsent)
		assert.EqualValues(t, 40, res.Sent)
		assert.InDelta(t, 200, res.AchievedRate, 20)
	})
}

func TestDueCount(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cfg  Config
		want int64
	}{
		{Config{Rate: 100, Duration: 200 * time.Millisecond}, 20},
		{Config{Rate: 100, Duration: 205 * time.Millisecond}, 21},
		{Config{Rate: 10, Duration: 300 * time.Millisecond}, 3},
		{Config{Rate: 3, Duration: time.Second}, 3},
		{Config{Rate: 1e6, Duration: 10 * time.Second}, 10_000_000},
		{Config{Rate: 0.5, Duration: time.Second}, 1},
		{Config{Rate: 100, Duration: time.Second, Requests: 7}, 7},
		{Config{Rate: 100, Requests: 7}, 7},
	} {
		assert.Equalf(t, tc.want, dueCount(tc.cfg), "rate %v, duration %v, requests %d", tc.cfg.Rate, tc.cfg.Duration, tc.cfg.Requests)
	}
}

// TestRunErrorReasons: the first error of each kind keeps its cause, so
// spacebench can say why (issue 9: "tls: 12" without the x509 reason).
func TestRunErrorReasons(t *testing.T) {
	t.Parallel()
	t.Run("tls", func(t *testing.T) {
		t.Parallel()
		s := newServer(t, "h1-tls", delayHandler(0))
		res, err := Run(t.Context(), Config{URL: s.URL, Requests: 2}, nil)
		require.NoError(t, err)
		require.Equal(t, 2, res.Errors[KindTLS], "errors: %v", res.Errors)
		var cerr *tls.CertificateVerificationError
		require.ErrorAsf(t, res.FirstErrors[KindTLS], &cerr, "first tls error %v", res.FirstErrors[KindTLS])
		var uerr x509.UnknownAuthorityError
		assert.ErrorAs(t, cerr, &uerr, "httptest's certificate is self-signed")
		assert.True(t, res.AllFailed())
	})
	t.Run("connect", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		ln.Close()
		res, err := Run(t.Context(), Config{URL: "http://" + addr, Requests: 1}, nil)
		require.NoError(t, err)
		assert.ErrorIs(t, res.FirstErrors[KindConnect], syscall.ECONNREFUSED)
		assert.Len(t, res.FirstErrors, 1, "only kinds that occurred: %v", res.FirstErrors)
	})
}

func TestResultStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		status     map[int]int
		errors     int
		wantBad    int
		wantFailed bool
	}{
		{"all ok", map[int]int{200: 3, 304: 1}, 0, 0, false},
		{"all 421", map[int]int{421: 5}, 0, 5, true},
		{"some 5xx", map[int]int{200: 1, 503: 4}, 0, 4, false},
		{"1xx and 4xx", map[int]int{101: 1, 404: 1}, 0, 2, true},
		{"transport errors only", nil, 3, 0, true},
		{"ok with errors", map[int]int{204: 1}, 3, 0, false},
		{"nothing", nil, 0, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &Result{Status: tc.status, Errors: map[string]int{KindReset: tc.errors}}
			for _, n := range tc.status {
				r.Requests += int64(n)
			}
			assert.Equal(t, tc.wantBad, r.StatusErrors())
			assert.Equal(t, tc.wantFailed, r.AllFailed())
		})
	}
}

// TestRunLocalAddress: -local makes connections from that source address,
// so a router that counts per client sees another client.
func TestRunLocalAddress(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	from := map[string]int{}
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		mu.Lock()
		from[host]++
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	t.Cleanup(s.Close)
	res, err := Run(t.Context(), Config{URL: s.URL, Conns: 2, Requests: 10, Local: "127.0.0.2"}, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(10), res.Requests)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, map[string]int{"127.0.0.2": 10}, from, "requests by source address")
	_, err = Run(t.Context(), Config{URL: s.URL, Requests: 1, Local: "not-an-ip"}, nil)
	assert.ErrorContains(t, err, `-local "not-an-ip": not an IP address`)
}

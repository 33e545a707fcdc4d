package demo

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
)

func TestConfig(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		httpAddr string
		dynos    []string
	}{
		{"ipv4", "127.0.0.1:8080", []string{"127.0.0.1:5001", "127.0.0.1:5002"}},
		{"port zero", "127.0.0.1:0", []string{"127.0.0.1:40001", "127.0.0.1:40002"}},
		{"ipv6", "[::1]:8080", []string{"[::1]:5001", "[::1]:5002"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := Config(Listeners{HTTP: tc.httpAddr}, tc.dynos)
			cfg, err := config.Parse("demo.yaml", data)
			require.NoError(t, err, "config.Parse of the demo YAML:\n%s", data)
			assert.Empty(t, cfg.Warnings(), "warnings for the demo YAML:\n%s", data)

			assert.Equal(t, Space, cfg.Space)
			assert.Equal(t, tc.httpAddr, cfg.Listen.HTTP)
			assert.Empty(t, cfg.Listen.HTTPS)
			assert.Equal(t, "stdout", cfg.Log.Router)
			require.Len(t, cfg.Apps, 1)
			app := cfg.Apps[0]
			assert.Equal(t, App, app.Name)
			assert.Equal(t, []string{"localhost", "demo.localhost"}, app.Domains)
			assert.Equal(t, []string{config.FeatureTLSSalesforce}, app.Features, "features omitted: the default of a new app")
			require.Len(t, app.Dynos, len(tc.dynos))
			for i, d := range app.Dynos {
				assert.Equal(t, DynoName(i), d.Name)
				assert.Equal(t, tc.dynos[i], d.Address)
				assert.Equal(t, config.StateUp, d.State)
			}
		})
	}
}

// TestConfigHTTPS: with the self-signed certificates the demo space also
// serves HTTPS, and both certificates cover both demo domains.
func TestConfigHTTPS(t *testing.T) {
	t.Parallel()
	certs := demoCerts(t)
	data := Config(Listeners{HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", Certs: certs}, []string{"127.0.0.1:5001"})
	cfg, err := config.Parse("demo.yaml", data)
	require.NoError(t, err, "config.Parse of the demo YAML:\n%s", data)
	assert.Empty(t, cfg.Warnings(), "certificates that cover the demo domains, valid now:\n%s", data)
	assert.Equal(t, "127.0.0.1:0", cfg.Listen.HTTPS)
	require.Len(t, cfg.Apps[0].TLS, len(certs), "certificates in the demo YAML:\n%s", data)
	for i, c := range certs {
		assert.Equal(t, c.Cert, cfg.Apps[0].TLS[i].Cert)
		assert.Equal(t, c.Key, cfg.Apps[0].TLS[i].Key)
	}
}

// TestConfigHTTPSDeprecated: Cert and Key still name a chain, after Certs.
func TestConfigHTTPSDeprecated(t *testing.T) {
	t.Parallel()
	cert, key, err := SelfSigned(t.TempDir())
	require.NoError(t, err)
	data := Config(Listeners{HTTP: "127.0.0.1:0", HTTPS: "127.0.0.1:0", Cert: cert, Key: key}, []string{"127.0.0.1:5001"})
	cfg, err := config.Parse("demo.yaml", data)
	require.NoError(t, err, "config.Parse of the demo YAML:\n%s", data)
	require.Len(t, cfg.Apps[0].TLS, 1)
	assert.Equal(t, cert, cfg.Apps[0].TLS[0].Cert)
}

// startDynos starts the demo dynos for one test and stops them after it.
func startDynos(t *testing.T) []string {
	t.Helper()
	addrs, stop, err := StartDynos(t.Context())
	require.NoError(t, err)
	t.Cleanup(stop)
	require.Len(t, addrs, 2)
	return addrs
}

// get sends GET url with the header fields hdr (name, value, …) and
// returns the response with its body read.
func get(t *testing.T, url string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err, "GET %s", url)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err, "reading the body of GET %s", url)
	return resp, string(body)
}

func TestDynos(t *testing.T) {
	t.Parallel()
	addrs := startDynos(t)

	t.Run("root says which dyno answered", func(t *testing.T) {
		for i, addr := range addrs {
			resp, body := get(t, "http://"+addr+"/", "X-Request-Id", "0123456789abcdefghij-req")
			require.Equal(t, http.StatusOK, resp.StatusCode, "GET / on %s: %s", DynoName(i), body)
			assert.Equal(t, DynoName(i), resp.Header.Get("X-Dyno"))
			assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
			assert.Contains(t, body, "Hello from "+DynoName(i)+"!")
			assert.Contains(t, body, "0123456789abcdefghij-req")
		}
	})

	t.Run("root in HTML for a browser", func(t *testing.T) {
		resp, body := get(t, "http://"+addrs[1]+"/", "Accept", "text/html,application/xhtml+xml,*/*;q=0.8",
			"X-Request-Id", "<script>")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
		assert.Contains(t, body, "<h1>Hello from web.2!</h1>")
		assert.Contains(t, body, "&lt;script&gt;", "the request id is escaped")
		assert.NotContains(t, body, "<script>")
	})

	t.Run("headers echoes the request", func(t *testing.T) {
		resp, body := get(t, "http://"+addrs[0]+"/headers?x=1",
			"X-Request-Id", "9d1c3f0e-1111-4222-8333-444455556666",
			"X-Forwarded-For", "203.0.113.7",
			"Via", "1.1 spacerouter")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		for _, want := range []string{
			"web.1 received this request from 127.0.0.1:",
			"\nGET /headers?x=1 HTTP/1.1\n",
			"\nHost: " + addrs[0] + "\n",
			"\nVia: 1.1 spacerouter\n",
			"\nX-Forwarded-For: 203.0.113.7\n",
			"\nX-Request-Id: 9d1c3f0e-1111-4222-8333-444455556666\n",
		} {
			assert.Contains(t, body, want)
		}
		assert.Less(t, strings.Index(body, "\nVia:"), strings.Index(body, "\nX-Forwarded-For:"), "fields sorted by name")
	})

	t.Run("slow", func(t *testing.T) {
		resp, body := get(t, "http://"+addrs[0]+"/slow?ms=20")
		require.Equal(t, http.StatusOK, resp.StatusCode, body)
		assert.Equal(t, "web.1 waited 20 ms before answering.\n", body)

		resp, body = get(t, "http://"+addrs[0]+"/slow?ms=soon")
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	})

	t.Run("unknown page", func(t *testing.T) {
		resp, body := get(t, "http://"+addrs[1]+"/nope")
		assert.Equal(t, http.StatusNotFound, resp.StatusCode, body)
		assert.Contains(t, body, "web.2 has no page /nope")
	})
}

func TestDynoStream(t *testing.T) {
	if testing.Short() {
		t.Skip("streams for a second")
	}
	t.Parallel()
	addrs := startDynos(t)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addrs[0]+"/stream", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "text/event-stream", resp.Header.Get("Content-Type"))

	// One event is an id line, a data line and a blank line; note when
	// each data line arrives.
	var data []string
	var arrived []time.Time
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if line, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			data = append(data, line)
			arrived = append(arrived, time.Now())
		}
	}
	require.NoError(t, sc.Err())
	require.Len(t, data, streamEvents, "events: %q", data)
	for i, d := range data {
		assert.True(t, strings.HasPrefix(d, "event "+strconv.Itoa(i+1)+" of 5 from web.1 at "), "event %d: %q", i+1, d)
	}
	// Flushed one by one, not held to the end: the events are spread over
	// about 4 × streamGap.
	spread := arrived[len(arrived)-1].Sub(arrived[0])
	assert.Greater(t, spread, 2*streamGap, "events arrived within %v of each other", spread)
}

func TestSlowHonoursContext(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequestWithContext(ctx, http.MethodGet, "/slow?ms=10000", nil)
	rec := httptest.NewRecorder()

	done := make(chan struct{})
	go func() {
		defer close(done)
		(&dyno{name: "web.1"}).handler().ServeHTTP(rec, req)
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("/slow?ms=10000 with a cancelled request context still running after 2s")
	}
	assert.Empty(t, rec.Body.String(), "nothing is answered to a client that went")
}

func TestSlowDuration(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		ms      string
		want    time.Duration
		wantErr bool
	}{
		{"empty is the default", "", time.Second, false},
		{"zero", "0", 0, false},
		{"some", "250", 250 * time.Millisecond, false},
		{"the bound", "10000", 10 * time.Second, false},
		{"over the bound", "10001", 10 * time.Second, false},
		{"over uint64", "99999999999999999999999", 10 * time.Second, false},
		{"negative", "-1", 0, true},
		{"fraction", "1.5", 0, true},
		{"word", "soon", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := slowDuration(tc.ms)
			if tc.wantErr {
				require.ErrorIs(t, err, errSlowMS, "ms=%q", tc.ms)
				return
			}
			require.NoError(t, err, "ms=%q", tc.ms)
			assert.Equal(t, tc.want, got, "ms=%q", tc.ms)
		})
	}
}

func TestStopDynos(t *testing.T) {
	t.Parallel()

	t.Run("stop", func(t *testing.T) {
		t.Parallel()
		addrs, stop, err := StartDynos(t.Context())
		require.NoError(t, err)
		stop()
		stop() // a second stop is harmless
		for _, addr := range addrs {
			_, err := net.Dial("tcp", addr)
			assert.Error(t, err, "dialing %s after stop", addr)
		}
	})

	t.Run("context done", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		addrs, stop, err := StartDynos(ctx)
		require.NoError(t, err)
		defer stop()
		cancel()
		require.Eventually(t, func() bool {
			c, err := net.Dial("tcp", addrs[0])
			if err == nil {
				c.Close()
			}
			return err != nil
		}, 2*time.Second, 10*time.Millisecond, "dyno %s still accepting after its context was cancelled", addrs[0])
	})
}

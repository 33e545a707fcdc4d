package h2

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTransportEcho(t *testing.T) {
	for _, mode := range []string{"h2c", "tls"} {
		t.Run(mode, func(t *testing.T) {
			var opts []serverOpt
			if mode == "tls" {
				opts = append(opts, withTLS)
			}
			srv := startServer(t, &Config{}, handlerFunc(echo), opts...)
			tr := srv.transport()
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			resp, body := get(t, c, "GET", srv.url("/hello?x=1"), nil)
			require.Equal(t, 2, resp.ProtoMajor)
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, "GET /hello?x=1\n", string(body))
			require.Equal(t, "text/plain", resp.Header.Get("Content-Type"))

			big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16+7) // 1 MiB + 112
			resp, body = get(t, c, "POST", srv.url("/upload"), big)
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, "POST /upload\n"+string(big), string(body))
		})
	}
}

// TestTransportConcurrent: many requests at once on one connection, more
// than SETTINGS_MAX_CONCURRENT_STREAMS, bodies of assorted sizes.
func TestTransportConcurrent(t *testing.T) {
	srv := startServer(t, &Config{MaxStreams: 8, StreamWindow: 32 << 10}, handlerFunc(echo), withTLS)
	tr := srv.transport()
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				body := bytes.Repeat([]byte{byte('a' + g%26)}, (g*7919+i*104729)%100000)
				path := fmt.Sprintf("/g%d/%d", g, i)
				req, _ := http.NewRequest("PUT", srv.url(path), bytes.NewReader(body))
				resp, err := c.Do(req)
				if err != nil {
					errs <- fmt.Errorf("%s: %w", path, err)
					return
				}
				got, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				want := "PUT " + path + "\n" + string(body)
				if err != nil || resp.StatusCode != 200 || string(got) != want {
					errs <- fmt.Errorf("%s: status %d, %d bytes (%v), want %d", path, resp.StatusCode, len(got), err, len(want))
					return
				}
			}
		}()
	}
	start := time.Now()
	wg.Wait()
	t.Logf("160 exchanges in %v", time.Since(start))
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

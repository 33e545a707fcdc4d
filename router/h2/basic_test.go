package h2

import (
	"bytes"
	"net/http"
	"testing"

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

package bench

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDyno(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cfg  DynoConfig
	}{
		{"length", DynoConfig{BodySize: 100}},
		{"chunked", DynoConfig{BodySize: 1001, Chunked: true}},
		{"empty chunked", DynoConfig{Chunked: true}},
		{"empty", DynoConfig{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := StartDyno(tc.cfg)
			require.NoError(t, err)
			defer d.Close()
			c, err := net.Dial("tcp", d.Addr())
			require.NoError(t, err)
			defer c.Close()
			br := bufio.NewReader(c)
			// Keep-alive: three requests on one connection, one with a
			// chunked body, the last asking to close.
			reqs := []string{
				"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
				"POST /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
				"PUT /q HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello",
			}
			for i, req := range reqs {
				_, err := io.WriteString(c, req)
				require.NoError(t, err)
				resp, err := http.ReadResponse(br, nil)
				require.NoErrorf(t, err, "request %d: %q", i, req)
				body, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				assert.Equal(t, 200, resp.StatusCode)
				assert.Equal(t, strings.Repeat("x", tc.cfg.BodySize), string(body))
				assert.Equal(t, tc.cfg.Chunked, len(resp.TransferEncoding) > 0, "chunked")
			}
			_, err = br.ReadByte()
			assert.ErrorIs(t, err, io.EOF, "connection closed after Connection: close")
		})
	}
}

func TestDynoLatency(t *testing.T) {
	t.Parallel()
	const lat = 20 * time.Millisecond
	ds, err := StartDynos(2, DynoConfig{BodySize: 64, Latency: lat, Chunked: true})
	require.NoError(t, err)
	defer ds.Close()
	require.Len(t, ds.Addrs(), 2)
	res, err := Run(t.Context(), Config{URL: "http://" + ds[1].Addr() + "/", Conns: 2, Requests: 20}, nil)
	require.NoError(t, err)
	assert.Zerof(t, res.ErrorCount(), "errors: %v", res.Errors)
	assert.EqualValues(t, 20, res.Requests)
	assert.EqualValues(t, 20*64, res.Bytes)
	assert.GreaterOrEqual(t, res.Latency.Min(), lat)
}

func TestDynoClose(t *testing.T) {
	t.Parallel()
	d, err := StartDyno(DynoConfig{Latency: time.Hour})
	require.NoError(t, err)
	c, err := net.Dial("tcp", d.Addr())
	require.NoError(t, err)
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	done := make(chan error, 1)
	go func() { done <- d.Close() }()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not stop a dyno waiting out its latency")
	}
	assert.NoError(t, d.Close(), "second Close")
	_, err = StartDyno(DynoConfig{BodySize: -1})
	assert.Error(t, err)
	_, err = StartDynos(0, DynoConfig{})
	assert.Error(t, err)
}

func TestOverhead(t *testing.T) {
	t.Parallel()
	res := func(rps float64, lat time.Duration) *Result {
		h := NewHist()
		h.Record(lat)
		return &Result{RPS: rps, Requests: 1, Elapsed: time.Second, Latency: h, Errors: map[string]int{}, Status: map[int]int{}}
	}
	c := &Comparison{Median: 0.8, Rounds: []Round{
		{AFirst: true, A: res(100, 10*time.Millisecond), B: res(80, 12*time.Millisecond), Ratio: 0.8},
	}}
	o := NewOverhead(c)
	assert.Equal(t, 0.8, o.ThroughputRatio)
	assert.Equal(t, 2*time.Millisecond, o.AddedP50)
	assert.Equal(t, 2*time.Millisecond, o.AddedP99)
	s := c.SpaceSummary()
	assert.Equal(t, 2.0, s.AddedP99MS)
	assert.EqualValues(t, 1, s.Router.Requests)
	assert.Zero(t, NewOverhead(&Comparison{}).AddedP50)

	y := string(SpaceConfigYAML("127.0.0.1:0", []string{"127.0.0.1:1", "127.0.0.1:2"}, "/dev/null"))
	for _, want := range []string{"http: \"127.0.0.1:0\"", "domains: [localhost]", "web.2, address: \"127.0.0.1:2\"", "router: \"/dev/null\""} {
		assert.Containsf(t, y, want, "config:\n%s", y)
	}
}

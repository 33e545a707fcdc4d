package h1

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// browserGET is a typical browser request head, about 400 bytes.
var browserGET = []byte("GET /assets/app.js?v=3 HTTP/1.1\r\n" +
	"Host: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: */*\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br\r\n" +
	"Referer: https://www.example.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=8f2a9c1e4b7d; theme=dark\r\n" +
	"Sec-Fetch-Dest: script\r\n" +
	"Sec-Fetch-Mode: no-cors\r\n" +
	"\r\n")

// smallResponse is a typical small dyno response head and body.
var smallResponse = []byte("HTTP/1.1 200 OK\r\n" +
	"Content-Type: application/json; charset=utf-8\r\n" +
	"Content-Length: 17\r\n" +
	"Date: Mon, 02 Jun 2025 10:00:00 GMT\r\n" +
	"Cache-Control: no-store\r\n" +
	"\r\n" +
	`{"status":"ok"}` + "\r\n")

// routerLimits are the router's default-sized limits.
func routerLimits() Limits {
	return Limits{
		StartLine:   8192,
		Method:      32,
		FieldName:   256,
		Field:       8192,
		Cookie:      8192,
		HeadersSize: 65536,
		FieldCount:  100,
	}
}

func BenchmarkReadRequest(b *testing.B) {
	lim := routerLimits()
	src := bytes.NewReader(browserGET)
	br := NewReader(src, DefaultReaderSize)
	var r Request
	b.ReportAllocs()
	b.SetBytes(int64(len(browserGET)))
	for b.Loop() {
		src.Reset(browserGET)
		br.Reset(src)
		if err := br.ReadRequest(&r, &lim); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadResponse(b *testing.B) {
	lim := routerLimits()
	src := bytes.NewReader(smallResponse)
	br := NewReader(src, DefaultReaderSize)
	var r Response
	b.ReportAllocs()
	b.SetBytes(int64(len(smallResponse)))
	for b.Loop() {
		src.Reset(smallResponse)
		br.Reset(src)
		if err := br.ReadResponse(&r, &lim); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkedReader(b *testing.B) {
	body := encodeChunked(bytes.Repeat([]byte("x"), 64<<10), []int{1000, 8000, 16000}, false, false)
	src := bytes.NewReader(body)
	br := NewReader(src, DefaultReaderSize)
	var c ChunkedReader
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		src.Reset(body)
		br.Reset(src)
		c.Reset(br)
		for {
			_, err := c.Read(buf)
			if err != nil {
				if !c.Done() {
					b.Fatal(err)
				}
				break
			}
		}
	}
}

// TestReadHeadAllocs pins the hot path: a reused Reader and Request or
// Response parse without allocating.
func TestReadHeadAllocs(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("allocation counts are unreliable under -short and -race")
	}
	lim := routerLimits()
	src := bytes.NewReader(browserGET)
	br := NewReader(src, DefaultReaderSize)
	var req Request
	var resp Response
	var c ChunkedReader
	chunked := encodeChunked(bytes.Repeat([]byte("y"), 5000), []int{100, 3000}, true, false)
	buf := make([]byte, 4096)
	cases := []struct {
		name string
		run  func() error
	}{
		{"request", func() error {
			src.Reset(browserGET)
			br.Reset(src)
			return br.ReadRequest(&req, &lim)
		}},
		{"response", func() error {
			src.Reset(smallResponse)
			br.Reset(src)
			return br.ReadResponse(&resp, &lim)
		}},
		{"chunked", func() error {
			src.Reset(chunked)
			br.Reset(src)
			c.Reset(br)
			for {
				if _, err := c.Read(buf); err != nil {
					if c.Done() {
						return nil
					}
					return err
				}
			}
		}},
	}
	for _, tc := range cases {
		require.NoError(t, tc.run(), "%s: warm-up", tc.name)
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			if e := tc.run(); e != nil {
				err = e
			}
		})
		require.NoError(t, err, tc.name)
		assert.Zero(t, allocs, "%s: allocations per parse", tc.name)
	}
}

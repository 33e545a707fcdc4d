package router

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router/h1"
)

// TestAppendUUID checks the word-at-a-time UUID text against a byte loop.
func TestAppendUUID(t *testing.T) {
	t.Parallel()
	want := func(a, b uint64) string {
		var u [16]byte
		for i := range 8 {
			u[i] = byte(a >> (8 * i))
			u[8+i] = byte(b >> (8 * i))
		}
		u[6] = u[6]&0x0f | 0x40
		u[8] = u[8]&0x3f | 0x80
		return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	}
	rng := rand.New(rand.NewPCG(1, 2))
	cases := [][2]uint64{{0, 0}, {^uint64(0), ^uint64(0)}, {0x0123456789abcdef, 0xfedcba9876543210}}
	for range 1000 {
		cases = append(cases, [2]uint64{rng.Uint64(), rng.Uint64()})
	}
	for _, c := range cases {
		got := string(appendUUID([]byte("x"), c[0], c[1]))
		assert.Equal(t, "x"+want(c[0], c[1]), got, "appendUUID(%#x, %#x)", c[0], c[1])
	}
}

// TestAppendStartMillis checks the per-connection X-Request-Start digits
// against strconv, across second boundaries and back.
func TestAppendStartMillis(t *testing.T) {
	t.Parallel()
	var cc scratch
	for _, ms := range []int64{1, 999, 1000, 1001, 1999, 2000, 1764000000000, 1764000000999, 1764000001000, 1764000000001, 0, -5, 1764000000042} {
		got := string(cc.appendStartMillis([]byte("x"), ms))
		assert.Equal(t, "x"+strconv.FormatInt(ms, 10), got, "appendStartMillis(%d)", ms)
	}
}

// TestAppendForwardFields checks the run-copying field writer against one
// that writes each field as "Name: Value" CRLF.
func TestAppendForwardFields(t *testing.T) {
	t.Parallel()
	ref := func(fields []h1.Field, replaced bool, via string) string {
		lastVia := -1
		for i := range fields {
			if h1.EqualFold(fields[i].Name, "via") {
				lastVia = i
			}
		}
		var b []byte
		for i, f := range fields {
			if f.Hop || replaced && replacedRequestField(f.Known) {
				continue
			}
			b = append(b, f.Name...)
			b = append(b, ": "...)
			b = append(b, f.Value...)
			if i == lastVia {
				b = append(b, ", "+via...)
			}
			b = append(b, "\r\n"...)
		}
		if lastVia < 0 {
			b = append(b, "Via: "+via+"\r\n"...)
		}
		return string(b)
	}
	heads := []string{
		"Host: a\r\nUser-Agent: b\r\nAccept: */*\r\n",
		"Host: a\r\nConnection: x-a\r\nX-A: 1\r\nX-B: 2\r\nKeep-Alive: 5\r\nX-C: 3\r\n",
		"Host: a\r\nVia: 1.0 p\r\nX-B: 2\r\nvia: 1.1 q\r\nX-C: 3\r\n",
		"X-Request-Id: abc\r\nHost: a\r\nX-Forwarded-For: 1.2.3.4\r\nX-A:1\r\nX-B:  2 \r\nX-C: 3\nX-D: 4\r\nX-Forwarded-Proto: http\r\n",
		"Host: a\r\nTE: trailers\r\nTrailer: x\r\nUpgrade: h2c\r\nProxy-Connection: close\r\nX-E: 5\r\n",
	}
	for _, h := range heads {
		in := "GET / HTTP/1.1\r\n" + h + "\r\n"
		var req h1.Request
		cfg := config.Defaults()
		lim := limitsOf(&cfg.Limits)
		require.NoError(t, h1.NewReader(strings.NewReader(in), 0).ReadRequest(&req, &lim), "sent %q", in)
		for _, replaced := range []bool{false, true} {
			flags := 0
			if replaced {
				flags = fieldsRequest
			}
			got := string(appendForwardFields([]byte("x"), req.Fields, flags, via11))
			assert.Equal(t, "x"+ref(req.Fields, replaced, via11), got, "sent %q, replaced %v", in, replaced)
		}
	}
}

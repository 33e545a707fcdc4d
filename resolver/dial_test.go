package resolver

import (
	"errors"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDialContext(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()

	t.Run("first address that connects", func(t *testing.T) {
		f := newFixture(t)
		// Nothing listens on 127.0.0.2 at that port: refused, then the next.
		f.extra.set("dyno.test", rule{addrs: ips("127.0.0.2", "127.0.0.1"), ttl: 60})
		conn, err := f.r.DialContext(t.Context(), "tcp", net.JoinHostPort("dyno.test", port))
		require.NoError(t, err, "DialContext to dyno.test:%s", port)
		defer conn.Close()
		assert.Equal(t, ln.Addr().String(), conn.RemoteAddr().String(), "address connected to")
		peer := <-accepted
		defer peer.Close()
		_, err = conn.Write([]byte("ping"))
		require.NoError(t, err)
		buf := make([]byte, 4)
		_, err = io.ReadFull(peer, buf)
		require.NoError(t, err)
		assert.Equal(t, "ping", string(buf), "bytes the listener read")
	})
	t.Run("IP literal", func(t *testing.T) {
		f := newFixture(t)
		conn, err := f.r.DialContext(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err, "DialContext to %s", ln.Addr())
		conn.Close()
		(<-accepted).Close()
		assert.Zero(t, f.extra.total(), "queries for an IP literal")
	})
	t.Run("no address of the family", func(t *testing.T) {
		f := newFixture(t)
		f.extra.set("dyno.test", rule{addrs: ips("127.0.0.1"), ttl: 60})
		_, err := f.r.DialContext(t.Context(), "tcp6", net.JoinHostPort("dyno.test", port))
		assert.ErrorIs(t, err, errNoSuitableAddress, "DialContext tcp6 to an IPv4-only name")
	})
	t.Run("unresolvable", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.r.DialContext(t.Context(), "tcp", net.JoinHostPort("nowhere.test", port))
		_, ok := errors.AsType[*net.DNSError](err)
		assert.True(t, ok, "DialContext to nowhere.test: error %v is not a *net.DNSError", err)
	})
	t.Run("refused everywhere", func(t *testing.T) {
		f := newFixture(t)
		f.extra.set("dyno.test", rule{addrs: ips("127.0.0.2", "127.0.0.3"), ttl: 60})
		_, err := f.r.DialContext(t.Context(), "tcp", net.JoinHostPort("dyno.test", port))
		opErr, ok := errors.AsType[*net.OpError](err)
		require.True(t, ok, "DialContext error %v is not a *net.OpError", err)
		assert.Equal(t, net.JoinHostPort("127.0.0.2", port), opErr.Addr.String(), "address in the error (the first one)")
	})
	t.Run("no port", func(t *testing.T) {
		f := newFixture(t)
		_, err := f.r.DialContext(t.Context(), "tcp", "dyno.test")
		assert.Error(t, err, "DialContext without a port")
	})
}

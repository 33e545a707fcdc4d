package acme

import (
	"testing"

	"github.com/spacerouter/spacerouter/internal/pebbletest"
)

// The Pebble ACME server the tests of this package order from is
// internal/pebbletest's, with its DNS server.

func TestMain(m *testing.M) { pebbletest.Main(m) }

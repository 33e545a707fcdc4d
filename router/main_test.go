package router

import (
	"testing"

	"github.com/spacerouter/spacerouter/internal/pebbletest"
)

// TestMain removes the Pebble binary the ACME tests built.
func TestMain(m *testing.M) { pebbletest.Main(m) }

package router

import (
	"net/netip"
	"sync"
)

// clientCounts counts what each client address has open (connections, or
// requests in flight to one app), against a per-client limit. Shards keep
// the lock of one address from serializing every other.
type clientCounts struct {
	shards [clientShards]clientShard
}

const clientShards = 32

type clientShard struct {
	// mu guards n.
	mu sync.Mutex
	n  map[netip.Addr]int32
}

func newClientCounts() *clientCounts {
	c := &clientCounts{}
	for i := range c.shards {
		c.shards[i].n = map[netip.Addr]int32{}
	}
	return c
}

func (c *clientCounts) shard(a netip.Addr) *clientShard {
	b := a.As16()
	return &c.shards[(b[15]^b[14]^b[11])%clientShards]
}

// add counts one more for a, unless a has max already (max <= 0: no
// limit); false when refused. An invalid address (not TCP) is not counted.
func (c *clientCounts) add(a netip.Addr, max int) bool {
	if !a.IsValid() {
		return true
	}
	s := c.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.n[a]
	if max > 0 && int(n) >= max {
		return false
	}
	s.n[a] = n + 1
	return true
}

// done counts one less for a.
func (c *clientCounts) done(a netip.Addr) {
	if !a.IsValid() {
		return
	}
	s := c.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := s.n[a] - 1; n > 0 {
		s.n[a] = n
	} else {
		delete(s.n, a)
	}
}

// count returns what a has open.
func (c *clientCounts) count(a netip.Addr) int {
	s := c.shard(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	return int(s.n[a])
}

package admin

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPendingFloodFromOneClient: a flood of sign-ins from one address
// makes room among its own; another person's sign-in in progress stays.
func TestPendingFloodFromOneClient(t *testing.T) {
	ps := &pendingStore{m: map[string]*pendingLogin{}}
	now := time.Now()
	ps.add("alice", &pendingLogin{nonce: "n", started: now, client: "192.0.2.1"})
	for i := range 5000 {
		ps.add(fmt.Sprint("flood", i), &pendingLogin{started: now.Add(time.Duration(i) * time.Microsecond), client: "198.51.100.7"})
	}
	assert.Len(t, ps.m, maxPendingPerClient+1, "the flooding address holds at most its share")
	assert.Equal(t, maxPendingPerClient, ps.perClient["198.51.100.7"])
	assert.NotNil(t, ps.take("flood4999", now), "its newest sign-in is kept")
	assert.Nil(t, ps.take("flood0", now), "its oldest made room")
	p := ps.take("alice", now)
	require.NotNil(t, p, "the other person's sign-in survives the flood")
	assert.Equal(t, "n", p.nonce)
	assert.Nil(t, ps.take("alice", now), "a state is used once")
	assert.NotContains(t, ps.perClient, "192.0.2.1")
}

// TestPendingFullTable: with the table full of distinct addresses, the
// oldest sign-in makes room, not all of them.
func TestPendingFullTable(t *testing.T) {
	ps := &pendingStore{m: map[string]*pendingLogin{}}
	now := time.Now()
	for i := range maxEntries {
		ps.add(fmt.Sprint("s", i), &pendingLogin{started: now.Add(time.Duration(i) * time.Microsecond), client: fmt.Sprint("c", i)})
	}
	ps.add("new", &pendingLogin{started: now.Add(time.Second), client: "c-new"})
	assert.Len(t, ps.m, maxEntries)
	assert.Nil(t, ps.take("s0", now), "the oldest made room")
	assert.NotNil(t, ps.take("s1", now))
	assert.NotNil(t, ps.take("new", now))

	// Expired sign-ins are refused.
	ps.add("late", &pendingLogin{started: now, client: "c"})
	assert.Nil(t, ps.take("late", now.Add(loginLifetime)))
}

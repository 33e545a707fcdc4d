package spaceca

import (
	"math/big"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSharedClients: a client certificate record of clients/<app>/<id>
// round-trips, a bad one says why, and the revoked serials of records
// join the space CA's own.
func TestSharedClients(t *testing.T) {
	created := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	c := Client{ID: "00000000000000a1", App: "shop", Name: "laptop", Serial: big.NewInt(0xabc),
		Created: created, NotAfter: created.AddDate(0, 13, 0), Issuer: "ff"}
	v, err := MarshalClient(c)
	require.NoError(t, err)
	got, err := UnmarshalClient(v)
	require.NoError(t, err)
	assert.Equal(t, c.ID, got.ID)
	assert.Equal(t, 0, c.Serial.Cmp(got.Serial))
	assert.True(t, got.RevokedAt.IsZero())

	_, err = UnmarshalClient(`{"id":"x","app":"shop"}`)
	assert.ErrorContains(t, err, `id "x": want 16 lower-case hex digits`)
	_, err = UnmarshalClient(`{`)
	assert.Error(t, err)

	assert.Nil(t, NewRevocations(1, []Client{c}), "nothing revoked")
	r := c
	r.ID, r.Serial, r.RevokedAt = "00000000000000a2", big.NewInt(0xdef), created.Add(time.Hour)
	shared := NewRevocations(7, []Client{c, r})
	require.Equal(t, 1, shared.Len())
	assert.True(t, shared.Revoked(big.NewInt(0xdef)))
	assert.False(t, shared.Revoked(big.NewInt(0xabc)))

	own := &Revocations{gen: 3, serials: map[string]struct{}{string(big.NewInt(0x123).Bytes()): {}}}
	u := own.Union(shared)
	assert.Equal(t, 2, u.Len())
	assert.True(t, u.Revoked(big.NewInt(0x123)))
	assert.True(t, u.Revoked(big.NewInt(0xdef)))
	assert.Equal(t, uint64(10), u.Generation())
	assert.Same(t, own, own.Union(nil))
	var none *Revocations
	assert.Same(t, shared, none.Union(shared))
}

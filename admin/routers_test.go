package admin

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/admin/view"
)

// TestRouters: GET /api/routers answers each router's routers/<id> value
// to admins only; a space from a file has no routers to list (409).
func TestRouters(t *testing.T) {
	p := startIDP(t, nil)
	e := newEnv(t, p, envOptions{})
	t.Run("admin", func(t *testing.T) {
		resp, body := e.do("GET", "/api/routers", e.token("user-ops", "ops"), "")
		require.Equal(t, 200, resp.StatusCode, body)
		var got []view.Router
		require.NoError(t, json.Unmarshal([]byte(body), &got))
		require.Len(t, got, 2)
		assert.Equal(t, "edge-1", got[0].ID)
		assert.Equal(t, int64(42), got[0].Revision)
		assert.Empty(t, got[0].Refused)
		assert.Equal(t, []view.Refusal{{Key: "apps/bad", Problem: "domains[0]: not a host name"}}, got[1].Refused)
		assert.Contains(t, body, `"refused":[]`, "no refusal is an empty list, not null")
	})
	for _, c := range []struct{ name, group string }{{"owner", "shop-owners"}, {"collaborator", "shop-devs"}} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := e.do("GET", "/api/routers", e.token("user-"+c.group, c.group), "")
			assert.Equal(t, 403, resp.StatusCode, body)
			assert.Contains(t, body, "needs role admin")
		})
	}
	t.Run("no token", func(t *testing.T) {
		resp, body := e.do("GET", "/api/routers", "", "")
		assert.Equal(t, 401, resp.StatusCode, body)
	})
	t.Run("space from a file", func(t *testing.T) {
		f := newEnv(t, p, envOptions{fileSpace: true})
		resp, body := f.do("GET", "/api/routers", f.token("user-ops", "ops"), "")
		assert.Equal(t, 409, resp.StatusCode, body)
		assert.Contains(t, body, "not from a store")
	})
}

package store

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newStores makes n stores (n routers) of one space on etcd te, not
// running: the ACME storage needs no Run.
func newStores(t *testing.T, te *testEtcd, n int) []*Store {
	t.Helper()
	var out []*Store
	for range n {
		s, err := New(localConfig(t, t.TempDir(), te.endpoint(), ""), Options{LeaseTTL: time.Second})
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

func TestACMEStorageValues(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	stores := newStores(t, te, 2)
	a, b := stores[0].ACMEStorage(), stores[1].ACMEStorage()
	ctx := context.Background()

	cert := "certificates/acme-v02/shop.example.com/shop.example.com.crt"
	require.NoError(t, a.Store(ctx, cert, []byte("PEM")))
	require.NoError(t, a.Store(ctx, "certificates/acme-v02/shop.example.com/shop.example.com.key", []byte("KEY")))
	require.NoError(t, a.Store(ctx, "certificates/acme-v02/blog.example.com/blog.example.com.crt", []byte("PEM2")))
	require.NoError(t, a.Store(ctx, "acme/acme-v02/users/ops/ops.json", []byte("{}")))

	got, err := b.Load(ctx, cert)
	require.NoError(t, err)
	assert.Equal(t, []byte("PEM"), got, "another router loads what one stored")
	_, err = b.Load(ctx, "certificates/none")
	assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)

	info, err := b.Stat(ctx, cert)
	require.NoError(t, err)
	assert.Equal(t, int64(3), info.Size)
	assert.True(t, info.IsTerminal)
	info, err = b.Stat(ctx, "certificates/acme-v02")
	require.NoError(t, err)
	assert.False(t, info.IsTerminal)
	_, err = b.Stat(ctx, "certificates/acme-v0")
	assert.True(t, errors.Is(err, fs.ErrNotExist), "a prefix of a name is not a directory: %v", err)
	assert.True(t, b.Exists(ctx, cert))
	assert.True(t, b.Exists(ctx, "certificates"))
	assert.False(t, b.Exists(ctx, "ocsp"))

	list, err := b.List(ctx, "certificates/acme-v02", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"certificates/acme-v02/blog.example.com", "certificates/acme-v02/shop.example.com"}, list)
	list, err = b.List(ctx, "certificates", true)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"certificates/acme-v02/blog.example.com/blog.example.com.crt",
		"certificates/acme-v02/shop.example.com/shop.example.com.crt",
		"certificates/acme-v02/shop.example.com/shop.example.com.key",
	}, list)
	list, err = b.List(ctx, "", false)
	require.NoError(t, err)
	assert.Equal(t, []string{"acme", "certificates"}, list)
	_, err = b.List(ctx, "ocsp", false)
	assert.True(t, errors.Is(err, fs.ErrNotExist), "%v", err)

	require.NoError(t, b.Delete(ctx, "certificates/acme-v02/shop.example.com"))
	assert.False(t, a.Exists(ctx, cert))
	assert.True(t, a.Exists(ctx, "certificates/acme-v02/blog.example.com/blog.example.com.crt"))
	require.NoError(t, b.Delete(ctx, "certificates/none"), "deleting nothing")

	// The acme keys are no config: a router's build ignores them.
	kvs, _, err := stores[0].readAll(ctx)
	require.NoError(t, err)
	assert.Empty(t, kvs)
}

func TestACMEStorageLocks(t *testing.T) {
	t.Parallel()
	te := startEtcd(t)
	stores := newStores(t, te, 3)
	a, b, c := stores[0].ACMEStorage(), stores[1].ACMEStorage(), stores[2].ACMEStorage()
	ctx := context.Background()

	require.NoError(t, a.Lock(ctx, "issue_cert_shop.example.com"))
	ok, err := b.TryLock(ctx, "issue_cert_shop.example.com")
	require.NoError(t, err)
	assert.False(t, ok, "router b may not take a's lock")
	ok, err = b.TryLock(ctx, "issue_cert_blog.example.com")
	require.NoError(t, err)
	assert.True(t, ok, "another name is free")
	require.NoError(t, b.Unlock(ctx, "issue_cert_blog.example.com"))

	// b waits for the lock until a releases it.
	got := make(chan error, 1)
	go func() { got <- b.Lock(ctx, "issue_cert_shop.example.com") }()
	select {
	case err := <-got:
		t.Fatalf("b took the lock a holds (%v)", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, a.Unlock(ctx, "issue_cert_shop.example.com"))
	select {
	case err := <-got:
		require.NoError(t, err)
	case <-time.After(waitLimit):
		t.Fatal("b did not get the lock a released")
	}

	// b dies holding it (its connection goes, nothing is revoked): its
	// session's lease ends, and c gets the lock.
	require.NoError(t, stores[1].cli.Close())
	start := time.Now()
	lctx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	require.NoError(t, c.Lock(lctx, "issue_cert_shop.example.com"), "the lock of a router gone")
	t.Logf("the lock of a dead router was free after %s", time.Since(start))
	require.NoError(t, c.Unlock(ctx, "issue_cert_shop.example.com"))
	assert.Error(t, c.Unlock(ctx, "issue_cert_shop.example.com"), "unlocking a lock not held")

	// A lock a router cannot get within ctx is an error, not a wait forever.
	require.NoError(t, a.Lock(ctx, "issue_cert_x"))
	short, cancel2 := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel2()
	assert.Error(t, c.Lock(short, "issue_cert_x"))
}

package spaceca

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const day = 24 * time.Hour

// TestIssue: what SPEC.md section 11.3 says a client certificate is, and
// how it is kept.
func TestIssue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		time.Sleep(time.Hour + 500*time.Millisecond) // the clock is not on a second
		created := time.Now().UTC().Truncate(time.Second)
		c, err := ca.Issue("shop", "laptop")
		require.NoError(t, err)

		assert.Regexp(t, `^[0-9a-f]{16}$`, c.ID)
		assert.Equal(t, "shop", c.App)
		assert.Equal(t, "laptop", c.Name)
		assert.Equal(t, StatusReady, c.Status)
		assert.Equal(t, created, c.Created)
		assert.Equal(t, time.Date(2001, time.February, 1, 1, 0, 0, 0, time.UTC), c.NotAfter, "13 calendar months from 2000-01-01T01:00:00Z")

		cert := certOf(t, ca, c.ID)
		assert.Equal(t, "laptop", cert.Subject.CommonName)
		assert.Equal(t, c.NotAfter, cert.NotAfter.UTC())
		assert.Equal(t, c.Serial, cert.SerialNumber)
		assert.LessOrEqual(t, cert.SerialNumber.BitLen(), 128)
		assert.Greater(t, cert.SerialNumber.BitLen(), 64, "a random 128-bit serial (fails once in 2^64)")
		assert.Equal(t, []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, cert.ExtKeyUsage)
		assert.False(t, cert.IsCA)
		require.Len(t, cert.URIs, 1)
		assert.Equal(t, "spiffe://my-space/apps/shop/clients/"+c.ID, cert.URIs[0].String())
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		require.True(t, ok, "an ECDSA key, got %T", cert.PublicKey)
		assert.Equal(t, elliptic.P256(), pub.Curve)
		v := VerifyClient(cert, nil, NewTrustSet(ca.Anchors()...), ca.Revocations(), time.Now())
		assert.Equal(t, Cause(""), v.Cause, "the router accepts it")

		dir := filepath.Join(ca.clientsDir(), c.ID)
		assert.Equal(t, fs.FileMode(0o700), mode(t, dir))
		assert.Equal(t, []string{"client.crt", "client.key", "meta.json"}, listDir(t, dir))
		for _, f := range listDir(t, dir) {
			assert.Equal(t, fs.FileMode(0o600), mode(t, filepath.Join(dir, f)), f)
		}
		key, err := readKey(filepath.Join(dir, "client.key"))
		require.NoError(t, err)
		assert.True(t, pub.Equal(key.Public()), "client.key is the certificate's key")

		var m map[string]any
		data, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		require.NoError(t, err)
		require.NoError(t, json.Unmarshal(data, &m))
		assert.Equal(t, map[string]any{"id": c.ID, "app": "shop", "name": "laptop", "serial": c.Serial.Text(16),
			"created": "2000-01-01T01:00:00Z", "not_after": "2001-02-01T01:00:00Z", "issuer": fingerprint(ca.Certificate())}, m)

		got, err := ca.Get(c.ID)
		require.NoError(t, err)
		assert.Equal(t, c, got)
		d, err := ca.Issue("shop", "")
		require.NoError(t, err)
		assert.Equal(t, "shop", d.Name, "the name defaults to the app's")
		assert.NotEqual(t, c.ID, d.ID)
		assert.Equal(t, uint64(2), ca.Generation())
	})
}

// TestIssueRefuses: bad names and an expired CA are errors, nothing is
// written.
func TestIssueRefuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		for _, tc := range []struct{ app, name, msg string }{
			{"", "", "no app given"},
			{"Shop", "", `app "Shop": not an app name`},
			{"shop/../x", "", `app "shop/../x": not an app name`},
			{"shop", "my laptop", `name "my laptop": use 1 to 64 of`},
			{"shop", string(make([]byte, 65)), "use 1 to 64 of"},
		} {
			_, err := ca.Issue(tc.app, tc.name)
			require.Error(t, err, "app %q name %q", tc.app, tc.name)
			assert.Contains(t, err.Error(), tc.msg)
		}
		time.Sleep(CAYears * 366 * day)
		_, err := ca.Issue("shop", "")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the CA certificate expired on 2010-01-01T00:00:00Z")
		assert.Empty(t, listDir(t, ca.clientsDir()))
		assert.Equal(t, uint64(0), ca.Generation())
	})
}

// TestIssueAtomic: a write that fails half way leaves no certificate, no
// temporary file, and the state as it was; the next issue works.
func TestIssueAtomic(t *testing.T) {
	t.Parallel()
	for failOn := 1; failOn <= 3; failOn++ { // client.crt, client.key, meta.json
		ca := newCA(t, t.TempDir())
		calls := 0
		ca.fw.write = func(f *os.File, p []byte) (int, error) {
			calls++
			if calls == failOn {
				n, _ := f.Write(p[:len(p)/2])
				return n, errors.New("disk full")
			}
			return f.Write(p)
		}
		_, err := ca.Issue("shop", "")
		require.ErrorContains(t, err, "disk full")
		assert.Empty(t, listDir(t, ca.clientsDir()), "write %d failed: nothing left", failOn)
		assert.Empty(t, ca.List(""))
		assert.Equal(t, uint64(0), ca.Generation())

		ca.fw.write = nil
		c, err := ca.Issue("shop", "")
		require.NoError(t, err)
		assert.Equal(t, []string{c.ID}, listDir(t, ca.clientsDir()))
	}
}

// TestIssueRemovesCrashLeftovers: a certificate directory a crashed writer
// left under its temporary name is ignored, then removed by the next
// writer.
func TestIssueRemovesCrashLeftovers(t *testing.T) {
	t.Parallel()
	ca := newCA(t, t.TempDir())
	left := filepath.Join(ca.clientsDir(), ".tmp-0123456789abcdef-42")
	require.NoError(t, os.Mkdir(left, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(left, "client.crt"), []byte("half a cert"), 0o600))
	changed, err := ca.Refresh()
	require.NoError(t, err)
	assert.False(t, changed)
	assert.Empty(t, ca.List(""))
	c, err := ca.Issue("shop", "")
	require.NoError(t, err)
	assert.Equal(t, []string{c.ID}, listDir(t, ca.clientsDir()))
}

// TestStatuses: ready, then expiring 75 days before the end, then
// expired; revoked whenever revoked.
func TestStatuses(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		c, err := ca.Issue("shop", "")
		require.NoError(t, err)
		time.Sleep(time.Second)
		r, err := ca.Issue("shop", "other")
		require.NoError(t, err)
		_, changed, err := ca.Revoke(r.ID)
		require.NoError(t, err)
		require.True(t, changed)
		status := func() Status {
			got, err := ca.Get(c.ID)
			require.NoError(t, err)
			return got.Status
		}
		assert.Equal(t, StatusReady, status())
		time.Sleep(time.Until(c.NotAfter.Add(-ExpiringWithin)) - time.Second)
		assert.Equal(t, StatusReady, status(), "one second before the 75 days")
		time.Sleep(time.Second)
		assert.Equal(t, StatusExpiring, status(), "75 days before the end")
		assert.Equal(t, 75*day, time.Until(c.NotAfter))
		time.Sleep(ExpiringWithin - time.Second)
		assert.Equal(t, StatusExpiring, status(), "one second before the end")
		time.Sleep(time.Second)
		assert.Equal(t, StatusExpired, status(), "at the end")

		list := ca.List("shop")
		require.Len(t, list, 2)
		assert.Equal(t, []Status{StatusExpired, StatusRevoked}, []Status{list[0].Status, list[1].Status})
		assert.Empty(t, ca.List("blog"))
		assert.Equal(t, []Count{{"shop", StatusReady, 0}, {"shop", StatusExpiring, 0}, {"shop", StatusExpired, 1}, {"shop", StatusRevoked, 1}}, ca.Counts())
	})
}

// TestRevoke: revocation is recorded, idempotent, seen by another process
// after Refresh, and an unknown id is an error naming it.
func TestRevoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cli := newCA(t, dir)
		router := openCA(t, dir)
		c, err := cli.Issue("shop", "")
		require.NoError(t, err)
		changed, err := router.Refresh()
		require.NoError(t, err)
		require.True(t, changed)
		assert.False(t, router.Revocations().Revoked(c.Serial))

		time.Sleep(time.Minute)
		got, changed, err := cli.Revoke(c.ID)
		require.NoError(t, err)
		assert.True(t, changed)
		assert.Equal(t, StatusRevoked, got.Status)
		assert.Equal(t, time.Now().UTC(), got.RevokedAt)
		gen := cli.Generation()

		again, changed, err := cli.Revoke(c.ID)
		require.NoError(t, err)
		assert.False(t, changed, "revoking twice changes nothing")
		assert.Equal(t, got.RevokedAt, again.RevokedAt)
		assert.Equal(t, gen+1, cli.Generation(), "but bumps the generation, in case the first run died before it")

		old := router.Revocations()
		changed, err = router.Refresh()
		require.NoError(t, err)
		assert.True(t, changed)
		assert.True(t, router.Revocations().Revoked(c.Serial))
		assert.False(t, old.Revoked(c.Serial), "a set never changes under its holder")
		assert.Equal(t, 1, router.Revocations().Len())
		changed, err = router.Refresh()
		require.NoError(t, err)
		assert.False(t, changed, "nothing new")

		for _, id := range []string{"0123456789abcdef", "../../etc/passwd", ""} {
			_, _, err := cli.Revoke(id)
			var unknown *UnknownIDError
			require.ErrorAs(t, err, &unknown, "id %q", id)
			assert.Equal(t, id, unknown.ID)
			assert.Contains(t, err.Error(), `unknown client certificate id "`+id+`"`)
		}
	})
}

// TestRefreshCorruptState: a meta.json that cannot be parsed is an error
// naming it, and the state in force stays: a revocation is never
// forgotten.
func TestRefreshCorruptState(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cli := newCA(t, dir)
	router := openCA(t, dir)
	c, err := cli.Issue("shop", "")
	require.NoError(t, err)
	_, _, err = cli.Revoke(c.ID)
	require.NoError(t, err)
	_, err = router.Refresh()
	require.NoError(t, err)

	metaPath := filepath.Join(cli.clientsDir(), c.ID, "meta.json")
	require.NoError(t, os.WriteFile(metaPath, []byte("{"), 0o600))
	_, err = cli.Issue("shop", "") // a writer reads the state first
	require.ErrorContains(t, err, metaPath)
	require.NoError(t, os.WriteFile(cli.generationFile(), []byte("99\n"), 0o600))
	_, err = router.Refresh()
	require.ErrorContains(t, err, metaPath)
	assert.True(t, router.Revocations().Revoked(c.Serial), "the last good state stays")

	_, err = Open(Options{CertPath: filepath.Join(dir, "ca", "space.pem"), KeyPath: filepath.Join(dir, "ca", "space-key.pem"),
		StateDir: cli.StateDir(), Space: testSpace})
	require.ErrorContains(t, err, metaPath)
}

// TestRenew: 75 days before the end a successor is issued (same app and
// name, new id), once; the old certificate works until it ends.
func TestRenew(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		c, err := ca.Issue("shop", "laptop")
		require.NoError(t, err)
		other, err := ca.Issue("blog", "")
		require.NoError(t, err)
		revoked, err := ca.Issue("shop", "gone")
		require.NoError(t, err)
		_, _, err = ca.Revoke(revoked.ID)
		require.NoError(t, err)

		time.Sleep(time.Until(c.NotAfter.Add(-ExpiringWithin)) - time.Second)
		renewed, err := ca.Renew(nil)
		require.NoError(t, err)
		assert.Empty(t, renewed, "not yet")

		time.Sleep(time.Second)
		gen := ca.Generation()
		renewed, err = ca.Renew(func(app string) bool { return app == "shop" })
		require.NoError(t, err)
		require.Len(t, renewed, 1, "shop's laptop only: blog is not an app, gone is revoked")
		r := renewed[0]
		assert.Equal(t, c.ID, r.Old.ID)
		assert.Equal(t, StatusExpiring, r.Old.Status)
		assert.Equal(t, "shop", r.New.App)
		assert.Equal(t, "laptop", r.New.Name)
		assert.Equal(t, c.ID, r.New.SuccessorOf)
		assert.NotEqual(t, c.ID, r.New.ID)
		assert.Equal(t, StatusReady, r.New.Status)
		assert.Equal(t, time.Now().UTC().AddDate(0, ValidMonths, 0), r.New.NotAfter)
		assert.Equal(t, r.New.ID, ca.Successor(c.ID))
		assert.Equal(t, gen+1, ca.Generation())

		renewed, err = ca.Renew(func(app string) bool { return app == "shop" })
		require.NoError(t, err)
		assert.Empty(t, renewed, "one successor only")
		assert.Equal(t, gen+1, ca.Generation(), "nothing written")

		renewed, err = ca.Renew(nil)
		require.NoError(t, err)
		require.Len(t, renewed, 1, "blog's, now that every app counts")
		assert.Equal(t, other.ID, renewed[0].Old.ID)

		trust := NewTrustSet(ca.Anchors()...)
		old := VerifyClient(certOf(t, ca, c.ID), nil, trust, ca.Revocations(), time.Now())
		assert.Equal(t, Cause(""), old.Cause, "the old one keeps working")
		time.Sleep(ExpiringWithin - time.Second)
		assert.Equal(t, Cause(""), old.Recheck(time.Now(), ca.Revocations()), "until its end")
		time.Sleep(2 * time.Second)
		assert.Equal(t, CauseExpired, old.Recheck(time.Now(), ca.Revocations()))
		renewed, err = ca.Renew(nil)
		require.NoError(t, err)
		assert.Empty(t, renewed, "an expired certificate gets no successor")
	})
}

// TestRenewNearCAEnd: a successor that could not outlive its predecessor
// (the CA ends first) is not issued; the error says to rotate the CA.
func TestRenewNearCAEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		time.Sleep(time.Until(ca.Certificate().NotAfter) - 100*day)
		c, err := ca.Issue("shop", "")
		require.NoError(t, err)
		assert.Equal(t, ca.Certificate().NotAfter.UTC(), c.NotAfter, "capped at the CA's end")
		assert.Equal(t, StatusReady, c.Status)
		time.Sleep(30 * day)
		renewed, err := ca.Renew(nil)
		assert.Empty(t, renewed)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "client certificate "+c.ID+" (app shop) cannot be renewed: the CA certificate ends on 2010-01-01T00:00:00Z")
	})
}

// TestWatch: a certificate issued or revoked by another process (the ca
// subcommand) counts in the running router within two seconds, without a
// reload.
func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dir := t.TempDir()
		cli := newCA(t, dir)
		router := openCA(t, dir)
		ctx, cancel := context.WithCancel(t.Context())
		var mu sync.Mutex
		var reports []error
		done := make(chan struct{})
		go func() {
			defer close(done)
			router.Watch(ctx, time.Second, func(changed bool, err error) {
				mu.Lock()
				defer mu.Unlock()
				assert.True(t, changed || err != nil)
				reports = append(reports, err)
			})
		}()

		c, err := cli.Issue("shop", "")
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		got, err := router.Get(c.ID)
		require.NoError(t, err, "issued: known within 2 s")
		assert.Equal(t, StatusReady, got.Status)

		_, _, err = cli.Revoke(c.ID)
		require.NoError(t, err)
		time.Sleep(2 * time.Second)
		assert.True(t, router.Revocations().Revoked(c.Serial), "revoked: refused within 2 s")

		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, []error{nil, nil}, reports, "one report per change")
	})
}

// TestConcurrentWriters: the ca subcommand and a router writing the same
// state directory at once lose nothing: the lock serializes them and each
// writes on the state as it is on disk.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writers := []*CA{newCA(t, dir), openCA(t, dir)}
	const each = 10
	var wg sync.WaitGroup
	for _, ca := range writers {
		wg.Go(func() {
			for range each {
				_, err := ca.Issue("shop", "")
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	for _, ca := range writers {
		_, err := ca.Refresh()
		require.NoError(t, err)
		assert.Len(t, ca.List("shop"), 2*each)
		assert.Equal(t, uint64(2*each), ca.Generation())
	}
}

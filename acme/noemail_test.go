package acme

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/internal/pebbletest"
)

// TestRestartWithoutEmail: a Manager without acme.email that starts on a
// storage holding an account directory without its files orders all the
// same. certmagic, left alone, took the directory's name ("default") for
// an email and registered mailto:default, which the CA refuses
// (invalidContact) — and kept that email for every Manager of the
// process after it (a router's ACME tests failed together so).
// Not parallel: certmagic keeps the email it settles on in a package
// variable, which a parallel test with an email would set first.
func TestRestartWithoutEmail(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	r := newTestRouter(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, r.addr)})
	dir := t.TempDir()
	opts := testOptions(p, r, dir)
	opts.Email = ""

	m1, _ := startManager(t, opts, r)
	first := uniq("first.noemail.test")
	require.NoError(t, m1.SetDomains(map[string][]string{"shop": {first}}))
	waitStatus(t, m1, orderTimeout, "the first certificate", allState(StateOK, first))
	m1.Stop()
	// The account's directory without its files: what another router
	// sharing the storage leaves while it registers, or a lost file.
	accounts, err := filepath.Glob(filepath.Join(dir, "acme", "*", "users", "default", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, accounts, "the first Manager's account is kept under users/default")
	for _, f := range accounts {
		require.NoError(t, os.Remove(f))
	}

	m2, _ := startManager(t, opts, r)
	second := uniq("second.noemail.test")
	require.NoError(t, m2.SetDomains(map[string][]string{"shop": {second}}))
	waitStatus(t, m2, orderTimeout, "a certificate after the restart", allState(StateOK, second))
	for _, s := range m2.Status() {
		assert.Empty(t, s.LastError, s.Domain)
	}
}

package router

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/internal/pebbletest"
)

// TestAdminDownloadACMERoot: the download of a client certificate of a
// tls: auto app holds in root.crt the root its ACME chain verifies to
// (Pebble's, through acme.trusted_roots), with which a verify-full
// client reaches the app (SPEC.md 11.3); before the certificate is
// obtained the download is a conflict that says why.
func TestAdminDownloadACMERoot(t *testing.T) {
	dns := pebbletest.StartDNS(t)
	httpsAddr := pebbletest.FreeAddr(t)
	p := pebbletest.Start(t, dns, pebbletest.Options{TLSPort: pebbletest.PortOf(t, httpsAddr)})
	dyno := okDyno(t, "auto")
	shop := acmeName("shop.test")
	release := dns.Hold(shop)
	caFiles := newSpaceCAFiles(t, t.TempDir(), "space-ca")
	ar := startACMERouter(t, newTestPKI(t), httpsAddr, acmeSection(t, p.Directory, p.RootsFile)+caFiles.yaml(),
		"apps:\n"+autoApp("shop", dyno.addr(), shop))
	b := ar.AdminBackend()
	cl, err := b.IssueClient("shop", "laptop")
	require.NoError(t, err)

	waitACME(t, ar.Router, "the order in progress", stateIs(acme.StateInProgress, shop))
	_, err = b.DownloadClient("shop", cl.ID)
	var ve *view.Error
	require.True(t, errors.As(err, &ve), "%v", err)
	assert.ErrorIs(t, err, view.ErrConflict)
	assert.Contains(t, ve.Msg, "no certificate obtained yet")

	d, err := b.App("shop")
	require.NoError(t, err)
	require.Len(t, d.Certificates, 1)
	assert.Equal(t, "acme", d.Certificates[0].Source)
	assert.Equal(t, shop, d.Certificates[0].Domain)
	assert.Equal(t, "in_progress", d.Certificates[0].State)
	assert.Equal(t, "acme", d.TLSSource)

	release()
	st := waitACME(t, ar.Router, "the certificate", stateIs(acme.StateOK, shop))
	d, err = b.App("shop")
	require.NoError(t, err)
	require.Len(t, d.Certificates, 1)
	c := d.Certificates[0]
	assert.Equal(t, "ok", c.State)
	assert.True(t, c.NotAfter.Equal(st[shop].NotAfter))
	assert.Contains(t, c.Issuer, "Pebble Intermediate CA")
	require.NotNil(t, c.VerifyFull)
	assert.True(t, *c.VerifyFull, "verify-full with acme.trusted_roots")
	files, err := b.DownloadClient("shop", cl.ID)
	require.NoError(t, err)
	var rootPEM []byte
	for _, f := range files {
		if f.Name == "root.crt" {
			rootPEM = f.Data
		}
	}
	blk, rest := pem.Decode(rootPEM)
	require.NotNil(t, blk, "root.crt: %q", rootPEM)
	assert.Empty(t, rest, "one root")
	want, _ := pem.Decode(p.RootPEM)
	assert.Equal(t, want.Bytes, blk.Bytes, "root.crt is Pebble's root, which the served chain does not hold")

	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(rootPEM))
	conn, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: shop, RootCAs: roots})
	require.NoError(t, err, "verify-full with the downloaded root.crt")
	conn.Close()
}

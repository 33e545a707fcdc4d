package spaceca

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"path/filepath"
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

// TestSharedRecord: the record of a certificate carries its certificate
// and key, from which another CA of the space (same CA files, another
// state_dir) builds the very files its own Files would; an older record
// without them still parses; a record whose key, serial or certificate
// does not fit is refused, naming what is wrong.
func TestSharedRecord(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newCA(t, dir)
	c, err := ca.Issue("shop", "laptop")
	require.NoError(t, err)
	rec, err := ca.Record(c)
	require.NoError(t, err)
	require.NotEmpty(t, rec.CertPEM)
	require.NotEmpty(t, rec.KeyPEM)
	v, err := MarshalRecord(rec)
	require.NoError(t, err)

	// Another router: the same CA files, its own empty state_dir.
	cert, key, _ := caPaths(dir)
	other, err := Open(Options{CertPath: cert, KeyPath: key, StateDir: filepath.Join(t.TempDir(), "state"), Space: "test"})
	require.NoError(t, err)
	_, err = other.Get(c.ID)
	require.Error(t, err, "the other state_dir does not hold it")
	got, err := UnmarshalRecord(v)
	require.NoError(t, err)
	roots := []*x509.Certificate{servedRoot(t)}
	fromRecord, err := other.RecordFiles(&got, roots)
	require.NoError(t, err)
	own, err := ca.Files(c.ID, roots)
	require.NoError(t, err)
	assert.Equal(t, own, fromRecord, "the same four files from the record as from the state_dir")
	out := t.TempDir()
	require.NoError(t, other.DownloadRecord(&got, out, "", roots))
	pair, err := tls.LoadX509KeyPair(filepath.Join(out, FileCert), filepath.Join(out, FileKey))
	require.NoError(t, err)
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	require.NoError(t, err)
	assert.Equal(t, 0, leaf.SerialNumber.Cmp(c.Serial))

	// The meta-only parser reads the new record; the new one the old.
	meta, err := UnmarshalClient(v)
	require.NoError(t, err)
	assert.Equal(t, c.ID, meta.ID)
	old, err := MarshalClient(c)
	require.NoError(t, err)
	oldRec, err := UnmarshalRecord(old)
	require.NoError(t, err)
	assert.Nil(t, oldRec.CertPEM)
	_, err = other.RecordFiles(&oldRec, roots)
	assert.ErrorContains(t, err, "holds no certificate and key")

	// Tampered: another certificate's key, another serial, a key alone,
	// a certificate the space CA did not sign.
	c2, err := ca.Issue("shop", "phone")
	require.NoError(t, err)
	rec2, err := ca.Record(c2)
	require.NoError(t, err)
	tamper := func(f func(*recordJSON)) string {
		var j recordJSON
		require.NoError(t, json.Unmarshal([]byte(v), &j))
		f(&j)
		b, err := json.Marshal(j)
		require.NoError(t, err)
		return string(b)
	}
	for _, tc := range []struct {
		name, value, want string
	}{
		{"another key", tamper(func(j *recordJSON) { j.Key = string(rec2.KeyPEM) }), "key: it is not the key of the certificate in cert"},
		{"another serial", tamper(func(j *recordJSON) { j.Serial = c2.Serial.Text(16) }), "is not the record's serial"},
		{"key alone", tamper(func(j *recordJSON) { j.Cert = "" }), "cert and key: the record holds one without the other"},
		{"no PEM", tamper(func(j *recordJSON) { j.Key = "junk" }), "key: no PEM PRIVATE KEY block"},
	} {
		_, err := UnmarshalRecord(tc.value)
		assert.ErrorContains(t, err, tc.want, tc.name)
	}
	// A certificate and key that fit, from a CA not the space's.
	foreignKey := newKey(t)
	foreign := issue(t, tmpl{cn: "foreign", serial: 77, notBefore: time.Now().Add(-time.Hour), notAfter: time.Now().Add(time.Hour)},
		foreignKey.Public(), nil, foreignKey)
	kder, err := x509.MarshalPKCS8PrivateKey(foreignKey)
	require.NoError(t, err)
	forged := got
	forged.Serial = big.NewInt(77)
	forged.CertPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: foreign.Raw})
	forged.KeyPEM = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
	_, err = other.RecordFiles(&forged, roots)
	assert.ErrorContains(t, err, "the certificate is not signed by the CA of its issuer")

	// Revoked: the record drops the key, and the download is refused.
	r, _, err := ca.Revoke(c.ID)
	require.NoError(t, err)
	revoked, err := ca.Record(r)
	require.NoError(t, err)
	assert.Nil(t, revoked.KeyPEM, "a revoked certificate's key leaves etcd")
	_, err = other.RecordFiles(&revoked, roots)
	var se *StatusError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, StatusRevoked, se.Status)
}

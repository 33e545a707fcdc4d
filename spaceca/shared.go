package spaceca

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Record is the value under clients/<app>/<id> in a shared space
// (SPEC.md section 14): the certificate's meta.json, so every router of
// the space knows it and whether it is revoked, and the certificate and
// its key, so every router can hand out its download. CertPEM and KeyPEM
// are both nil in a record written before they were shared, or by a
// state_dir that does not hold them.
type Record struct {
	Client
	CertPEM []byte // client.crt of the issuing state_dir: the certificate alone
	KeyPEM  []byte // client.key of the issuing state_dir: PKCS#8 PEM
}

// recordJSON is the JSON form of a Record: meta.json's fields, and cert
// and key (absent in older records, which still parse).
type recordJSON struct {
	meta
	Cert string `json:"cert,omitempty"`
	Key  string `json:"key,omitempty"`
}

// Record returns the record of c, with the certificate and key of c.ID
// when this CA's state_dir holds them (it does not for a certificate
// issued from another router's state_dir) and c is not revoked (a
// revoked certificate is not downloaded: its key leaves etcd).
func (ca *CA) Record(c Client) (Record, error) {
	r := Record{Client: c}
	if !c.RevokedAt.IsZero() {
		return r, nil
	}
	dir := filepath.Join(ca.clientsDir(), c.ID)
	certPEM, err := os.ReadFile(filepath.Join(dir, FileCert))
	if errors.Is(err, os.ErrNotExist) {
		return r, nil
	}
	if err != nil {
		return r, fmt.Errorf("reading the client certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, FileKey))
	if err != nil {
		return r, fmt.Errorf("reading the client key: %w", err)
	}
	r.CertPEM, r.KeyPEM = certPEM, keyPEM
	return r, nil
}

// MarshalRecord is the value of r under clients/<app>/<id>.
func MarshalRecord(r Record) (string, error) {
	b, err := json.Marshal(recordJSON{meta: toMeta(&r.Client), Cert: string(r.CertPEM), Key: string(r.KeyPEM)})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// UnmarshalRecord parses a value of MarshalRecord (or MarshalClient). It
// refuses a record whose certificate and key are not both there or
// neither, whose certificate's serial is not the record's, or whose key
// is not the certificate's: the error says which.
func UnmarshalRecord(v string) (Record, error) {
	var j recordJSON
	if err := json.Unmarshal([]byte(v), &j); err != nil {
		return Record{}, err
	}
	if !validID(j.ID) {
		return Record{}, fmt.Errorf("id %q: want 16 lower-case hex digits", j.ID)
	}
	c, err := j.client()
	if err != nil {
		return Record{}, err
	}
	r := Record{Client: c}
	if j.Cert == "" && j.Key == "" {
		return r, nil
	}
	if j.Cert == "" || j.Key == "" {
		return Record{}, errors.New("cert and key: the record holds one without the other; issue a new certificate")
	}
	r.CertPEM, r.KeyPEM = []byte(j.Cert), []byte(j.Key)
	if _, err := r.leaf(); err != nil {
		return Record{}, err
	}
	return r, nil
}

// leaf checks r's certificate and key against each other and r's serial
// and returns the certificate.
func (r *Record) leaf() (*x509.Certificate, error) {
	block, rest := pem.Decode(r.CertPEM)
	if block == nil || block.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("cert: want one PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("cert: %w", err)
	}
	if cert.SerialNumber.Cmp(r.Serial) != 0 {
		return nil, fmt.Errorf("cert: its serial %s is not the record's serial %s", cert.SerialNumber.Text(16), r.Serial.Text(16))
	}
	kb, _ := pem.Decode(r.KeyPEM)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, errors.New("key: no PEM PRIVATE KEY block")
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("key: %w", err)
	}
	pub, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("key: a %T cannot sign", key)
	}
	if eq, ok := pub.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(cert.PublicKey) {
		return nil, errors.New("key: it is not the key of the certificate in cert")
	}
	return cert, nil
}

// MarshalClient is the value of c under clients/<app>/<id> without the
// certificate and key: its meta.json.
func MarshalClient(c Client) (string, error) { return MarshalRecord(Record{Client: c}) }

// UnmarshalClient parses a value of MarshalClient; an error says what is
// wrong with it.
func UnmarshalClient(v string) (Client, error) {
	var m meta
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return Client{}, err
	}
	if !validID(m.ID) {
		return Client{}, fmt.Errorf("id %q: want 16 lower-case hex digits", m.ID)
	}
	return m.client()
}

// NewRevocations returns the set of the serials revoked among clients
// (nil when none is), at generation gen.
func NewRevocations(gen uint64, clients []Client) *Revocations {
	r := &Revocations{gen: gen, serials: map[string]struct{}{}}
	for _, c := range clients {
		if !c.RevokedAt.IsZero() && c.Serial != nil {
			r.serials[string(c.Serial.Bytes())] = struct{}{}
		}
	}
	if len(r.serials) == 0 {
		return nil
	}
	return r
}

// Union returns the serials revoked in r or o: r or o itself when the
// other is empty, else a new set whose generation is the sum of theirs.
func (r *Revocations) Union(o *Revocations) *Revocations {
	switch {
	case o.Len() == 0:
		return r
	case r.Len() == 0:
		return o
	}
	u := &Revocations{gen: r.gen + o.gen, serials: make(map[string]struct{}, len(r.serials)+len(o.serials))}
	for k := range r.serials {
		u.serials[k] = struct{}{}
	}
	for k := range o.serials {
		u.serials[k] = struct{}{}
	}
	return u
}

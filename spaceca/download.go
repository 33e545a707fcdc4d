package spaceca

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files a client gets from Download, each after the caller's prefix.
const (
	FileCert   = "client.crt" // PEM: the certificate, then the chain to the CA
	FileKey    = "client.key" // PEM: the key, PKCS#8, mode 0600
	FilePKCS8  = "client.pk8" // DER: the same PKCS#8 bytes, mode 0600
	FileRootCA = "root.crt"   // PEM: the roots of the app's served chains
)

// Download writes the files a client needs for certificate id into dir
// (created with mode 0700 if missing), each name after prefix:
// client.crt (the certificate, then the issuing CA's file: the CA and its
// chain), client.key (PEM, PKCS#8, mode 0600), client.pk8 (the same key as
// PKCS#8 DER, byte for byte what `openssl pkcs8 -topk8 -outform DER
// -nocrypt -in client.key` writes, mode 0600) and root.crt (roots: for
// each of the app's served chains its top certificate, see ServedRoots;
// at least one). It refuses, with an error naming the file and wrapping
// fs.ErrExist, when any of the four exists, and writes nothing then: a
// key is never overwritten. A revoked or expired certificate is refused.
func (ca *CA) Download(id, dir, prefix string, roots []*x509.Certificate) error {
	c, err := ca.Get(id)
	if err != nil {
		return err
	}
	if err := statusError(&c); err != nil {
		return err
	}
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	if len(roots) == 0 {
		return fmt.Errorf("no root for %s%s: the app %s serves no certificate chain", prefix, FileRootCA, c.App)
	}
	out, err := ca.downloadFiles(&c, roots)
	if err != nil {
		return err
	}
	return ca.write(dir, prefix, out)
}

func checkPrefix(prefix string) error {
	if strings.ContainsAny(prefix, `/\`) || prefix == "." || prefix == ".." {
		return fmt.Errorf("prefix %q: a file name prefix, without '/'", prefix)
	}
	return nil
}

// write writes out into dir, each name after prefix, all or none.
func (ca *CA) write(dir, prefix string, out []outFile) error {
	for i := range out {
		out[i].path = filepath.Join(dir, prefix+out[i].path)
		if err := refuseExisting(out[i].path); err != nil {
			return err
		}
	}
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	for i, f := range out {
		if err := ca.fw.create(f.path, f.data, f.mode); err != nil {
			for _, done := range out[:i] {
				_ = os.Remove(done.path) // all four or none
			}
			return err
		}
	}
	return nil
}

// DownloadRecord writes the files of r, the record of a certificate this
// CA's state_dir does not hold (issued by another router of a shared
// space, SPEC.md section 14), as Download does. It refuses as Download
// does, and a record without the certificate and key, or whose
// certificate the space CA did not sign.
func (ca *CA) DownloadRecord(r *Record, dir, prefix string, roots []*x509.Certificate) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	out, err := ca.recordFiles(r, roots)
	if err != nil {
		return err
	}
	return ca.write(dir, prefix, out)
}

// RecordFiles returns the four files of r in memory, as Files does for
// a certificate of the state_dir, refusing as DownloadRecord does.
func (ca *CA) RecordFiles(r *Record, roots []*x509.Certificate) ([]File, error) {
	out, err := ca.recordFiles(r, roots)
	if err != nil {
		return nil, err
	}
	return toFiles(out), nil
}

func (ca *CA) recordFiles(r *Record, roots []*x509.Certificate) ([]outFile, error) {
	c := r.Client
	c.Status = c.StatusAt(ca.now())
	if err := statusError(&c); err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("no root for %s: the app %s serves no certificate chain", FileRootCA, c.App)
	}
	if r.CertPEM == nil {
		return nil, fmt.Errorf("client certificate %s: its record in etcd holds no certificate and key (written before they were shared): download it where it was issued, or issue a new one", c.ID)
	}
	leaf, err := r.leaf()
	if err != nil {
		return nil, fmt.Errorf("client certificate %s: its record in etcd is refused: %w", c.ID, err)
	}
	if chain := ca.issuerChain(c.Issuer); len(chain) > 0 {
		if err := leaf.CheckSignatureFrom(chain[0]); err != nil {
			return nil, fmt.Errorf("client certificate %s: its record in etcd is refused: the certificate is not signed by the CA of its issuer %s: %w", c.ID, c.Issuer, err)
		}
	}
	return ca.buildFiles(&c, r.CertPEM, r.KeyPEM, "the key of its record", roots)
}

// File is one file of a client certificate's download.
type File struct {
	Name string // FileCert, FileKey, FilePKCS8 or FileRootCA
	Mode fs.FileMode
	Data []byte
}

// Files returns the four files Download writes for certificate id, in
// memory: for the admin API's download (SPEC.md section 13), which sends
// them as one tar. It refuses as Download does: an *UnknownIDError, a
// *StatusError for a revoked or expired certificate, or an error when
// roots is empty.
func (ca *CA) Files(id string, roots []*x509.Certificate) ([]File, error) {
	out, err := ca.files(id, roots)
	if err != nil {
		return nil, err
	}
	return toFiles(out), nil
}

func toFiles(out []outFile) []File {
	files := make([]File, len(out))
	for i, f := range out {
		files[i] = File{Name: f.path, Mode: f.mode, Data: f.data}
	}
	return files
}

// StatusError refuses a certificate whose status forbids the operation:
// revoked or expired.
type StatusError struct {
	ID     string
	Status Status    // StatusRevoked or StatusExpired
	At     time.Time // when it was revoked, or expired
}

func (e *StatusError) Error() string {
	verb := "expired on"
	if e.Status == StatusRevoked {
		verb = "was revoked on"
	}
	return fmt.Sprintf("client certificate %s %s %s", e.ID, verb, e.At.UTC().Format(time.RFC3339))
}

// files checks certificate id and returns its four files, named without
// a prefix.
func (ca *CA) files(id string, roots []*x509.Certificate) ([]outFile, error) {
	c, err := ca.Get(id)
	if err != nil {
		return nil, err
	}
	if err := statusError(&c); err != nil {
		return nil, err
	}
	if len(roots) == 0 {
		return nil, fmt.Errorf("no root for %s: the app %s serves no certificate chain", FileRootCA, c.App)
	}
	return ca.downloadFiles(&c, roots)
}

// statusError refuses a revoked or expired certificate.
func statusError(c *Client) error {
	switch c.Status {
	case StatusRevoked:
		return &StatusError{ID: c.ID, Status: StatusRevoked, At: c.RevokedAt}
	case StatusExpired:
		return &StatusError{ID: c.ID, Status: StatusExpired, At: c.NotAfter}
	}
	return nil
}

type outFile struct {
	path string // the name in dir, until Download joins dir and prefix
	data []byte
	mode fs.FileMode
}

// downloadFiles reads c's certificate and key and returns the four files.
func (ca *CA) downloadFiles(c *Client, roots []*x509.Certificate) ([]outFile, error) {
	dir := filepath.Join(ca.clientsDir(), c.ID)
	certPEM, err := os.ReadFile(filepath.Join(dir, FileCert))
	if err != nil {
		return nil, fmt.Errorf("reading the client certificate: %w", err)
	}
	keyPath := filepath.Join(dir, FileKey)
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("reading the client key: %w", err)
	}
	return ca.buildFiles(c, certPEM, keyPEM, keyPath, roots)
}

// buildFiles returns the four files of c from its certificate and key,
// PEM (keyFrom names where the key came from, for errors): the one
// build of a download, from the state_dir or from a shared record.
func (ca *CA) buildFiles(c *Client, certPEM, keyPEM []byte, keyFrom string, roots []*x509.Certificate) ([]outFile, error) {
	chain := ca.issuerChain(c.Issuer)
	if chain == nil {
		return nil, fmt.Errorf("client certificate %s was issued by a CA that is no longer configured (SHA-256 %s)", c.ID, c.Issuer)
	}
	block, _ := pem.Decode(keyPEM)
	if block == nil || block.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PEM PRIVATE KEY block", keyFrom)
	}
	if _, err := x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %w", keyFrom, err)
	}
	certPEM = certPEM[:len(certPEM):len(certPEM)] // appends copy: the caller's slice stays
	for _, ca := range chain {
		certPEM = append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})...)
	}
	var rootPEM []byte
	for _, r := range roots {
		rootPEM = append(rootPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.Raw})...)
	}
	return []outFile{
		{FileCert, certPEM, publicMode},
		{FileKey, keyPEM, privateMode},
		// The PEM block's bytes are the PKCS#8 DER Go's
		// x509.MarshalPKCS8PrivateKey wrote, which for an ECDSA key is
		// what OpenSSL writes: the curve in the AlgorithmIdentifier, the
		// public key in the ECPrivateKey, no parameters repeated there.
		{FilePKCS8, block.Bytes, privateMode},
		{FileRootCA, rootPEM, publicMode},
	}, nil
}

package spaceca

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Options says where a space CA is and how it judges time. Paths are used
// as given (the caller resolves them against the config file).
type Options struct {
	// CertPath is the CA certificate (PEM), optionally followed by the
	// chain above it, which Download appends to client.crt. Required.
	CertPath string
	// KeyPath is the CA's private key (PEM: PKCS#8, SEC 1 or PKCS#1,
	// unencrypted). Required.
	KeyPath string
	// Previous are older CAs whose client certificates stay trusted until
	// their RetireAt (SPEC.md section 12.3).
	Previous []Previous
	// StateDir is where issued certificates are kept; created with mode
	// 0700 if missing. Required.
	StateDir string
	// Space is the space name: the trust domain of the URI SAN
	// spiffe://<space>/apps/<app>/clients/<id> (lower-case letters,
	// digits, '.', '-' and '_'). Required.
	Space string
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Previous is an older CA certificate still trusted until RetireAt.
type Previous struct {
	CertPath string    // PEM: the CA certificate, optionally its chain
	RetireAt time.Time // required; a time already past retires the CA at once
}

// CA is an open space CA: its certificate and key, its previous CAs, and
// the state directory with the certificates it issued. Its methods are
// safe for concurrent use. The state directory layout:
//
//	STATE_DIR/                  0700
//	  .lock                     0600 writers hold flock(2) on it
//	  generation                0600 a decimal counter every change bumps
//	  clients/                  0700
//	    ID/                     0700 renamed into place whole
//	      client.crt            0600 the certificate (PEM)
//	      client.key            0600 its key (PEM, PKCS#8)
//	      meta.json             0600 id, app, name, serial, created,
//	                                 not_after, issuer, successor_of,
//	                                 revoked_at
//	    .tmp-ID-*/              a certificate being written; the next
//	                            writer removes one a crash left
//
// ID is 16 lower-case hex digits.
type CA struct {
	cert     *x509.Certificate   // the current CA
	chain    []*x509.Certificate // the current CA file: cert, then its chain
	key      crypto.Signer
	previous []caFile
	space    string
	stateDir string
	now      func() time.Time
	fw       files
	warnings []string

	// mu serializes this process's writers (flock serializes processes)
	// and Refresh.
	mu   sync.Mutex
	snap atomic.Pointer[snapshot] // the state last read; never nil after Open
}

// caFile is a CA certificate file: the CA first, then its chain.
type caFile struct {
	certs    []*x509.Certificate
	retireAt time.Time // zero for the current CA
}

// Open loads the CA of o and the state directory (creating it if missing)
// and checks them. An error names the file at fault: a missing or
// unreadable CA file, a key that does not match the certificate, a
// certificate that is not a CA, a previous CA without retire time, a
// state file that cannot be read. Non-fatal findings (a key or directory
// other users may read, a CA that expired or a previous CA already
// retired) are in Warnings.
func Open(o Options) (*CA, error) {
	if err := checkSpace(o.Space); err != nil {
		return nil, err
	}
	if o.CertPath == "" || o.KeyPath == "" || o.StateDir == "" {
		return nil, errors.New("the space CA needs cert, key and state_dir")
	}
	ca := &CA{space: o.Space, stateDir: o.StateDir, now: o.Now}
	if ca.now == nil {
		ca.now = time.Now
	}
	if err := ca.loadCA(o); err != nil {
		return nil, err
	}
	if err := ca.loadPrevious(o.Previous); err != nil {
		return nil, err
	}
	if err := mkdirPrivate(ca.clientsDir()); err != nil {
		return nil, err
	}
	if w := looseMode(ca.stateDir, "the state directory"); w != "" {
		ca.warnings = append(ca.warnings, w)
	}
	if _, err := ca.Refresh(); err != nil {
		return nil, err
	}
	return ca, nil
}

func (ca *CA) loadCA(o Options) error {
	certs, err := readCertificates(o.CertPath)
	if err != nil {
		return fmt.Errorf("reading the CA certificate: %w", err)
	}
	key, err := readKey(o.KeyPath)
	if err != nil {
		return fmt.Errorf("reading the CA key: %w", err)
	}
	if err := checkCA(certs[0], key, o.CertPath, o.KeyPath); err != nil {
		return err
	}
	ca.cert, ca.chain, ca.key = certs[0], certs, key
	if w := looseMode(o.KeyPath, "the CA key"); w != "" {
		ca.warnings = append(ca.warnings, w)
	}
	if now := ca.now(); !now.Before(ca.cert.NotAfter) {
		ca.warnings = append(ca.warnings, fmt.Sprintf("the CA certificate %s expired on %s: no certificate can be issued until it is rotated",
			o.CertPath, ca.cert.NotAfter.UTC().Format(time.RFC3339)))
	}
	return nil
}

func (ca *CA) loadPrevious(prev []Previous) error {
	now := ca.now()
	for _, p := range prev {
		certs, err := readCertificates(p.CertPath)
		if err != nil {
			return fmt.Errorf("reading a previous CA certificate: %w", err)
		}
		if err := checkCACert(certs[0], p.CertPath); err != nil {
			return err
		}
		if p.RetireAt.IsZero() {
			return fmt.Errorf("%s: a previous CA needs a retire time", p.CertPath)
		}
		if !now.Before(p.RetireAt) {
			ca.warnings = append(ca.warnings, fmt.Sprintf("the previous CA %s was retired at %s: its client certificates are refused",
				p.CertPath, p.RetireAt.UTC().Format(time.RFC3339)))
		}
		ca.previous = append(ca.previous, caFile{certs: certs, retireAt: p.RetireAt})
	}
	return nil
}

// checkSpace accepts a space name usable as a SPIFFE trust domain.
func checkSpace(space string) error {
	if space == "" {
		return errors.New("the space has no name: set space in the config; client certificates carry it in spiffe://SPACE/apps/APP/clients/ID")
	}
	for i := 0; i < len(space); i++ {
		c := space[i]
		if ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || c == '.' || c == '-' || c == '_' {
			continue
		}
		return fmt.Errorf("space %q cannot be the trust domain of spiffe://SPACE/... client certificate names: use lower-case letters, digits, '.', '-' and '_'", space)
	}
	if len(space) > 255 {
		return fmt.Errorf("space %q: longer than 255 characters", space[:32]+"...")
	}
	return nil
}

// Warnings returns the non-fatal findings of Open, one sentence each.
func (ca *CA) Warnings() []string { return append([]string(nil), ca.warnings...) }

// Certificate returns the current CA certificate: the one that signs.
func (ca *CA) Certificate() *x509.Certificate { return ca.cert }

// Anchors returns the CAs whose client certificates the space trusts: the
// current one (never retired), then the previous ones with their retire
// times, retired or not (VerifyClient judges retirement at its time).
func (ca *CA) Anchors() []Anchor {
	out := []Anchor{{Cert: ca.cert}}
	for _, p := range ca.previous {
		out = append(out, Anchor{Cert: p.certs[0], RetireAt: p.retireAt})
	}
	return out
}

// StateDir returns the state directory.
func (ca *CA) StateDir() string { return ca.stateDir }

func (ca *CA) clientsDir() string     { return filepath.Join(ca.stateDir, "clients") }
func (ca *CA) generationFile() string { return filepath.Join(ca.stateDir, "generation") }
func (ca *CA) lockFile() string       { return filepath.Join(ca.stateDir, ".lock") }

// fingerprint is the hex SHA-256 of a certificate's DER, how meta.json
// names the issuing CA.
func fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// issuerChain returns the CA file (the CA, then its chain) whose CA has
// the fingerprint fp, or nil.
func (ca *CA) issuerChain(fp string) []*x509.Certificate {
	if fingerprint(ca.cert) == fp {
		return ca.chain
	}
	for _, p := range ca.previous {
		if fingerprint(p.certs[0]) == fp {
			return p.certs
		}
	}
	return nil
}

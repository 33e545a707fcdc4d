package acme

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/caddyserver/certmagic"
)

// The issuer's roots of the tls: auto certificates: what root.crt of a
// client certificate's download holds for a tls: auto app (SPEC.md section
// 11.3), so the client can verify the router with verify-full. An ACME
// chain ends below its root, so the root is the one the chain verifies to
// with the verify-full pool (acme.trusted_roots, else the system's).

// NoRootError: no certificate of the domains has a root to give: none
// obtained yet, or none verifies with the pool.
type NoRootError struct {
	Domains []string
	Why     string // why the last domain gave none
}

func (e *NoRootError) Error() string {
	return fmt.Sprintf("no root for the ACME certificates of %v: %s", e.Domains, e.Why)
}

// chainRoot returns the root chain (leaf first) verifies to for name at
// now with roots (nil: the system's).
func chainRoot(chain []*x509.Certificate, name string, roots *x509.CertPool, now time.Time) (*x509.Certificate, error) {
	if len(chain) == 0 {
		return nil, errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: inter,
		CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, err
	}
	v := chains[0]
	return v[len(v)-1], nil
}

// appendRoot appends root unless roots holds it already.
func appendRoot(roots []*x509.Certificate, root *x509.Certificate) []*x509.Certificate {
	for _, r := range roots {
		if r.Equal(root) {
			return roots
		}
	}
	return append(roots, root)
}

// Roots returns the roots the served certificates of domains verify to
// with the verify-full pool, each once, in the order of domains: a domain
// without a certificate yet is skipped. A *NoRootError when none gives
// one (none obtained yet, or no chain verifies: the error says why).
func (m *Manager) Roots(domains []string) ([]*x509.Certificate, error) {
	now := m.opts.Now()
	var roots []*x509.Certificate
	why := "no certificate obtained yet"
	for _, name := range domains {
		c, ok := m.current(normalizeName(name))
		if !ok {
			continue
		}
		chain, err := parseDER(c.Certificate.Certificate)
		if err == nil {
			var root *x509.Certificate
			if root, err = chainRoot(chain, normalizeName(name), m.roots, now); err == nil {
				roots = appendRoot(roots, root)
				continue
			}
		}
		why = fmt.Sprintf("the chain of %s does not verify with acme.trusted_roots or the system's roots: %v", name, err)
	}
	if len(roots) == 0 {
		return nil, &NoRootError{Domains: domains, Why: why}
	}
	return roots, nil
}

// RootsFromStorage is Roots from what opts.Storage holds, without
// starting a Manager: for spacerouter ca download. Only the certificates
// of opts.Directory's CA are seen.
func RootsFromStorage(opts Options, domains []string, now time.Time) ([]*x509.Certificate, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	pool, err := loadRoots(opts.TrustedRootsFile)
	if err != nil {
		return nil, err
	}
	storage := &certmagic.FileStorage{Path: opts.Storage}
	issuerKey := (&certmagic.ACMEIssuer{CA: opts.Directory}).IssuerKey()
	var roots []*x509.Certificate
	why := "no certificate obtained yet in " + opts.Storage
	for _, name := range domains {
		key := certmagic.StorageKeys.SiteCert(issuerKey, normalizeName(name))
		b, err := storage.Load(context.Background(), key)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", storage.Filename(key), err)
		}
		var ders [][]byte
		for {
			var blk *pem.Block
			if blk, b = pem.Decode(b); blk == nil {
				break
			}
			if blk.Type == "CERTIFICATE" {
				ders = append(ders, blk.Bytes)
			}
		}
		chain, err := parseDER(ders)
		if err == nil {
			var root *x509.Certificate
			if root, err = chainRoot(chain, normalizeName(name), pool, now); err == nil {
				roots = appendRoot(roots, root)
				continue
			}
		}
		why = fmt.Sprintf("the chain of %s in %s does not verify with acme.trusted_roots or the system's roots: %v", name, storage.Filename(key), err)
	}
	if len(roots) == 0 {
		return nil, &NoRootError{Domains: domains, Why: why}
	}
	return roots, nil
}

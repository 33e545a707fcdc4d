package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// readPEM reads the PEM file at path once regularFile has found it usable.
// An unreadable file is a problem naming it (the os error does).
func (d *decoder) readPEM(n *yaml.Node, key, path string) ([]byte, bool) {
	if !d.regularFile(n, key, path) {
		return nil, false
	}
	data, err := os.ReadFile(path)
	if err != nil {
		d.problem(n, key, "%v", err)
		return nil, false
	}
	return data, true
}

// pemCerts reads and parses every CERTIFICATE block of the PEM file at
// path; want says what the file should hold, for the message when it has
// no certificate. Other blocks are skipped, as crypto/tls does. It returns
// nil after a problem.
func (d *decoder) pemCerts(n *yaml.Node, key, path, want string) []*x509.Certificate {
	data, ok := d.readPEM(n, key, path)
	if !ok {
		return nil
	}
	var certs []*x509.Certificate
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			d.problem(n, key, "parsing certificate %d of %q: %v", len(certs)+1, path, err)
			return nil
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		d.problem(n, key, "no certificate in %q: want %s", path, want)
		return nil
	}
	return certs
}

// isCA reports whether cert may sign certificates: basic constraints
// present with CA:true (RFC 5280 section 4.2.1.9).
func isCA(cert *x509.Certificate) bool {
	return cert.BasicConstraintsValid && cert.IsCA
}

// minRSABits is the smallest RSA modulus a space CA may have.
const minRSABits = 2048

// caKeyProblem checks the public key of a space CA: ECDSA P-256 or RSA of
// at least minRSABits (SPEC.md section 11.3). It returns "" when it is one.
func caKeyProblem(cert *x509.Certificate) string {
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if pub.Curve == elliptic.P256() {
			return ""
		}
		return "an ECDSA " + pub.Curve.Params().Name + " key"
	case *rsa.PublicKey:
		if pub.N.BitLen() >= minRSABits {
			return ""
		}
		return fmt.Sprintf("a %d-bit RSA key", pub.N.BitLen())
	case ed25519.PublicKey:
		return "an Ed25519 key"
	}
	return fmt.Sprintf("a %T key", cert.PublicKey)
}

// Errors of parseKey: no private key block, or one that does not parse.
var (
	errNoKey  = errors.New("no private key")
	errBadKey = errors.New("bad private key")
)

// parseKey returns the first private key of the PEM data: PKCS#8, PKCS#1
// (RSA) or SEC 1 (ECDSA), as crypto/tls reads them.
func parseKey(data []byte) (crypto.Signer, error) {
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return nil, errNoKey
		}
		if block.Type != "PRIVATE KEY" && !strings.HasSuffix(block.Type, " PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
			if s, ok := k.(crypto.Signer); ok {
				return s, nil
			}
			return nil, errBadKey // an X25519 key, which cannot sign
		}
		if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
			return k, nil
		}
		return nil, errBadKey
	}
}

// matches reports whether key is the private key of cert.
func matches(key crypto.Signer, cert *x509.Certificate) bool {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(cert.PublicKey)
}

// checkCAValidity warns about a CA certificate outside its validity
// period: client certificates it issued no longer verify, but the operator
// may be rotating CAs, so it is not an error. what names the certificate.
func (d *decoder) checkCAValidity(n *yaml.Node, key, what string, cert *x509.Certificate) {
	switch now := time.Now(); {
	case now.After(cert.NotAfter):
		d.warn(n, key, "%s expired on %s: client certificates it issued are refused",
			what, cert.NotAfter.UTC().Format(time.DateOnly))
	case now.Before(cert.NotBefore):
		d.warn(n, key, "%s is not valid before %s: client certificates it issued are refused until then",
			what, cert.NotBefore.UTC().Format(time.DateTime))
	}
}

// anchorBundle loads a PEM bundle of trust anchors (acme.trusted_roots, a
// dyno_tls.trust bundle): at least one certificate, of any kind. A CA is
// not required: crypto/x509 takes any certificate of the root pool as the
// end of a chain, so a dyno's self-signed certificate may be its own
// anchor. A certificate outside its validity period is a warning (an old
// CA may sit beside the new one while certificates move over), as nothing
// chains to it then; effect says what fails. It reports whether the
// bundle loaded.
func (d *decoder) anchorBundle(n *yaml.Node, key, path, want, effect string) bool {
	certs := d.pemCerts(n, key, path, want)
	now := time.Now()
	for i, cert := range certs {
		what := fmt.Sprintf("certificate %d of %q (CN %q)", i+1, path, cert.Subject.CommonName)
		switch {
		case now.After(cert.NotAfter):
			d.warn(n, key, "%s expired on %s: %s", what, cert.NotAfter.UTC().Format(time.DateOnly), effect)
		case now.Before(cert.NotBefore):
			d.warn(n, key, "%s is not valid before %s: %s until then", what, cert.NotBefore.UTC().Format(time.DateTime), effect)
		}
	}
	return certs != nil
}

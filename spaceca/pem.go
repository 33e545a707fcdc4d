package spaceca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// minRSABits is the smallest RSA CA key Open accepts.
const minRSABits = 2048

// readCertificates returns the PEM certificates of path in file order; the
// file must hold at least one. Blocks of other types are skipped.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var certs []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", path, len(certs)+1, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no PEM CERTIFICATE block", path)
	}
	return certs, nil
}

// readKey returns the first private key of the PEM file path (PKCS#8,
// SEC 1 or PKCS#1). Encrypted keys are refused: the router starts
// unattended.
func readKey(path string) (crypto.Signer, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil, fmt.Errorf("%s: no PEM private key block", path)
		}
		var key any
		switch {
		case b.Type == "ENCRYPTED PRIVATE KEY" || b.Headers["Proc-Type"] != "":
			return nil, fmt.Errorf("%s: the key is encrypted: give an unencrypted key (mode 0600)", path)
		case b.Type == "PRIVATE KEY":
			key, err = x509.ParsePKCS8PrivateKey(b.Bytes)
		case b.Type == "EC PRIVATE KEY":
			key, err = x509.ParseECPrivateKey(b.Bytes)
		case b.Type == "RSA PRIVATE KEY":
			key, err = x509.ParsePKCS1PrivateKey(b.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		s, ok := key.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("%s: a %T cannot sign", path, key)
		}
		return s, nil
	}
}

// checkCA returns an error naming the file when cert is not a CA the space
// may use or key is not its key.
func checkCA(cert *x509.Certificate, key crypto.Signer, certPath, keyPath string) error {
	if err := checkCACert(cert, certPath); err != nil {
		return err
	}
	if err := checkKeyType(cert.PublicKey, certPath); err != nil {
		return err
	}
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(key.Public()) {
		return fmt.Errorf("%s: the key does not match the CA certificate %s", keyPath, certPath)
	}
	return nil
}

// checkCACert returns an error naming path when cert may not issue
// certificates.
func checkCACert(cert *x509.Certificate, path string) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return fmt.Errorf("%s: not a CA certificate (no basic constraints CA:TRUE)", path)
	}
	if cert.KeyUsage != 0 && cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return fmt.Errorf("%s: the CA certificate's key usage lacks keyCertSign", path)
	}
	return nil
}

// checkKeyType accepts the CA key types of SPEC.md section 11.3: ECDSA
// P-256, or RSA of at least minRSABits.
func checkKeyType(pub crypto.PublicKey, path string) error {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("%s: an ECDSA %s key: the space CA is ECDSA P-256 or RSA", path, k.Curve.Params().Name)
		}
	case *rsa.PublicKey:
		if k.N.BitLen() < minRSABits {
			return fmt.Errorf("%s: an RSA key of %d bits: want at least %d", path, k.N.BitLen(), minRSABits)
		}
	default:
		return fmt.Errorf("%s: a %T key: the space CA is ECDSA P-256 or RSA", path, pub)
	}
	return nil
}

// ServedRoots returns, for each PEM chain file, its top certificate: the
// last certificate of the file, which is the self-signed root when the
// file includes it. These are what a client needs to verify the router
// (the root.crt of Download). Duplicates are kept once, in file order.
func ServedRoots(chainFiles ...string) ([]*x509.Certificate, error) {
	var roots []*x509.Certificate
	for _, path := range chainFiles {
		certs, err := readCertificates(path)
		if err != nil {
			return nil, fmt.Errorf("reading the served chain: %w", err)
		}
		roots = appendUnique(roots, certs[len(certs)-1])
	}
	if len(roots) == 0 {
		return nil, errors.New("no served chain to take a root from")
	}
	return roots, nil
}

// appendUnique appends c unless certs already holds the same certificate.
func appendUnique(certs []*x509.Certificate, c *x509.Certificate) []*x509.Certificate {
	for _, have := range certs {
		if have.Equal(c) {
			return certs
		}
	}
	return append(certs, c)
}

package spaceca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"
)

// CAYears is how long a CA made by Init is valid. Ten years: the CA is
// rotated on purpose (space_ca.previous, SPEC.md section 12.3), not by
// running out, and a client certificate is never valid past its CA.
const CAYears = 10

// backdate is how far before its creation a certificate becomes valid, so
// that a router on a host whose clock is a little behind still accepts a
// certificate issued a moment ago.
const backdate = 5 * time.Minute

// Init makes a new space CA: an ECDSA P-256 key written to keyPath (PEM,
// PKCS#8, mode 0600) and a self-signed CA certificate for it written to
// certPath (PEM), valid for CAYears from now, named "<space> space CA".
// The space name must be one Open accepts.
// Missing parent directories are created with mode 0700. It refuses, with
// an error naming the file and wrapping fs.ErrExist, when either file
// exists: a CA key is never overwritten. A crash leaves no half-written
// file.
func Init(certPath, keyPath, space string) (*x509.Certificate, error) {
	return initCA(files{}, certPath, keyPath, space, time.Now())
}

func initCA(fw files, certPath, keyPath, space string, now time.Time) (*x509.Certificate, error) {
	if err := checkSpace(space); err != nil {
		return nil, err
	}
	if certPath == "" || keyPath == "" {
		return nil, errors.New("the CA needs a certificate path and a key path")
	}
	if filepath.Clean(certPath) == filepath.Clean(keyPath) {
		return nil, fmt.Errorf("the CA certificate and key paths are both %s", certPath)
	}
	for _, p := range []string{keyPath, certPath} {
		if err := refuseExisting(p); err != nil {
			return nil, err
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("making the CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now = now.UTC().Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: space + " space CA", Organization: []string{"spacerouter"}},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.AddDate(CAYears, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // it signs client certificates only
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parsing the new CA certificate: %w", err)
	}
	keyPEM, err := pkcs8PEM(key)
	if err != nil {
		return nil, err
	}
	for _, p := range []string{keyPath, certPath} {
		if err := mkdirPrivate(filepath.Dir(p)); err != nil {
			return nil, err
		}
	}
	if err := fw.create(keyPath, keyPEM, privateMode); err != nil {
		return nil, err
	}
	if err := fw.create(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), publicMode); err != nil {
		_ = os.Remove(keyPath) // the key of no certificate
		return nil, err
	}
	return cert, nil
}

// randomSerial returns a random positive serial number of up to 128 bits
// (RFC 5280 section 4.1.2.2 allows 20 octets).
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("making a serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

// pkcs8PEM returns key as a PEM "PRIVATE KEY" block (PKCS#8).
func pkcs8PEM(key any) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encoding the key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

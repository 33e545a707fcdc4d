package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"time"
)

// expiryWindow is how close to its end a certificate gets a warning.
const expiryWindow = 75 * 24 * time.Hour

// servedCert is one loaded certificate chain of an app.
type servedCert struct {
	cert  *tls.Certificate // the whole chain, Leaf parsed
	ecdsa bool             // ECDSA or Ed25519 key, for the ECDSA suites
	file  string           // the PEM file, for warnings
}

// loadCerts loads every chain, in file order.
func loadCerts(files []CertFiles) ([]servedCert, error) {
	out := make([]servedCert, 0, len(files))
	for _, f := range files {
		c, err := tls.LoadX509KeyPair(f.Cert, f.Key)
		if err != nil {
			return nil, fmt.Errorf("loading certificate %s: %w", f.Cert, err)
		}
		if c.Leaf == nil { // x509keypairleaf=0
			if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
				return nil, fmt.Errorf("parsing certificate %s: %w", f.Cert, err)
			}
		}
		alg := c.Leaf.PublicKeyAlgorithm
		out = append(out, servedCert{cert: &c, ecdsa: alg == x509.ECDSA || alg == x509.Ed25519, file: f.Cert})
	}
	return out, nil
}

// expiryWarning returns a warning when c has expired or expires within
// expiryWindow of now.
func expiryWarning(c servedCert, now time.Time) (string, bool) {
	end := c.cert.Leaf.NotAfter
	left := end.Sub(now)
	date := end.UTC().Format(time.DateOnly)
	switch {
	case left >= expiryWindow:
		return "", false
	case left <= 0:
		return fmt.Sprintf("certificate %s expired on %s", c.file, date), true
	}
	days := int(math.Ceil(left.Hours() / 24))
	unit := "days"
	if days == 1 {
		unit = "day"
	}
	return fmt.Sprintf("certificate %s expires %s (in %d %s)", c.file, date, days, unit), true
}

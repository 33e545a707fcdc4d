package spaceca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ValidMonths is how long a client certificate is valid: 13 calendar
// months from its creation (time.AddDate, so 31 January runs to 3 or 2
// March of the next year but one), never past the CA's own end.
const ValidMonths = 13

// maxNameLen is the longest certificate name: the upper bound of a common
// name (RFC 5280 appendix A, ub-common-name).
const maxNameLen = 64

// update runs fn on the state freshly read from disk while holding the
// state directory's lock, then bumps the generation (when fn asks for it,
// having written something) and stores the new state. Every write of the state goes through
// it, so the ca subcommand and routers sharing the directory never lose
// each other's changes.
func (ca *CA) update(fn func(s *snapshot) (bump bool, err error)) error {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	unlock, err := lockDir(ca.lockFile())
	if err != nil {
		return err
	}
	defer unlock()
	ca.removeTemp()
	gen, err := ca.readGeneration()
	if err != nil {
		return err
	}
	s, err := ca.scan(gen)
	if err != nil {
		return err
	}
	ca.snap.Store(s)
	bump, err := fn(s)
	if bump {
		// Bumped even after an error: a part may have been written.
		if werr := ca.fw.replace(ca.generationFile(), []byte(strconv.FormatUint(gen+1, 10)+"\n"), privateMode); werr != nil {
			return errors.Join(err, werr)
		}
		if _, rerr := ca.refreshLocked(); rerr != nil {
			return errors.Join(err, rerr)
		}
	}
	return err
}

// removeTemp removes what a writer that crashed left in clients/; only
// the lock holder writes there, so every temporary entry is stale.
func (ca *CA) removeTemp() {
	entries, _ := os.ReadDir(ca.clientsDir())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".tmp-") {
			_ = os.RemoveAll(filepath.Join(ca.clientsDir(), e.Name()))
		}
	}
}

// Issue issues a client certificate for app named name ("" means the app
// name) and returns it: a new ECDSA P-256 key, a random 128-bit serial,
// CN = name, extended key usage clientAuth, the URI SAN
// spiffe://<space>/apps/<app>/clients/<id>, valid ValidMonths from now,
// signed by the current CA. It is in the state directory (and so in force
// for a router sharing it) when Issue returns.
func (ca *CA) Issue(app, name string) (Client, error) {
	if name == "" {
		name = app
	}
	if err := checkApp(app); err != nil {
		return Client{}, err
	}
	if err := CheckName(name); err != nil {
		return Client{}, err
	}
	var c Client
	err := ca.update(func(s *snapshot) (bool, error) {
		var err error
		c, err = ca.issueLocked(s, app, name, "")
		return err == nil, err
	})
	return c, err
}

// checkApp accepts an app name that can sit in a URI path: the config's
// app names are ^[a-z][a-z0-9-]{2,29}$.
func checkApp(app string) error {
	if app == "" {
		return errors.New("no app given")
	}
	for i := 0; i < len(app); i++ {
		if c := app[i]; !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return fmt.Errorf("app %q: not an app name (lower-case letters, digits and '-')", app)
		}
	}
	return nil
}

// CheckName accepts a client certificate name: 1 to 64 of A-Z a-z 0-9
// . _ - @, which reads the same in the certificate, in ca list's columns
// and in a log.
func CheckName(name string) error {
	ok := name != "" && len(name) <= maxNameLen
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-@", c) >= 0
	}
	if !ok {
		return fmt.Errorf("name %q: use 1 to %d of A-Z a-z 0-9 . _ - @", name, maxNameLen)
	}
	return nil
}

// issueLocked makes, signs and stores one certificate; the caller holds
// the lock and s is the state on disk.
func (ca *CA) issueLocked(s *snapshot, app, name, successorOf string) (Client, error) {
	now := ca.now().UTC().Truncate(time.Second)
	if !now.Before(ca.cert.NotAfter) {
		return Client{}, fmt.Errorf("the CA certificate expired on %s: rotate it (space_ca.previous) before issuing",
			ca.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	id, err := ca.newID(s)
	if err != nil {
		return Client{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return Client{}, fmt.Errorf("making a client key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return Client{}, err
	}
	c := Client{ID: id, App: app, Name: name, Serial: serial, Created: now,
		NotAfter: now.AddDate(0, ValidMonths, 0), Issuer: fingerprint(ca.cert), SuccessorOf: successorOf}
	if c.NotAfter.After(ca.cert.NotAfter) {
		c.NotAfter = ca.cert.NotAfter.UTC() // a CA never vouches past its own end
	}
	der, err := ca.sign(&c, key)
	if err != nil {
		return Client{}, err
	}
	if err := ca.store(&c, der, key); err != nil {
		return Client{}, err
	}
	c.Status = c.StatusAt(now)
	return c, nil
}

// newID returns an ID that neither s nor the directory holds.
func (ca *CA) newID(s *snapshot) (string, error) {
	for range 8 {
		var b [idLen / 2]byte
		if _, err := rand.Read(b[:]); err != nil {
			return "", fmt.Errorf("making an id: %w", err)
		}
		id := hex.EncodeToString(b[:])
		if _, taken := s.byID[id]; taken {
			continue
		}
		if _, err := os.Lstat(filepath.Join(ca.clientsDir(), id)); errors.Is(err, fs.ErrNotExist) {
			return id, nil
		}
	}
	return "", errors.New("making an id: every one tried is taken")
}

// SPIFFEID returns the URI SAN of a client certificate.
func SPIFFEID(space, app, id string) *url.URL {
	return &url.URL{Scheme: "spiffe", Host: space, Path: "/apps/" + app + "/clients/" + id}
}

func (ca *CA) sign(c *Client, key *ecdsa.PrivateKey) ([]byte, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          c.Serial,
		Subject:               pkix.Name{CommonName: c.Name, OrganizationalUnit: []string{c.App}, Organization: []string{ca.space}},
		NotBefore:             c.Created.Add(-backdate),
		NotAfter:              c.NotAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		URIs:                  []*url.URL{SPIFFEID(ca.space, c.App, c.ID)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return nil, fmt.Errorf("signing the client certificate: %w", err)
	}
	return der, nil
}

// store writes the certificate's directory under a temporary name and
// renames it into place, so a crash leaves the whole certificate or none.
func (ca *CA) store(c *Client, der []byte, key *ecdsa.PrivateKey) (err error) {
	keyPEM, err := pkcs8PEM(key)
	if err != nil {
		return err
	}
	metaJSON, err := json.MarshalIndent(toMeta(c), "", "  ")
	if err != nil {
		return fmt.Errorf("encoding the certificate state: %w", err)
	}
	tmp, err := os.MkdirTemp(ca.clientsDir(), ".tmp-"+c.ID+"-")
	if err != nil {
		return fmt.Errorf("writing the client certificate: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp)
		}
	}()
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"client.crt", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
		{"client.key", keyPEM},
		{"meta.json", append(metaJSON, '\n')},
	} {
		if err = ca.fw.replace(filepath.Join(tmp, f.name), f.data, privateMode); err != nil {
			return err
		}
	}
	final := filepath.Join(ca.clientsDir(), c.ID)
	if err = os.Rename(tmp, final); err != nil {
		return fmt.Errorf("writing the client certificate: %w", err)
	}
	return syncDir(ca.clientsDir())
}

// Revoke revokes the certificate id: recorded in the state directory, and
// so refused by a router sharing it from its next Refresh. Revoking a
// revoked certificate keeps its first revocation time; changed says
// whether this call revoked it. An unknown id is an *UnknownIDError.
func (ca *CA) Revoke(id string) (c Client, changed bool, err error) {
	if !validID(id) {
		return Client{}, false, unknownID(id)
	}
	err = ca.update(func(s *snapshot) (bool, error) {
		i, ok := s.byID[id]
		if !ok {
			return false, unknownID(id)
		}
		c = s.clients[i]
		if !c.RevokedAt.IsZero() {
			// Nothing to write, but the generation is bumped all the
			// same: a writer that died between recording the revocation
			// and bumping it would otherwise leave routers unaware, and
			// running revoke again is what an operator does then.
			return true, nil
		}
		c.RevokedAt = ca.now().UTC().Truncate(time.Second)
		data, err := json.MarshalIndent(toMeta(&c), "", "  ")
		if err != nil {
			return false, fmt.Errorf("encoding the certificate state: %w", err)
		}
		err = ca.fw.replace(filepath.Join(ca.clientsDir(), id, "meta.json"), append(data, '\n'), privateMode)
		changed = err == nil
		return changed, err
	})
	c.Status = c.StatusAt(ca.now())
	return c, changed, err
}

// Renewal is a successor issued by Renew.
type Renewal struct {
	Old Client // the expiring certificate; it keeps working until it ends
	New Client // its successor: same app and name, a new id
}

// Renew issues a successor for every certificate that is expiring (within
// ExpiringWithin of its end), not revoked and without one yet (SPEC.md
// section 11.3), for the apps isApp accepts (nil: every app), signed by
// the current CA. The router calls it at start and hourly, and logs a
// warning and counts a metric for each Renewal. Successors issued before
// an error are returned with it.
func (ca *CA) Renew(isApp func(app string) bool) ([]Renewal, error) {
	if !ca.renewalDue(ca.snap.Load(), isApp) {
		return nil, nil // the common case: no lock taken
	}
	var out []Renewal
	err := ca.update(func(s *snapshot) (bool, error) {
		var errs []error
		for _, old := range s.clients {
			if !ca.due(s, &old, isApp) {
				continue
			}
			if !ca.cert.NotAfter.After(old.NotAfter) {
				// A successor would end with the CA, no later than old:
				// only a new CA helps, and one successor per hour would not.
				errs = append(errs, fmt.Errorf("client certificate %s (app %s) cannot be renewed: the CA certificate ends on %s, no later than it; rotate the CA (space_ca.previous)",
					old.ID, old.App, ca.cert.NotAfter.UTC().Format(time.RFC3339)))
				continue
			}
			c, err := ca.issueLocked(s, old.App, old.Name, old.ID)
			if err != nil {
				errs = append(errs, fmt.Errorf("issuing the successor of %s: %w", old.ID, err))
				break
			}
			old.Status = old.StatusAt(ca.now())
			out = append(out, Renewal{Old: old, New: c})
		}
		return len(out) > 0, errors.Join(errs...)
	})
	return out, err
}

func (ca *CA) renewalDue(s *snapshot, isApp func(string) bool) bool {
	for i := range s.clients {
		if ca.due(s, &s.clients[i], isApp) {
			return true
		}
	}
	return false
}

// due reports whether c needs a successor now.
func (ca *CA) due(s *snapshot, c *Client, isApp func(string) bool) bool {
	if c.StatusAt(ca.now()) != StatusExpiring || s.successors[c.ID] != "" {
		return false
	}
	return isApp == nil || isApp(c.App)
}

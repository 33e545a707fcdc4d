package acme

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/logging"
)

// State is where a domain's certificate stands (SPEC.md section 12.1).
type State string

// The states of a domain.
const (
	// StateWaiting: managed, no certificate, no order started yet (or
	// waiting for another router's order through the storage lock).
	StateWaiting State = "waiting"
	// StateInProgress: an order (first or renewal) is running.
	StateInProgress State = "in_progress"
	// StateOK: the last order succeeded, or a certificate was loaded from
	// storage; the certificate is served.
	StateOK State = "ok"
	// StateFailing: the last order failed; certmagic tries again with
	// backoff. A renewal that fails keeps the current certificate served
	// (NotAfter is set); a first order that fails leaves the domain
	// refused.
	StateFailing State = "failing"
)

// statusKey is the storage key of the status file the Manager writes for
// StatusFromStorage.
const statusKey = "spacerouter-status.json"

// DomainStatus is the status of one tls: auto domain, as the admin API
// (SPEC.md section 13) and spacerouter certs status show it. Its JSON
// field names are stable.
type DomainStatus struct {
	App    string `json:"app"`
	Domain string `json:"domain"`
	State  State  `json:"state"`
	// LastError is the error of the last failed order; it stays while the
	// next try runs and is cleared by a success.
	LastError string `json:"last_error,omitempty"`
	// NotAfter is the expiry of the certificate served (zero: none).
	NotAfter time.Time `json:"not_after,omitzero"`
	// Issuer is the served certificate's issuer: its common name, else its
	// whole name.
	Issuer string `json:"issuer,omitempty"`
	// VerifyFull is whether the served chain verifies, now, with the
	// system's roots (or acme.trusted_roots) for the domain name, as a
	// verify-full client checks it; VerifyError says why not.
	VerifyFull  bool   `json:"verify_full"`
	VerifyError string `json:"verify_error,omitempty"`
	// UpdatedAt is when the state last changed.
	UpdatedAt time.Time `json:"updated_at,omitzero"`
}

// Status returns the status of every managed domain, by app and domain.
func (m *Manager) Status() []DomainStatus {
	now := m.opts.Now()
	m.mu.RLock()
	out := make([]DomainStatus, 0, len(m.domains))
	for name, d := range m.domains {
		out = append(out, DomainStatus{App: d.app, Domain: name, State: d.state, LastError: d.lastErr, UpdatedAt: d.updatedAt})
	}
	m.mu.RUnlock()
	for i := range out {
		st := &out[i]
		c, ok := m.current(st.Domain)
		switch {
		case ok:
			m.fillCert(st, c, now)
			if st.State == StateWaiting {
				st.State = StateOK // loaded from storage before the event arrived
			}
		case st.State == StateOK:
			st.State = StateInProgress // obtained, not in memory yet
		}
	}
	sortStatus(out)
	return out
}

// fillCert sets the certificate fields of st from c, verified through the
// Manager's cache of verify-full results.
func (m *Manager) fillCert(st *DomainStatus, c certmagic.Certificate, now time.Time) {
	st.NotAfter = c.Leaf.NotAfter
	st.Issuer = issuerName(c.Leaf)
	st.VerifyFull, st.VerifyError = m.verify.check(c.Hash(), st.Domain, now, func() error {
		chain, err := parseDER(c.Certificate.Certificate)
		if err != nil {
			return err
		}
		return verifyFull(chain, st.Domain, m.roots, now)
	})
}

func sortStatus(s []DomainStatus) {
	slices.SortFunc(s, func(a, b DomainStatus) int {
		if c := strings.Compare(a.App, b.App); c != 0 {
			return c
		}
		return strings.Compare(a.Domain, b.Domain)
	})
}

// issuerName is how the status names a certificate's issuer.
func issuerName(leaf *x509.Certificate) string {
	if leaf.Issuer.CommonName != "" {
		return leaf.Issuer.CommonName
	}
	return leaf.Issuer.String()
}

// verifyFull checks chain (leaf first) as a verify-full client does: a
// chain to roots (nil: the system's) valid at now, for serverAuth, naming
// name.
func verifyFull(chain []*x509.Certificate, name string, roots *x509.CertPool, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{
		DNSName:       name,
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   now,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

// verifyCache keeps verify-full results by certificate and domain for a
// minute of the status clock: for a given chain and pool only the clock
// changes the result, and a status page asked for every few seconds should
// not verify every chain each time.
type verifyCache struct {
	// mu guards entries.
	mu      sync.Mutex
	entries map[string]verifyEntry
}

type verifyEntry struct {
	from, until time.Time // the clock range the result holds for
	errText     string    // "" when it verified
}

// maxVerifyEntries bounds the cache; past it, it starts afresh.
const maxVerifyEntries = 4096

// check returns the cached result for (hash, name) at now, or runs verify
// and keeps its result for a minute.
func (vc *verifyCache) check(hash, name string, now time.Time, verify func() error) (bool, string) {
	key := hash + " " + name
	vc.mu.Lock()
	e, ok := vc.entries[key]
	vc.mu.Unlock()
	if ok && !now.Before(e.from) && now.Before(e.until) {
		return e.errText == "", e.errText
	}
	err := verify()
	e = verifyEntry{from: now, until: now.Add(time.Minute)}
	if err != nil {
		e.errText = err.Error()
	}
	vc.mu.Lock()
	if vc.entries == nil || len(vc.entries) >= maxVerifyEntries {
		vc.entries = make(map[string]verifyEntry)
	}
	vc.entries[key] = e
	vc.mu.Unlock()
	return err == nil, e.errText
}

// parseDER parses a DER chain.
func parseDER(ders [][]byte) ([]*x509.Certificate, error) {
	chain := make([]*x509.Certificate, 0, len(ders))
	for _, der := range ders {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, err
		}
		chain = append(chain, c)
	}
	return chain, nil
}

// onEvent is certmagic's event hook: it follows each managed domain's
// orders. certmagic calls it synchronously from its workers; it returns
// at once and never cancels anything.
func (m *Manager) onEvent(_ context.Context, event string, data map[string]any) error {
	if m.stopped.Load() {
		return nil // stopped: what the cancelled jobs report is no news
	}
	id, _ := data["identifier"].(string)
	renewal, _ := data["renewal"].(bool)
	switch event {
	case "cert_obtaining":
		m.transition(id, StateInProgress, "", renewal)
	case "cert_obtained":
		m.transition(id, StateOK, "", renewal)
	case "cert_failed":
		msg := "unknown error"
		if err, ok := data["error"].(error); ok {
			if errors.Is(err, context.Canceled) {
				return nil // the domain was dropped: no failure of its own
			}
			msg = err.Error()
		}
		m.transition(id, StateFailing, msg, renewal)
	case "cached_managed_cert":
		sans, _ := data["sans"].([]string)
		m.cached(sans)
	}
	return nil
}

// transition records a domain's new state and logs it. An event for a
// name not managed (an order of a dropped domain) is ignored.
func (m *Manager) transition(name string, state State, errText string, renewal bool) {
	now := m.opts.Now()
	m.mu.Lock()
	d, ok := m.domains[name]
	if ok {
		d.state, d.updatedAt = state, now
		switch state {
		case StateOK:
			d.lastErr = ""
		case StateFailing:
			d.lastErr = errText
		}
	}
	var app string
	if ok {
		app = d.app
	}
	m.mu.Unlock()
	if !ok {
		return
	}
	fields := []zap.Field{zap.String(logging.KeyApp, app), zap.String(logging.KeyDomain, name), zap.Bool(logging.KeyRenewal, renewal)}
	switch state {
	case StateInProgress:
		m.log.Debug("ACME order started", fields...)
	case StateOK:
		m.log.Info("ACME certificate obtained", fields...)
	case StateFailing:
		m.log.Warn("ACME order failed; retrying with backoff", append(fields, zap.String(logging.KeyError, errText))...)
	}
	m.markDirty()
}

// cached follows certmagic putting a managed certificate in memory: the
// served certificate changed (the status file is written again); a
// waiting domain's certificate loaded from storage makes it ok (no order
// was needed); a certificate of no managed domain is swept out.
func (m *Manager) cached(sans []string) {
	var stray []string
	changed := false
	now := m.opts.Now()
	m.mu.Lock()
	for _, n := range sans {
		d, ok := m.domains[n]
		if !ok {
			stray = append(stray, n)
			continue
		}
		changed = true
		if d.state == StateWaiting {
			d.state, d.updatedAt = StateOK, now
		}
	}
	m.mu.Unlock()
	if len(stray) > 0 {
		m.queueSweep(stray)
	}
	if changed {
		m.markDirty()
	}
}

// saveStatus writes Status to the storage for StatusFromStorage. A failure
// is logged: the status file is a convenience, serving goes on.
func (m *Manager) saveStatus() {
	b, err := json.MarshalIndent(statusFile{Domains: m.Status()}, "", "  ")
	if err == nil {
		err = m.storage.Store(context.Background(), statusKey, append(b, '\n'))
	}
	if err != nil {
		m.log.Warn("writing the ACME status file", zap.String(logging.KeyFile, storageName(m.storage, statusKey)), zap.Error(err))
	}
}

// statusFile is the status file's content.
type statusFile struct {
	Domains []DomainStatus `json:"domains"`
}

// StatusFromStorage returns the status of the domains of apps (app name
// -> its tls: auto domains) from opts.Shared or opts.Storage alone, starting nothing:
// the certificate in storage gives not_after, issuer and the verify-full
// check (at now, with opts.TrustedRootsFile or the system's roots); the
// state and last error come from the status file a running (or the last)
// router wrote, else from what storage holds (ok with a certificate,
// waiting without). Only the certificates of opts.Directory's CA are seen.
func StatusFromStorage(opts Options, apps map[string][]string, now time.Time) ([]DomainStatus, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	roots, err := loadRoots(opts.TrustedRootsFile)
	if err != nil {
		return nil, err
	}
	want, err := domainSet(apps)
	if err != nil {
		return nil, err
	}
	storage := opts.storage()
	recorded, err := readStatusFile(storage)
	if err != nil {
		return nil, err
	}
	issuerKey := (&certmagic.ACMEIssuer{CA: opts.Directory}).IssuerKey()
	out := make([]DomainStatus, 0, len(want))
	for name, app := range want {
		st := DomainStatus{App: app, Domain: name, State: StateWaiting}
		if r, ok := recorded[name]; ok {
			st.State, st.LastError, st.UpdatedAt = r.State, r.LastError, r.UpdatedAt
		}
		key := certmagic.StorageKeys.SiteCert(issuerKey, name)
		b, err := storage.Load(context.Background(), key)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if st.State == StateOK {
				st.State = StateWaiting
			}
		case err != nil:
			return nil, fmt.Errorf("reading %s: %w", storageName(storage, key), err)
		default:
			if err := fillFromPEM(&st, b, roots, now); err != nil {
				return nil, fmt.Errorf("reading %s: %w", storageName(storage, key), err)
			}
			if st.State == StateWaiting {
				st.State = StateOK
			}
		}
		out = append(out, st)
	}
	sortStatus(out)
	return out, nil
}

// readStatusFile reads the status file by domain; none yet is no error.
func readStatusFile(storage certmagic.Storage) (map[string]DomainStatus, error) {
	b, err := storage.Load(context.Background(), statusKey)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", storageName(storage, statusKey), err)
	}
	var f statusFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading %s: %w", storageName(storage, statusKey), err)
	}
	byName := make(map[string]DomainStatus, len(f.Domains))
	for _, d := range f.Domains {
		byName[d.Domain] = d
	}
	return byName, nil
}

// fillFromPEM sets the certificate fields of st from a PEM chain.
func fillFromPEM(st *DomainStatus, b []byte, roots *x509.CertPool, now time.Time) error {
	var ders [][]byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type == "CERTIFICATE" {
			ders = append(ders, blk.Bytes)
		}
	}
	chain, err := parseDER(ders)
	if err != nil {
		return err
	}
	if len(chain) == 0 {
		return errors.New("no PEM certificate")
	}
	st.NotAfter = chain[0].NotAfter
	st.Issuer = issuerName(chain[0])
	if err := verifyFull(chain, st.Domain, roots, now); err != nil {
		st.VerifyError = err.Error()
	} else {
		st.VerifyFull = true
	}
	return nil
}

// WriteStatus writes statuses as spacerouter certs status prints them: a
// header, then one line per domain: app, domain, state, not_after (RFC
// 3339, UTC), issuer, verify-full (yes or no), last error ("-" for none).
func WriteStatus(w io.Writer, statuses []DomainStatus) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tDOMAIN\tSTATE\tNOT_AFTER\tISSUER\tVERIFY_FULL\tLAST_ERROR")
	for _, s := range statuses {
		notAfter, issuer, verify, lastErr := "-", "-", "no", "-"
		if !s.NotAfter.IsZero() {
			notAfter = s.NotAfter.UTC().Format(time.RFC3339)
		}
		if s.Issuer != "" {
			issuer = s.Issuer
		}
		if s.VerifyFull {
			verify = "yes"
		}
		if s.LastError != "" {
			lastErr = oneLine(s.LastError)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.App, s.Domain, s.State, notAfter, issuer, verify, lastErr)
	}
	return tw.Flush()
}

// oneLine folds the line breaks of an error into spaces.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

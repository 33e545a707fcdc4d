package router

import (
	"crypto/x509"
	"fmt"
	"math"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/spaceca"
	"github.com/spacerouter/spacerouter/tlsconfig"
)

// Certificate lifecycle in the running router (SPEC.md 12.2, 12.3):
//
//   - expiry: every served certificate (files, staged ones included, and
//     ACME), the space CA and its previous CAs not yet retired, the CAs of
//     the apps' mtls.trust bundles and the space CA's issued client
//     certificates (those without a successor) are judged at load, at each
//     reload and hourly: a warning within 30 days of not_after, an error
//     within 7 days or once expired. spacerouter -check prints the same
//     (CheckExpiry), the issued client certificates aside (they are the
//     running router's state, not the config's);
//   - rotation: a previous space CA is warned about 14 days before its
//     retire_at (and at load, reload and hourly within those 14 days), and
//     logged when it is retired; a staged chain is logged when its
//     serve_from comes. Neither needs the log to take effect: the client
//     certificate verdicts compare the request's time with retire_at
//     (spaceca.Verdict.Recheck), and tlsconfig picks the chains of the
//     time of each handshake. The timer of certLoop wakes at each of these
//     times, so the log says it when it happens.

// Windows of SPEC.md 12.2 and 12.3.
const (
	expiryWarnWithin  = 30 * 24 * time.Hour
	expiryErrorWithin = 7 * 24 * time.Hour
	expiryCheckEvery  = time.Hour
	retireWarnAhead   = 14 * 24 * time.Hour
)

// Roles of the expiry metric and warnings (SPEC.md 12.2).
const (
	roleServer   = "server"
	roleClientCA = "client_ca"
	roleSpaceCA  = "space_ca"
	roleClient   = "client"
)

// certExpiry is one certificate whose expiry is judged.
type certExpiry struct {
	app  string // "" for the space's own (space_ca)
	role string
	what string // how the warning names it: "certificate shop.pem"
	end  time.Time
}

// CertFinding is one expiry or rotation warning (SPEC.md 12.2, 12.3), as
// the operational log and spacerouter -check write it.
type CertFinding struct {
	// Error is true within 7 days of expiry or once expired (logged at
	// level error); else a warning.
	Error bool
	App   string // "" for the space's own certificates
	Role  string // server, client_ca, space_ca, client
	Msg   string // the whole sentence, "app shop: " in front for an app's
}

// judgeExpiry returns the findings of list at now, in list order.
func judgeExpiry(list []certExpiry, now time.Time) []CertFinding {
	var out []CertFinding
	for _, c := range list {
		left := c.end.Sub(now)
		if left >= expiryWarnWithin {
			continue
		}
		date := c.end.UTC().Format(time.DateOnly)
		var msg string
		if left <= 0 {
			msg = fmt.Sprintf("%s expired on %s", c.what, date)
		} else {
			msg = fmt.Sprintf("%s expires %s (in %s)", c.what, date, days(left))
		}
		out = append(out, CertFinding{Error: left < expiryErrorWithin, App: c.app, Role: c.role, Msg: appPrefix(c.app) + msg})
	}
	return out
}

// days is d in whole days, rounded up: "1 day", "12 days".
func days(d time.Duration) string {
	n := int(math.Ceil(d.Hours() / 24))
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}

func appPrefix(app string) string {
	if app == "" {
		return ""
	}
	return "app " + app + ": "
}

// fileExpiries lists the certificates of cfg known without running
// anything: the served chains of st (files), the space CA's files and the
// apps' mtls.trust bundles (CAs parsed from their files; an unreadable one
// is skipped, config.Load reported it).
func fileExpiries(cfg *config.Config, st *tlsconfig.Store, now time.Time) []certExpiry {
	var out []certExpiry
	if st != nil {
		for i := range cfg.Apps {
			for _, c := range st.Certificates(cfg.Apps[i].Name) {
				out = append(out, certExpiry{app: cfg.Apps[i].Name, role: roleServer, what: "certificate " + c.File, end: c.Leaf.NotAfter})
			}
		}
	}
	var spaceCAs []*x509.Certificate
	if sc := cfg.SpaceCA; sc != nil {
		if as, err := spaceca.LoadBundle(sc.Cert); err == nil && len(as) > 0 {
			out = append(out, certExpiry{role: roleSpaceCA, what: "space CA certificate " + sc.Cert, end: as[0].Cert.NotAfter})
			spaceCAs = append(spaceCAs, as[0].Cert)
		}
		for _, p := range sc.Previous {
			as, err := spaceca.LoadBundle(p.Cert)
			if err != nil || len(as) == 0 {
				continue
			}
			spaceCAs = append(spaceCAs, as[0].Cert)
			if now.Before(p.RetireAt) {
				out = append(out, certExpiry{role: roleSpaceCA, what: "previous space CA certificate " + p.Cert, end: as[0].Cert.NotAfter})
			}
		}
	}
	for i := range cfg.Apps {
		a := &cfg.Apps[i]
		for _, t := range a.MTLS.Trust {
			if t == config.TrustSpace {
				continue // the space CA's, above
			}
			as, err := spaceca.LoadBundle(t)
			if err != nil {
				continue
			}
			for _, an := range as {
				if slices.ContainsFunc(spaceCAs, an.Cert.Equal) {
					continue
				}
				out = append(out, certExpiry{app: a.Name, role: roleClientCA,
					what: fmt.Sprintf("client CA %q in %s", an.Cert.Subject.String(), t), end: an.Cert.NotAfter})
			}
		}
	}
	return out
}

// acmeExpiries lists the ACME certificates of a status list.
func acmeExpiries(status []acme.DomainStatus) []certExpiry {
	var out []certExpiry
	for _, s := range status {
		if !s.NotAfter.IsZero() {
			out = append(out, certExpiry{app: s.App, role: roleServer, what: "ACME certificate for " + s.Domain, end: s.NotAfter})
		}
	}
	return out
}

// clientExpiries lists the space CA's issued client certificates that
// are neither revoked nor expired and have no successor (one that has is
// the 75-day renewal's, SPEC.md 11.3, logged then).
func clientExpiries(ca *spaceca.CA, configured func(string) bool, now time.Time) []certExpiry {
	if ca == nil {
		return nil
	}
	list := ca.List("")
	renewed := map[string]bool{}
	for _, c := range list {
		if c.SuccessorOf != "" {
			renewed[c.SuccessorOf] = true
		}
	}
	var out []certExpiry
	for _, c := range list {
		st := c.StatusAt(now)
		if renewed[c.ID] || !configured(c.App) || (st != spaceca.StatusReady && st != spaceca.StatusExpiring) {
			continue
		}
		out = append(out, certExpiry{app: c.App, role: roleClient,
			what: fmt.Sprintf("client certificate %s (%s)", c.ID, c.Name), end: c.NotAfter})
	}
	return out
}

// retireFindings warns of each previous space CA of sc that is retired
// within 14 days of now.
func retireFindings(sc *config.SpaceCA, now time.Time) []CertFinding {
	if sc == nil {
		return nil
	}
	var out []CertFinding
	for _, p := range sc.Previous {
		if left := p.RetireAt.Sub(now); left > 0 && left <= retireWarnAhead {
			out = append(out, CertFinding{Role: roleSpaceCA, Msg: fmt.Sprintf(
				"previous space CA %s is retired at %s (in %s): client certificates it issued are refused from then on; issue their successors from the current CA",
				p.Cert, p.RetireAt.UTC().Format(time.RFC3339), days(left))})
		}
	}
	return out
}

// CheckExpiry returns the expiry and rotation findings of cfg at now that
// spacerouter -check prints, as the router logs them at load: the served
// certificate files, the space CA, the mtls.trust bundles, the ACME
// certificates in acme.storage, previous CAs retired within 14 days.
func CheckExpiry(cfg *config.Config, now time.Time) ([]CertFinding, error) {
	var st *tlsconfig.Store
	if cfg.Listen.HTTPS != "" {
		var err error
		if st, err = NewTLSStore(cfg, TLSStoreOptions{}); err != nil {
			return nil, fmt.Errorf("building TLS configs: %w", err)
		}
	}
	list := fileExpiries(cfg, st, now)
	if cfg.ACME != nil {
		status, err := acme.StatusFromStorage(ACMEOptions(cfg.ACME), autoDomains(cfg), now)
		if err != nil {
			return nil, fmt.Errorf("reading acme.storage: %w", err)
		}
		list = append(list, acmeExpiries(status)...)
	}
	return append(judgeExpiry(list, now), retireFindings(cfg.SpaceCA, now)...), nil
}

// certFindings are the findings of the running router at now.
func (r *Router) certFindings(now time.Time) []CertFinding {
	sp := r.sp.Load()
	list := fileExpiries(sp.cfg, r.tlsStore.Load(), now)
	status := r.ACMEStatus()
	if status == nil && sp.cfg.ACME != nil {
		// Load, before Start makes the Manager: what acme.storage holds,
		// as -check reads it.
		var err error
		if status, err = acme.StatusFromStorage(r.acmeOptions(sp.cfg.ACME), autoDomains(sp.cfg), now); err != nil {
			r.log.Warn("reading acme.storage for the expiry warnings", zap.Error(err))
		}
	}
	list = append(list, acmeExpiries(status)...)
	list = append(list, clientExpiries(r.ca.Load(), sp.configured, now)...)
	return append(judgeExpiry(list, now), retireFindings(sp.cfg.SpaceCA, now)...)
}

// logCertFindings writes the findings at now to the operational log (at
// load, reload and hourly).
func (r *Router) logCertFindings(now time.Time) {
	for _, f := range r.certFindings(now) {
		lvl := zapcore.WarnLevel
		if f.Error {
			lvl = zapcore.ErrorLevel
		}
		if ce := r.log.Check(lvl, f.Msg); ce != nil {
			ce.Write(zap.String(logging.KeyApp, f.App), zap.String(logging.KeyRole, f.Role))
		}
	}
}

// certEvent is a time at which the certificates in force change without
// a reload: a previous CA's retire_at (and 14 days before it), a staged
// chain's serve_from.
type certEvent struct {
	at  time.Time
	lvl zapcore.Level
	msg string
	app string
}

// certEvents lists the events of the running config.
func (r *Router) certEvents() []certEvent {
	sp := r.sp.Load()
	var out []certEvent
	if sc := sp.cfg.SpaceCA; sc != nil {
		for _, p := range sc.Previous {
			at := p.RetireAt.UTC().Format(time.RFC3339)
			out = append(out,
				certEvent{at: p.RetireAt.Add(-retireWarnAhead), lvl: zapcore.WarnLevel, msg: fmt.Sprintf(
					"previous space CA %s is retired at %s (in 14 days): client certificates it issued are refused from then on; issue their successors from the current CA", p.Cert, at)},
				certEvent{at: p.RetireAt, lvl: zapcore.WarnLevel, msg: fmt.Sprintf(
					"previous space CA %s was retired at %s: client certificates it issued are refused from now on", p.Cert, at)})
		}
	}
	if st := r.tlsStore.Load(); st != nil {
		for _, a := range sp.apps {
			for _, c := range st.Certificates(a.name) {
				if !c.ServeFrom.IsZero() {
					out = append(out, certEvent{at: c.ServeFrom, lvl: zapcore.InfoLevel, app: a.name, msg: fmt.Sprintf(
						"app %s: certificate %s is served from now on (serve_from %s)", a.name, c.File, c.ServeFrom.UTC().Format(time.RFC3339))})
				}
			}
		}
	}
	return out
}

// certStep logs what happened in (last, now] (the events of that span,
// and the hourly findings when due) and returns when it is next due.
func (r *Router) certStep(last, now time.Time, hourly *time.Time) (next time.Time) {
	events := r.certEvents()
	for _, e := range events {
		if e.at.After(last) && !e.at.After(now) {
			r.log.Check(e.lvl, e.msg).Write(zap.String(logging.KeyApp, e.app))
		}
	}
	if !now.Before(*hourly) {
		r.logCertFindings(now)
		*hourly = now.Add(expiryCheckEvery)
	}
	next = *hourly
	for _, e := range events {
		if e.at.After(now) && e.at.Before(next) {
			next = e.at
		}
	}
	return next
}

// certLoop wakes at each certificate event and hourly (certStep); a
// reload wakes it too (certPoke), as it brings other events. It starts
// from the time of load (New), whose findings New logged: the first
// hourly ones come an hour after that, and an event between load and
// Start is not missed.
func (r *Router) certLoop() {
	defer r.bgWG.Done()
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("recovered panic in the certificate loop", zap.Any(logging.KeyPanic, p), zap.Stack("stack"))
		}
	}()
	last := r.loadedAt
	hourly := last.Add(expiryCheckEvery)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := r.now()
		next := r.certStep(last, now, &hourly)
		last = now
		t.Reset(next.Sub(now))
		select {
		case <-r.stopCtx.Done():
			return
		case <-t.C:
		case <-r.certPoke:
		}
	}
}

// pokeCertLoop makes certLoop look at the events again (after a reload).
func (r *Router) pokeCertLoop() {
	select {
	case r.certPoke <- struct{}{}:
	default:
	}
}

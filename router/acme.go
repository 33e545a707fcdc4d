package router

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// ACME in the router (SPEC.md 12.1). The acme package orders and renews
// the certificates of the tls: auto apps; the router gives it its https
// listener and routes handshakes to it:
//
//   - Start binds listen.https first, then makes the Manager with that
//     address (so certmagic finds the router listening there and binds
//     nothing of its own) and sets its domains;
//   - the listener's GetConfigForClient asks ChallengeConfig first, before
//     the SNI lookup, ip_rules and mtls: a TLS-ALPN-01 validation (ALPN
//     acme-tls/1 alone) never reaches an app, and its connection is closed
//     after the handshake (serveTLSConn), never served or counted as a
//     client's;
//   - a tls: auto app's certificate comes from acmeCertificate, through
//     tlsconfig.App.GetCertificate; a domain with none yet is refused with
//     unrecognized_name (reason acme_pending) and the log says why;
//   - Reload sets the new domains before the TLS configs that serve them
//     are swapped in; a changed acme section gets a new Manager, and the
//     old one is stopped once the new one is current;
//   - Shutdown stops the Manager after the drain.

// errNoACME is acmeCertificate's answer before the Manager runs (between
// New and Start, or without listen.https).
var errNoACME = errors.New("the ACME manager is not running")

// ACMEOptions are the acme package's Options for a config's acme section;
// the https listener (ListenAddr) is the caller's to add.
func ACMEOptions(a *config.ACME) acme.Options {
	return acme.Options{
		Directory:        a.Directory,
		Email:            a.Email,
		AgreeTOS:         a.AgreeTOS,
		TrustedRootsFile: a.TrustedRoots,
		Storage:          a.Storage,
		RenewBefore:      a.RenewBefore,
	}
}

// acmeOptions are ACMEOptions with the router's shared storage, if any.
func (r *Router) acmeOptions(a *config.ACME) acme.Options {
	opts := ACMEOptions(a)
	opts.Shared = r.acmeShared
	return opts
}

// autoDomains returns the domains of cfg's tls: auto apps by app name.
func autoDomains(cfg *config.Config) map[string][]string {
	byApp := map[string][]string{}
	for i := range cfg.Apps {
		if a := &cfg.Apps[i]; a.TLSAuto {
			byApp[a.Name] = a.Domains
		}
	}
	return byApp
}

// sameACME reports whether two configs have the same acme section.
func sameACME(a, b *config.ACME) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// startACME makes the Manager of cfg's acme section once listen.https is
// bound at addr, and gives it the tls: auto domains. Without an acme
// section it does nothing.
func (r *Router) startACME(cfg *config.Config, addr net.Addr) error {
	if cfg.ACME == nil {
		return nil
	}
	m, err := r.newACME(cfg, addr)
	if err != nil {
		return err
	}
	r.acmeCfg = cfg.ACME
	r.acme.Store(m)
	return nil
}

// newACME makes a Manager for cfg's acme section answering on addr and
// sets its domains; on an error nothing is left running.
func (r *Router) newACME(cfg *config.Config, addr net.Addr) (*acme.Manager, error) {
	opts := r.acmeOptions(cfg.ACME)
	opts.ListenAddr = addr.String()
	m, err := acme.New(opts, r.log.Named("acme"))
	if err != nil {
		return nil, fmt.Errorf("starting ACME: %w", err)
	}
	if err := m.SetDomains(autoDomains(cfg)); err != nil {
		m.Stop()
		return nil, fmt.Errorf("starting ACME: %w", err)
	}
	return m, nil
}

// acmeReload is the ACME part of a reload, run before the new TLS configs
// are swapped in: the running Manager gets the new domains, or, when the
// acme section changed, a new Manager is made for it (apply swaps it in;
// the old one stops then). On an error nothing changed.
func (r *Router) acmeReload(cfg *config.Config) (apply func(), err error) {
	cur := r.acme.Load()
	addr := r.HTTPSAddr()
	switch {
	case addr == nil:
		// Not started, or no https listener: Start makes the Manager.
		return func() {}, nil
	case sameACME(cfg.ACME, r.acmeCfg) && cur != nil:
		if err := cur.SetDomains(autoDomains(cfg)); err != nil {
			return nil, fmt.Errorf("setting the ACME domains: %w", err)
		}
		return func() {}, nil
	case cfg.ACME == nil && cur == nil:
		return func() {}, nil
	}
	var next *acme.Manager
	if cfg.ACME != nil {
		if next, err = r.newACME(cfg, addr); err != nil {
			return nil, err
		}
	}
	return func() {
		r.acmeCfg = cfg.ACME
		r.acme.Store(next)
		if cur == nil {
			return
		}
		// The old Manager still answers from memory after Stop: it
		// serves a domain the new one has no certificate for yet.
		r.acmePrev.Store(cur)
		r.bgWG.Go(cur.Stop)
		r.log.Info("acme section changed: a new ACME manager took over")
	}, nil
}

// stopACME stops the Manager (Shutdown).
func (r *Router) stopACME() {
	if m := r.acme.Load(); m != nil {
		m.Stop()
	}
}

// acmeCertificate is the GetCertificate of tls: auto apps: the Manager's
// certificate for the SNI name. While the Manager has none for a domain
// it manages, a Manager replaced by a change of the acme section serves
// its certificate, if it has one (a new directory or account need not
// mean a gap). A refusal is logged with why (the Manager's error names the
// domain's state and last error); tlsconfig counts it as acme_pending.
func (r *Router) acmeCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	m := r.acme.Load()
	if m == nil {
		err := errNoACME
		r.logACMERefusal(hello, err)
		return nil, err
	}
	c, err := m.GetCertificate(hello)
	if errors.Is(err, acme.ErrPending) {
		if prev := r.acmePrev.Load(); prev != nil {
			if pc, perr := prev.GetCertificate(hello); perr == nil {
				return pc, nil
			}
		}
	}
	if err != nil {
		r.logACMERefusal(hello, err)
	}
	return c, err
}

func (r *Router) logACMERefusal(hello *tls.ClientHelloInfo, err error) {
	r.log.Info("TLS handshake refused", zap.String(logging.KeyReason, "acme_pending"),
		zap.String(logging.KeySNI, hello.ServerName), zap.Error(err))
}

// ACMEStatus returns the status of every tls: auto domain by app and
// domain (SPEC.md 12.1), for the admin API; nil without a running Manager.
func (r *Router) ACMEStatus() []acme.DomainStatus {
	if m := r.acme.Load(); m != nil {
		return m.Status()
	}
	return nil
}

// acmeExpiry returns the earliest not_after of each tls: auto app's
// certificates, for the expiry metric (role server).
func (r *Router) acmeExpiry() map[string]time.Time {
	out := map[string]time.Time{}
	for _, s := range r.ACMEStatus() {
		if s.NotAfter.IsZero() {
			continue
		}
		if have, ok := out[s.App]; !ok || s.NotAfter.Before(have) {
			out[s.App] = s.NotAfter
		}
	}
	return out
}

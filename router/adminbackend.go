package router

import (
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/spaceca"
)

// AdminBackend answers the admin API (SPEC.md section 13) from a running
// router: it implements admin.Backend with the neutral types of package
// admin/view, so the router does not import the admin server or its
// sign-in. Errors for the caller are *view.Error; anything else is an
// internal error the API logs and answers without text.
type AdminBackend struct {
	r   *Router
	now func() time.Time
}

// AdminBackend returns the admin API's view of r. Without a state_dir
// it warns once that maintenance switches set through the API last until
// a restart only: a switch's own log line is the API's audit line.
func (r *Router) AdminBackend() *AdminBackend {
	if r.keeper == nil && !r.maint.persistent() {
		r.log.Warn("maintenance switches set through the admin API are kept in memory until a restart: set space_ca.state_dir to keep them",
			zap.String(logging.KeyKey, "space_ca.state_dir"))
	}
	return &AdminBackend{r: r, now: time.Now}
}

func notFound(app string) error {
	return view.Errorf(view.ErrNotFound, "no app %s", app)
}

// Apps implements admin.Backend.
func (b *AdminBackend) Apps() []view.App {
	apps := b.r.Apps(b.now())
	out := make([]view.App, len(apps))
	for i := range apps {
		out[i] = appView(&apps[i])
	}
	return out
}

// App implements admin.Backend.
func (b *AdminBackend) App(name string) (view.AppDetail, error) {
	st, err := b.r.App(name, b.now())
	if err != nil {
		return view.AppDetail{}, notFound(name)
	}
	return view.AppDetail{App: appView(&st), Certificates: b.certificates(name)}, nil
}

func appView(st *AppStatus) view.App {
	v := view.App{
		Name:                st.Name,
		Domains:             st.Domains,
		Dynos:               make([]view.Dyno, len(st.Dynos)),
		Maintenance:         st.Maintenance,
		MaintenanceOverride: st.Override,
		MTLSMode:            st.MTLSMode,
		TLSSource:           st.TLS,
		Traffic: view.Traffic{
			WindowSeconds: int(st.Traffic.Window / time.Second),
			Requests:      st.Traffic.Requests,
			PerMinute:     st.Traffic.PerMinute[:],
			Statuses:      st.Traffic.Classes,
			Codes:         st.Traffic.Codes,
		},
	}
	for i, d := range st.Dynos {
		v.Dynos[i] = view.Dyno{Name: d.Name, Address: d.Address, State: d.State}
	}
	return v
}

// SetMaintenance implements admin.Backend.
func (b *AdminBackend) SetMaintenance(app string, on *bool, who string) (view.App, error) {
	if err := b.r.SetMaintenance(app, on, who); err != nil {
		if errors.Is(err, ErrUnknownApp) {
			return view.App{}, notFound(app)
		}
		return view.App{}, err
	}
	st, err := b.r.App(app, b.now())
	if err != nil {
		return view.App{}, notFound(app)
	}
	return appView(&st), nil
}

// spaceCA returns the space CA, or a conflict for a space without one.
func (b *AdminBackend) spaceCA(app string) (*spaceca.CA, error) {
	if b.r.sp.Load().byName(app) == nil {
		return nil, notFound(app)
	}
	ca := b.r.ca.Load()
	if ca == nil {
		return nil, view.Errorf(view.ErrConflict, "the space has no CA: configure space_ca to issue client certificates")
	}
	return ca, nil
}

func clientView(c *spaceca.Client, now time.Time) view.Client {
	return view.Client{
		ID: c.ID, App: c.App, Name: c.Name, Serial: c.Serial.Text(16),
		Created: c.Created, NotAfter: c.NotAfter, Status: string(c.StatusAt(now)),
		SuccessorOf: c.SuccessorOf, RevokedAt: c.RevokedAt,
	}
}

// Clients implements admin.Backend.
func (b *AdminBackend) Clients(app string) ([]view.Client, error) {
	if b.r.sp.Load().byName(app) == nil {
		return nil, notFound(app)
	}
	ca := b.r.ca.Load()
	if ca == nil {
		return []view.Client{}, nil
	}
	now := b.now()
	list := ca.List(app)
	out := make([]view.Client, len(list))
	for i := range list {
		out[i] = clientView(&list[i], now)
	}
	return out, nil
}

// IssueClient implements admin.Backend.
func (b *AdminBackend) IssueClient(app, name string) (view.Client, error) {
	ca, err := b.spaceCA(app)
	if err != nil {
		return view.Client{}, err
	}
	if name != "" {
		if err := spaceca.CheckName(name); err != nil {
			return view.Client{}, view.Errorf(view.ErrInvalid, "%v", err)
		}
	}
	c, err := ca.Issue(app, name)
	if err != nil {
		return view.Client{}, err
	}
	return clientView(&c, b.now()), nil
}

// client returns certificate id of app.
func (b *AdminBackend) client(ca *spaceca.CA, app, id string) (spaceca.Client, error) {
	c, err := ca.Get(id)
	if err != nil || c.App != app {
		return spaceca.Client{}, view.Errorf(view.ErrNotFound, "no client certificate %s for app %s", id, app)
	}
	return c, nil
}

// DownloadClient implements admin.Backend. A certificate the space CA's
// state_dir does not hold is served from its record in the shared
// space's clients/ (SetSharedClients): one issued by another router.
func (b *AdminBackend) DownloadClient(app, id string) ([]view.File, error) {
	ca, err := b.spaceCA(app)
	if err != nil {
		return nil, err
	}
	var rec *spaceca.Record
	if _, err := b.client(ca, app, id); err != nil {
		r, ok, rerr := b.r.sharedClient(app, id)
		if !ok {
			return nil, err
		}
		if rerr != nil {
			return nil, view.Errorf(view.ErrConflict, "%v", rerr)
		}
		rec = &r
	}
	roots, err := b.servedRoots(app)
	if err != nil {
		return nil, err
	}
	var files []spaceca.File
	if rec == nil {
		files, err = ca.Files(id, roots)
	} else {
		files, err = ca.RecordFiles(rec, roots)
	}
	if err != nil {
		if se, ok := errors.AsType[*spaceca.StatusError](err); ok {
			return nil, view.Errorf(view.ErrConflict, "client certificate %s is %s", id, se.Status)
		}
		if rec != nil {
			return nil, view.Errorf(view.ErrConflict, "%v", err)
		}
		return nil, err
	}
	out := make([]view.File, len(files))
	for i, f := range files {
		out[i] = view.File{Name: f.Name, Mode: f.Mode, Data: f.Data}
	}
	return out, nil
}

// SpaceCA returns the space CA, nil without one.
func (b *AdminBackend) SpaceCA() *spaceca.CA { return b.r.ca.Load() }

// servedRoots returns the roots of the chains app serves: root.crt of a
// download, with which a client verifies the router (SPEC.md 11.3): the
// top certificate of each chain file, or for tls: auto the issuer's root
// the ACME chains verify to (acme.trusted_roots, else the system's).
func (b *AdminBackend) servedRoots(app string) ([]*x509.Certificate, error) {
	a := b.r.sp.Load().byName(app)
	if a == nil {
		return nil, notFound(app)
	}
	if a.cfg.TLSAuto {
		m := b.r.acme.Load()
		if m == nil {
			return nil, view.Errorf(view.ErrConflict, "app %s uses tls: auto and the ACME manager is not running (no listen.https?), so the download would hold no root to verify the router with", app)
		}
		roots, err := m.Roots(a.cfg.Domains)
		if nr, ok := errors.AsType[*acme.NoRootError](err); ok {
			return nil, view.Errorf(view.ErrConflict, "app %s: %s, so the download would hold no root to verify the router with; try again once GET /api/apps/%s shows a certificate ok with verify_full", app, nr.Why, app)
		}
		return roots, err
	}
	chains := make([]string, 0, len(a.cfg.TLS))
	for _, t := range a.cfg.TLS {
		chains = append(chains, t.Cert)
	}
	if len(chains) == 0 {
		return nil, view.Errorf(view.ErrConflict, "app %s serves no certificate file, so the download would hold no root to verify the router with", app)
	}
	roots, err := spaceca.ServedRoots(chains...)
	if err != nil {
		return nil, fmt.Errorf("the served roots of app %s: %w", app, err)
	}
	return roots, nil
}

// RevokeClient implements admin.Backend.
func (b *AdminBackend) RevokeClient(app, id string) (view.Client, error) {
	ca, err := b.spaceCA(app)
	if err != nil {
		return view.Client{}, err
	}
	if _, err := b.client(ca, app, id); err != nil {
		return view.Client{}, err
	}
	c, _, err := ca.Revoke(id)
	if err != nil {
		return view.Client{}, err
	}
	return clientView(&c, b.now()), nil
}

// RecentLines implements admin.Backend.
func (b *AdminBackend) RecentLines(app string, n int) ([]string, error) {
	rec, err := b.r.RecentLines(app)
	if err != nil {
		return nil, notFound(app)
	}
	return rec.Last(n), nil
}

// Subscribe implements admin.Backend.
func (b *AdminBackend) Subscribe(app string) (view.Subscription, error) {
	rec, err := b.r.RecentLines(app)
	if err != nil {
		return nil, notFound(app)
	}
	return rec.Subscribe(), nil
}

// TLSConnections implements admin.Backend.
func (b *AdminBackend) TLSConnections(f view.TLSFilter) []view.TLSConnection {
	if conns := b.r.TLSConnections(f); conns != nil {
		return conns
	}
	return []view.TLSConnection{}
}

// certificates returns the certificates app serves or will serve (SPEC.md
// 12.1): its chains of files, staged ones too, or the ACME status of each
// domain of a tls: auto app.
func (b *AdminBackend) certificates(app string) []view.Certificate {
	out := []view.Certificate{}
	now := b.now()
	if st := b.r.tlsStore.Load(); st != nil {
		for _, c := range st.Certificates(app) {
			v := view.Certificate{Source: "file", Names: c.Leaf.DNSNames, State: "ok",
				Serial: c.Leaf.SerialNumber.Text(16), Issuer: c.Leaf.Issuer.String(),
				KeyType: c.Leaf.PublicKeyAlgorithm.String(), NotBefore: c.Leaf.NotBefore, NotAfter: c.Leaf.NotAfter,
				ServeFrom: c.ServeFrom}
			switch {
			case !now.Before(c.Leaf.NotAfter):
				v.State = "expired"
			case !c.Served && c.ServeFrom.After(now):
				v.State = "staged"
			case !c.Served:
				v.State = "superseded"
			}
			out = append(out, v)
		}
	}
	for _, d := range b.r.ACMEStatus() {
		if d.App != app {
			continue
		}
		verify := d.VerifyFull
		out = append(out, view.Certificate{Source: "acme", Domain: d.Domain, State: string(d.State),
			LastError: d.LastError, Issuer: d.Issuer, NotAfter: d.NotAfter, VerifyFull: &verify})
	}
	return out
}

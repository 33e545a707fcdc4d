package router

import (
	"fmt"
	"time"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// AppStatus is what the admin API shows of one app (SPEC.md section 13):
// its config as running now, its maintenance state and its traffic of the
// last minutes.
type AppStatus struct {
	Name    string
	Domains []string
	Dynos   []config.Dyno
	// Maintenance is whether requests answer H80 now; Override is the
	// switch set through SetMaintenance (nil: the file decides).
	Maintenance bool
	Override    *bool
	MTLSMode    string
	// TLS tells where the app's certificates come from: "files", "acme"
	// (tls: auto) or "none".
	TLS     string
	Traffic TrafficCounts
}

// Apps returns the status of every app of the running config, in config
// order, with traffic counted up to now.
func (r *Router) Apps(now time.Time) []AppStatus {
	sp := r.sp.Load()
	out := make([]AppStatus, 0, len(sp.apps))
	for _, a := range sp.apps {
		out = append(out, r.appStatus(a, now))
	}
	return out
}

// App returns the status of the app named name.
func (r *Router) App(name string, now time.Time) (AppStatus, error) {
	a := r.sp.Load().byName(name)
	if a == nil {
		return AppStatus{}, fmt.Errorf("%w: %q", ErrUnknownApp, name)
	}
	return r.appStatus(a, now), nil
}

func (r *Router) appStatus(a *app, now time.Time) AppStatus {
	st := AppStatus{
		Name:        a.name,
		Domains:     append([]string(nil), a.cfg.Domains...),
		Dynos:       append([]config.Dyno(nil), a.cfg.Dynos...),
		Maintenance: a.inMaintenance(),
		Override:    r.maint.get(a.name),
		MTLSMode:    a.cfg.MTLS.Mode,
		TLS:         "none",
		Traffic:     a.m.traffic.counts(now),
	}
	if st.MTLSMode == "" {
		st.MTLSMode = config.MTLSOff
	}
	switch {
	case a.cfg.TLSAuto:
		st.TLS = "acme"
	case len(a.cfg.TLS) > 0:
		st.TLS = "files"
	}
	return st
}

// RecentLines returns the keeper of the app's last router lines, with
// their live feed (SPEC.md section 13, GET /api/lines).
func (r *Router) RecentLines(app string) (*logging.Recent, error) {
	a := r.sp.Load().byName(app)
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownApp, app)
	}
	return a.m.recent, nil
}

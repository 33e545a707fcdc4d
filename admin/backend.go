package admin

import (
	"context"

	"github.com/spacerouter/spacerouter/admin/view"
)

// Backend is what the admin API shows and changes: the router implements
// it. Package admin has already checked that the caller may see app (and
// may do the change) before it calls a method with an app; a Backend only
// answers for what exists: every method with an app answers
// view.ErrNotFound for a name the config does not have (admins may ask
// for any name).
//
// Errors: a *view.Error with Kind view.ErrNotFound (404), view.ErrConflict
// (409) or view.ErrInvalid (400) is answered with its Msg (404 always with
// "not found"); any other error is answered 500 with no text and logged.
// Methods are called from many goroutines at once and must not block on
// the request path of the proxy.
type Backend interface {
	// Apps returns every app of the config, in config order.
	Apps() []view.App
	// App returns one app with its certificates; ErrNotFound for a name
	// the config does not have.
	App(name string) (view.AppDetail, error)
	// SetMaintenance sets the maintenance override of app (on == nil
	// clears it, so the config's apps[].maintenance holds again), keeps it
	// in state so it survives reloads and restarts, and returns the app as
	// it is now. who names the caller for the state record.
	SetMaintenance(app string, on *bool, who string) (view.App, error)
	// Clients returns the client certificates issued for app (SPEC.md
	// section 11.3), revoked and expired ones included.
	Clients(app string) ([]view.Client, error)
	// IssueClient issues a client certificate for app with the name (""
	// for the default name); ErrInvalid for a bad name, ErrConflict when
	// the space has no CA.
	IssueClient(app, name string) (view.Client, error)
	// DownloadClient returns the files of client certificate id of app
	// (client.crt, client.key, client.pk8, root.crt); ErrNotFound when app
	// has no certificate id, ErrConflict when it is revoked or expired.
	DownloadClient(app, id string) ([]view.File, error)
	// RevokeClient revokes client certificate id of app and returns it;
	// ErrNotFound when app has no certificate id.
	RevokeClient(app, id string) (view.Client, error)
	// TLSConnections returns the open client TLS connections f selects
	// (SPEC.md section 12.5), oldest first. Package admin removes those of
	// apps the caller may not see.
	TLSConnections(f view.TLSFilter) []view.TLSConnection
	// RecentLines returns up to n of app's most recent router lines, oldest
	// first.
	RecentLines(app string, n int) ([]string, error)
	// Subscribe starts a live feed of app's router lines. The feed drops
	// lines for a viewer that falls behind; it never makes a request wait.
	Subscribe(app string) (view.Subscription, error)
}

// RoutersBackend is what a Backend of a shared space (SPEC.md section 14)
// implements besides Backend: GET /api/routers. A Backend without it
// serves a space from a file, and GET /api/routers answers 409.
type RoutersBackend interface {
	// Routers returns the status every router of the space wrote under
	// routers/<id>, by id.
	Routers(ctx context.Context) ([]view.Router, error)
}

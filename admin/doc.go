// Package admin serves the admin API and the dashboard of SPEC.md section
// 13 behind OpenID Connect sign-in: the routes under /api/, the sign-in
// routes under /auth/ and the dashboard at /, registered on the admin
// listener's mux beside /healthz and /metrics (which the router serves,
// never behind login).
//
// It owns authentication (browser sessions from the authorization code
// flow with PKCE, state and nonce; bearer ID tokens for the API), the
// mapping of group claims to roles (admin, owner, collaborator) per app,
// CSRF protection of changes and their audit lines. It does not know the
// router: everything it shows or changes goes through a Backend, in the
// neutral types of package admin/view, so the router implements Backend
// without importing this package or its OpenID Connect client.
package admin

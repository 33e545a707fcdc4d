package admin

import (
	"github.com/spacerouter/spacerouter/config"
)

// rank orders the roles: a person in several groups gets, on each app,
// the strongest role any of them gives.
func rank(role string) int {
	switch role {
	case config.RoleCollaborator:
		return 1
	case config.RoleOwner:
		return 2
	case config.RoleAdmin:
		return 3
	}
	return 0
}

// roleMap is admin.auth.roles by group.
type roleMap struct {
	admins map[string]bool              // groups with role admin
	apps   map[string]map[string]string // group -> app -> role
}

// newRoleMap indexes the config's role mappings.
func newRoleMap(mappings []config.RoleMapping) *roleMap {
	m := &roleMap{admins: map[string]bool{}, apps: map[string]map[string]string{}}
	for _, r := range mappings {
		if r.Role == config.RoleAdmin {
			m.admins[r.Group] = true
			continue
		}
		apps := m.apps[r.Group]
		if apps == nil {
			apps = map[string]string{}
			m.apps[r.Group] = apps
		}
		for _, a := range r.Apps {
			if rank(r.Role) > rank(apps[a]) {
				apps[a] = r.Role
			}
		}
	}
	return m
}

// grants is what one caller may do: every app as admin, or a role per
// app.
type grants struct {
	admin bool
	apps  map[string]string // app -> owner or collaborator
}

// grantsFor maps a caller's groups to roles.
func (m *roleMap) grantsFor(groups []string) grants {
	var g grants
	for _, grp := range groups {
		if m.admins[grp] {
			g.admin = true
		}
		for app, role := range m.apps[grp] {
			if g.apps == nil {
				g.apps = map[string]string{}
			}
			if rank(role) > rank(g.apps[app]) {
				g.apps[app] = role
			}
		}
	}
	return g
}

// none reports whether the caller has no role at all.
func (g grants) none() bool { return !g.admin && len(g.apps) == 0 }

// role returns the caller's role on app, "" when none.
func (g grants) role(app string) string {
	if g.admin {
		return config.RoleAdmin
	}
	return g.apps[app]
}

// may reports whether the caller's role on app is at least want.
func (g grants) may(app, want string) bool {
	r := g.role(app)
	return r != "" && rank(r) >= rank(want)
}

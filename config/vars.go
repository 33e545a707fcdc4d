package config

import "go.yaml.in/yaml/v3"

// Config vars the router reads (SPEC.md sections 3 and 9).
const (
	varErrorPage       = "ERROR_PAGE_URL"
	varMaintenancePage = "MAINTENANCE_PAGE_URL"
	varExtraResolver   = "HEROKU_EXTRA_RESOLVER"
)

// configVars decodes the app's config vars: names to scalar values, kept
// as written (PORT: 5000 is "5000"). An empty value means the var is unset,
// so it is not checked.
func (d *decoder) configVars(key string, n *yaml.Node) map[string]string {
	vars := map[string]string{}
	if isNull(n) {
		return vars
	}
	d.mapping(key, n, "a mapping of config var names to values", func(name string, p pair) {
		k := join(key, name)
		if name == "" {
			d.problem(p.k, key, "empty config var name")
			return
		}
		v := d.str(k, p.v)
		if msg := varProblem(name, v); v != "" && msg != "" {
			d.problem(p.v, k, "%s", msg)
		}
		vars[name] = v
	})
	return vars
}

// varProblem checks the value of a config var the router reads.
func varProblem(name, v string) string {
	switch name {
	case varErrorPage, varMaintenancePage:
		return urlProblem(v)
	case varExtraResolver:
		return resolverProblem(v)
	}
	return ""
}

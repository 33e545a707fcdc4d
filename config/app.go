package config

import (
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// appName is the rule for app names (SPEC.md section 2).
var appName = regexp.MustCompile(`^[a-z][a-z0-9-]{2,29}$`)

// apps decodes the app list; a space needs at least one app.
func (d *decoder) apps(root, n *yaml.Node, c *Config) {
	ok := n != nil && d.list("apps", n, func(k string, item *yaml.Node) {
		if a, ok := d.app(k, item, c); ok {
			c.Apps = append(c.Apps, a)
		}
	})
	if n == nil || ok && len(deref(n).Content) == 0 {
		at := root
		if n != nil {
			at = n
		}
		d.problem(at, "apps", "no app: want a list with at least one app, each with name and domains")
	}
}

// appNodes holds the values of the app keys that are checked once the
// whole app is read (domains need the name; certificates the domains;
// mtls the certificates; dyno_tls the dynos), and where the dynos are.
type appNodes struct {
	name, domains, tls, features, vars, mtls, dynoTLS *yaml.Node
	dynos                                             []dynoRef
}

// app decodes one app, merging its timeouts into the global ones of c.
func (d *decoder) app(key string, n *yaml.Node, c *Config) (App, bool) {
	a := defaultApp(c.Timeouts)
	var nodes appNodes
	_, ok := d.fields(key, n, d.appFields(&a, &nodes))
	if !ok {
		return a, false
	}
	a.Name = d.appName(key, n, nodes.name)
	a.Domains = d.appDomains(key, n, nodes.domains, owner{key: key, name: a.Name})
	if nodes.features != nil && !isNull(nodes.features) {
		a.Features, a.FeatureSet = d.features(join(key, "features"), nodes.features)
	}
	if nodes.vars != nil {
		a.ConfigVars = d.configVars(join(key, "config_vars"), nodes.vars)
	}
	d.needResolver(key, nodes.features, a)
	a.TLS, a.TLSAuto = d.appTLS(join(key, "tls"), nodes.tls, a.Domains, c)
	a.MTLS = d.mtls(join(key, "mtls"), nodes.mtls, nodes.tls, c.SpaceCA != nil)
	a.DynoTLS = d.dynoTLS(join(key, "dyno_tls"), nodes.dynoTLS, a.Dynos, nodes.dynos)
	if c.Listen.HTTPS != "" && len(a.TLS) == 0 && !a.TLSAuto {
		d.warn(n, join(key, "tls"), "no certificate: the https listener refuses this app's domains")
	}
	return a, true
}

// appFields is the table of the keys of an app. The keys checked against
// others once the whole app is read are only kept in nodes.
func (d *decoder) appFields(a *App, nodes *appNodes) []field {
	keep := func(dst **yaml.Node) func(string, *yaml.Node) {
		return func(_ string, v *yaml.Node) { *dst = v }
	}
	return []field{
		{"name", keep(&nodes.name)},
		{"domains", keep(&nodes.domains)},
		{"tls", keep(&nodes.tls)},
		{"features", keep(&nodes.features)},
		{"maintenance", func(k string, v *yaml.Node) { d.boolean(k, v, &a.Maintenance) }},
		{"timeouts", func(k string, v *yaml.Node) { d.section(k, v, d.timeoutFields(&a.Timeouts)) }},
		{"config_vars", keep(&nodes.vars)},
		{"dynos", func(k string, v *yaml.Node) { a.Dynos, nodes.dynos = d.dynos(k, v) }},
		{"mtls", keep(&nodes.mtls)},
		{"ip_rules", func(k string, v *yaml.Node) { a.IPRules = d.ipRules(k, v) }},
		{"dyno_tls", keep(&nodes.dynoTLS)},
	}
}

// appName checks the app's name: required, the naming rule, unique.
func (d *decoder) appName(key string, app, n *yaml.Node) string {
	k := join(key, "name")
	const msg = "every app needs a name such as shop"
	switch {
	case n == nil:
		d.problem(app, k, "missing: %s", msg)
		return ""
	case isEmpty(n):
		d.problem(n, k, "missing value: %s", msg)
		return ""
	}
	name := d.str(k, n)
	switch first, dup := d.appNames[name]; {
	case name == "":
	case !appName.MatchString(name):
		d.problem(n, k, "bad app name %q: want 3 to 30 characters of a-z, 0-9 and -, starting with a letter", name)
	case dup:
		d.problem(n, k, "app name %q is already the name of %s: want unique names", name, first)
	default:
		d.appNames[name] = key
	}
	return name
}

// pick returns n when it is set, else fallback: a missing key's problem is
// on the line of the mapping that lacks it.
func pick(n, fallback *yaml.Node) *yaml.Node {
	if n != nil {
		return n
	}
	return fallback
}

// appDomains checks the app's domains and claims each for o; a domain
// belongs to one app only.
func (d *decoder) appDomains(key string, app, n *yaml.Node, o owner) []string {
	k := join(key, "domains")
	if n == nil || isNull(n) || deref(n).Kind == yaml.SequenceNode && len(deref(n).Content) == 0 {
		d.problem(pick(n, app), k, "missing: every app needs at least one domain, such as [shop.example.com]")
		return nil
	}
	out := []string{}
	d.list(k, n, func(_ string, item *yaml.Node) {
		s := d.str(k, item)
		if deref(item).Kind != yaml.ScalarNode {
			return
		}
		if msg := domainProblem(s); msg != "" {
			d.problem(item, k, "%s", msg)
			return
		}
		if d.claim(item, k, s, o) {
			out = append(out, s)
		}
	})
	return out
}

// claim records that domain s belongs to o, refusing a domain that another
// app, or the same app, already listed.
func (d *decoder) claim(n *yaml.Node, key, s string, o owner) bool {
	prev, dup := d.domains[s]
	switch {
	case !dup:
		d.domains[s] = o
		return true
	case prev.key == o.key:
		d.problem(n, key, "domain %q is listed twice", s)
	case prev.name != "":
		d.problem(n, key, "domain %q is already a domain of app %q (%s): a domain belongs to one app", s, prev.name, prev.key)
	default:
		d.problem(n, key, "domain %q is already a domain of %s: a domain belongs to one app", s, prev.key)
	}
	return false
}

// knownFeatures are the features an app may have, in SPEC.md order.
var knownFeatures = []string{
	FeatureTLSSalesforce,
	FeatureTLSModern,
	FeatureStrictTLS,
	FeatureDisableHTTP2,
	FeatureDisableKeepaliveToDyno,
	FeatureEndToEndContinue,
	FeatureExtraResolver,
}

// features decodes an explicit features list; [] stays empty.
func (d *decoder) features(key string, n *yaml.Node) ([]string, map[string]bool) {
	list, set := []string{}, map[string]bool{}
	d.list(key, n, func(_ string, item *yaml.Node) {
		f := d.str(key, item)
		if deref(item).Kind != yaml.ScalarNode {
			return
		}
		if msg := featureProblem(f, set); msg != "" {
			d.problem(item, key, "%s", msg)
			return
		}
		if f == FeatureStrictTLS {
			d.warn(item, key, "%s is deprecated; use %s", FeatureStrictTLS, FeatureTLSModern)
		}
		list = append(list, f)
		set[f] = true
	})
	return list, set
}

// featureProblem checks one feature against the known ones and those
// already listed.
func featureProblem(f string, set map[string]bool) string {
	switch {
	case f == FeatureTLSLegacy:
		return fmt.Sprintf("feature %q was retired in April 2023: choose %s or %s",
			f, FeatureTLSSalesforce, FeatureTLSModern)
	case set[f]:
		return fmt.Sprintf("feature %q is listed twice", f)
	}
	for _, k := range knownFeatures {
		if f == k {
			return ""
		}
	}
	return fmt.Sprintf("unknown feature %q: known features are %s", f, strings.Join(knownFeatures, ", "))
}

// needResolver refuses spaces-extra-resolver without HEROKU_EXTRA_RESOLVER.
func (d *decoder) needResolver(key string, features *yaml.Node, a App) {
	if a.Has(FeatureExtraResolver) && a.ConfigVars[varExtraResolver] == "" {
		d.problem(features, join(key, "features"), "feature %s needs config var %s (IP or IP:port)",
			FeatureExtraResolver, varExtraResolver)
	}
}

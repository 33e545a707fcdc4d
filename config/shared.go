package config

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KV is one key of a shared store (SPEC.md section 14), named without the
// store's prefix ("apps/shop"), with its value and the etcd revision that
// last wrote it.
type KV struct {
	Key         string `json:"key"`
	Value       string `json:"value"`
	ModRevision int64  `json:"mod_revision"`
}

// Refusal is a key of the store that is not in force, and why: every
// problem of its value, "KEY: MSG" joined with "; ". This is the shape of
// the refused list under routers/<id>.
type Refusal struct {
	Key     string `json:"key"`
	Problem string `json:"problem"`
}

// String returns the refusal as -check writes it: etcd:KEY: PROBLEM.
func (r Refusal) String() string {
	return keyFile(r.Key) + ": " + r.Problem
}

// Store key names (SPEC.md section 14).
const (
	KeySpace       = "space"
	KeyApps        = "apps/"
	KeyDynos       = "dynos/"
	KeyMaintenance = "maintenance/"
	KeyClients     = "clients/"
	KeyRouters     = "routers/"
	KeyACME        = "acme/"
)

// keyFile is what problems about a key name as their file: etcd:apps/shop.
func keyFile(key string) string { return "etcd:" + key }

// Shared is the config built from the keys of a store: the file's local
// part with the space's settings, apps, dynos and maintenance switches of
// the keys in force, and the keys refused. It is read-only; the next build
// takes it as prev to keep refused keys' last good values.
type Shared struct {
	// Config is the config to serve: the local file's listen, log, store
	// and space name, the settings of key space and the apps of the keys
	// in force, sorted by name. Its warnings name their key.
	Config *Config
	// Refused are the keys not in force, sorted by key.
	Refused []Refusal
	// Clients are the values of the keys clients/<app>/<id>, by
	// "<app>/<id>", as written: package spaceca owns their shape.
	Clients map[string]string

	inForce map[string]KV        // config key -> the value in force (the last good one)
	claims  map[string]claim     // domain -> the app holding it and since when
	apps    map[string]appRef    // apps/<app> -> its value in force, decoded
	dynos   map[string]dynoValue // dynos/<app>/<dyno> -> its last value, decoded
	space   int64                // mod revision of the space value in force; 0: defaults
	local   *Config              // the file config built on: apps are decoded again for another
}

// claim is an app's hold on a domain: the revision from which the app's
// values in force have listed it without a break.
type claim struct {
	app string
	rev int64
}

// appRef is a decoded app value, kept so that a build decodes (and loads
// the certificates of) only the apps whose value or space changed.
type appRef struct {
	kv    KV
	space int64 // the space revision it was decoded against
	app   App
	warns []Problem
}

// InForce returns the values in force of the config keys (space, apps,
// dynos, maintenance), sorted by key, and of the clients keys: what a
// cache file keeps, as a build from them gives the same config.
func (s *Shared) InForce() []KV {
	out := make([]KV, 0, len(s.inForce))
	for _, kv := range s.inForce {
		out = append(out, kv)
	}
	slices.SortFunc(out, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// BuildShared builds the config of a space whose apps live in a store
// from local, the config file with store (or any valid config: its apps
// are dropped), and kvs, every key under the store's prefix read at one
// revision, names without the prefix. Each key is validated on its own,
// as -check validates a file, with problems naming the key; a key that
// does not validate is refused alone and its value in prev, the last
// build (nil at first), stays in force, or the app stays absent. Two apps
// claiming one domain: the app whose claim began at the later revision is
// refused. Relative paths in the values are resolved against the
// directory of the config file. Keys under clients/ are passed through
// (Shared.Clients); routers/ and acme/ are not config and are skipped.
func BuildShared(local *Config, kvs []KV, prev *Shared) *Shared {
	return BuildSharedWith(local, kvs, prev, LoadOptions{})
}

// BuildSharedWith is BuildShared with the checks of the values relaxed
// as opts says, as LoadWith relaxes them for a file: `spacerouter ca
// init` of a space in a store builds it with SkipSpaceCAFiles.
func BuildSharedWith(local *Config, kvs []KV, prev *Shared, opts LoadOptions) *Shared {
	if prev == nil {
		prev = &Shared{}
	}
	b := &builder{
		local: local,
		dir:   filepath.Dir(local.File),
		opts:  opts,
		prev:  prev,
		out: &Shared{
			local:   local,
			Clients: map[string]string{},
			inForce: make(map[string]KV, len(kvs)),
			claims:  make(map[string]claim, len(prev.claims)),
			apps:    make(map[string]appRef, len(prev.apps)),
			dynos:   make(map[string]dynoValue, len(prev.dynos)),
		},
		refused: map[string][]string{},
	}
	keys := b.sort(kvs)
	cfg := b.spaceConfig(keys.space)
	apps := b.apps(keys.apps, cfg)
	b.maintenance(keys.maintenance, apps)
	b.dynos(keys.dynos, apps)
	b.finish(cfg, apps)
	return b.out
}

// builder holds one BuildShared.
type builder struct {
	local   *Config
	dir     string
	opts    LoadOptions
	prev    *Shared
	out     *Shared
	warns   []Problem
	refused map[string][]string // key -> problems, "KEY: MSG"
}

// sortedKeys are the keys of one build by kind; each list in key order.
type sortedKeys struct {
	space                    *KV
	apps, dynos, maintenance []KV
}

// sort classifies kvs, refusing keys of no known kind.
func (b *builder) sort(kvs []KV) sortedKeys {
	var k sortedKeys
	for _, kv := range kvs {
		switch {
		case kv.Key == KeySpace:
			k.space = &kv
		case strings.HasPrefix(kv.Key, KeyApps):
			k.apps = append(k.apps, kv)
		case strings.HasPrefix(kv.Key, KeyDynos):
			k.dynos = append(k.dynos, kv)
		case strings.HasPrefix(kv.Key, KeyMaintenance):
			k.maintenance = append(k.maintenance, kv)
		case strings.HasPrefix(kv.Key, KeyClients):
			b.out.Clients[strings.TrimPrefix(kv.Key, KeyClients)] = kv.Value
			b.out.inForce[kv.Key] = kv
		case strings.HasPrefix(kv.Key, KeyRouters), strings.HasPrefix(kv.Key, KeyACME):
		default:
			b.refuse(kv.Key, "", "unknown key: want space, apps/<app>, dynos/<app>/<dyno>, maintenance/<app>, "+
				"clients/<app>/<id>, acme/... or routers/<id>")
		}
	}
	byKey := func(a, b KV) int { return strings.Compare(a.Key, b.Key) }
	slices.SortFunc(k.apps, byKey)
	slices.SortFunc(k.dynos, byKey)
	slices.SortFunc(k.maintenance, byKey)
	return k
}

// refuse records a problem of key; path is the path inside its value.
func (b *builder) refuse(key, path, msg string) {
	if path != "" {
		msg = path + ": " + msg
	}
	b.refused[key] = append(b.refused[key], msg)
}

// refuseAll records the problems a decoder found in the value of key.
func (b *builder) refuseAll(key string, probs []Problem) {
	for _, p := range probs {
		b.refuse(key, p.Key, p.Msg)
	}
}

// decoder returns a decoder for the value of key.
func (b *builder) decoder(key string) *decoder {
	return &decoder{
		file:     keyFile(key),
		dir:      b.dir,
		opts:     b.opts,
		appNames: map[string]string{},
		domains:  map[string]owner{},
	}
}

// value parses the value of a key as one YAML mapping; want says what it
// should hold, for the message about an empty one.
func (d *decoder) value(kv KV, want string) *yaml.Node {
	if strings.TrimSpace(kv.Value) == "" {
		d.problem(nil, "", "empty value: want %s", want)
		return nil
	}
	root := d.document([]byte(kv.Value))
	if root == nil || len(d.probs) > 0 {
		return nil
	}
	return root
}

// spaceFields are the keys of the space key: the settings shared by the
// routers of a space.
var spaceFields = []string{"timeouts", "limits", "buffering", "acme", "space_ca"}

// spaceConfig returns the local config overlaid with the space key's
// settings: its value when it validates, else the one in force, else the
// defaults.
func (b *builder) spaceConfig(kv *KV) *Config {
	if kv != nil {
		cfg, probs, warns := b.decodeSpace(*kv)
		if len(probs) == 0 {
			b.keep(*kv, warns)
			b.out.space = kv.ModRevision
			return cfg
		}
		b.refuseAll(kv.Key, probs)
		if old, ok := b.prev.inForce[KeySpace]; ok && old.ModRevision != kv.ModRevision {
			if cfg, probs, warns := b.decodeSpace(old); len(probs) == 0 {
				b.keep(old, warns)
				b.out.space = old.ModRevision
				return cfg
			}
		}
	}
	cfg, _, _ := b.decodeSpace(KV{Key: KeySpace, Value: "{}"})
	return cfg
}

// keep puts kv in force with the warnings of its value.
func (b *builder) keep(kv KV, warns []Problem) {
	b.out.inForce[kv.Key] = kv
	b.warns = append(b.warns, warns...)
}

// decodeSpace decodes the value of the space key over the local config.
func (b *builder) decodeSpace(kv KV) (*Config, []Problem, []Problem) {
	cfg := Defaults()
	cfg.File, cfg.Space, cfg.Listen, cfg.Log, cfg.Store = b.local.File, b.local.Space, b.local.Listen, b.local.Log, b.local.Store
	d := b.decoder(kv.Key)
	root := d.value(kv, "a mapping with keys "+strings.Join(spaceFields, ", "))
	if root != nil {
		var apps *yaml.Node
		d.fields("", root, only(d.rootFields(&cfg, &apps), spaceFields))
	}
	return &cfg, noLines(d.probs), noLines(d.warns)
}

// only returns the fields of fs named in names.
func only(fs []field, names []string) []field {
	var out []field
	for _, f := range fs {
		if slices.Contains(names, f.name) {
			out = append(out, f)
		}
	}
	return out
}

// noLines drops the line numbers of problems about a key's value: SPEC.md
// section 14 names the key and the path in the value (etcd:apps/shop:
// domains[0]: ...).
func noLines(ps []Problem) []Problem {
	for i := range ps {
		ps[i].Line = 0
	}
	return ps
}

// candidate is an app value that may be served.
type candidate struct {
	key  string
	ref  appRef
	last bool // ref is the value in force before this build, the new one refused
}

// apps decodes every app key against cfg and settles the domains two apps
// claim.
func (b *builder) apps(kvs []KV, cfg *Config) []*candidate {
	var cands []*candidate
	for _, kv := range kvs {
		if c := b.appCandidate(kv, cfg); c != nil {
			cands = append(cands, c)
		}
	}
	return b.settleDomains(cands, cfg)
}

// appCandidate returns the value of an app key to serve: the new one
// when it validates, else the one in force, else nil.
func (b *builder) appCandidate(kv KV, cfg *Config) *candidate {
	name := strings.TrimPrefix(kv.Key, KeyApps)
	if !appName.MatchString(name) {
		b.refuse(kv.Key, "", fmt.Sprintf("bad app name %q in the key: want 3 to 30 characters of a-z, 0-9 and -, starting with a letter", name))
		return nil
	}
	ref, probs := b.decodeApp(kv, name, cfg)
	if len(probs) == 0 {
		return &candidate{key: kv.Key, ref: ref}
	}
	b.refuseAll(kv.Key, probs)
	return b.lastGood(kv.Key, kv.ModRevision, cfg)
}

// lastGood returns the app value in force before this build, unless it is
// the value at rev (just refused) or no longer validates against cfg.
func (b *builder) lastGood(key string, rev int64, cfg *Config) *candidate {
	old, ok := b.prev.inForce[key]
	if !ok || old.ModRevision == rev {
		return nil
	}
	ref, probs := b.decodeApp(old, strings.TrimPrefix(key, KeyApps), cfg)
	if len(probs) > 0 {
		return nil
	}
	return &candidate{key: key, ref: ref, last: true}
}

// decodeApp decodes the value of the key apps/<name> against cfg, reusing
// the last build's result for the same value and space.
func (b *builder) decodeApp(kv KV, name string, cfg *Config) (appRef, []Problem) {
	if r, ok := b.prev.apps[kv.Key]; ok && b.prev.local == b.local && r.kv == kv && r.space == b.out.space {
		return r, nil
	}
	d := b.decoder(kv.Key)
	ref := appRef{kv: kv, space: b.out.space}
	root := d.value(kv, "a mapping of the app, such as {domains: [shop.example.com]}")
	if root != nil && deref(root).Kind == yaml.MappingNode {
		root = d.appValue(deref(root), name)
	}
	if root != nil {
		if a, ok := d.app("", root, cfg); ok {
			ref.app = a
		}
	}
	ref.warns = noLines(d.warns)
	return ref, noLines(d.probs)
}

// appValue checks the keys of an app value that differ from a file's app:
// no dynos (they are keys of their own), and a name, when given, equal to
// the key's. It returns a copy of root with the name set and without
// dynos.
func (d *decoder) appValue(root *yaml.Node, name string) *yaml.Node {
	out := *root
	out.Content = nil
	hasName := false
	for _, p := range d.pairs("", root, map[*yaml.Node]bool{}) {
		switch k := deref(p.k); k.Value {
		case "dynos":
			d.problem(p.k, "dynos", "not in an app's key: write each dyno as the key dynos/%s/<dyno> with {address, state}", name)
			continue
		case "name":
			hasName = true
			if v := deref(p.v); v.Kind == yaml.ScalarNode && v.Value != name {
				d.problem(p.v, "name", "%q is not the app of the key, %q: write name: %s, or leave name out", v.Value, name, name)
			}
		}
		out.Content = append(out.Content, p.k, p.v)
	}
	if !hasName {
		out.Content = append(out.Content,
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "name"},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name})
	}
	return &out
}

// claimRev is the revision from which c's app has held domain dom: kept
// from the last build while its values in force listed it, else the
// revision of c's value.
func (b *builder) claimRev(c *candidate, dom string) int64 {
	if old, ok := b.prev.claims[dom]; ok && old.app == c.ref.app.Name {
		return old.rev
	}
	return c.ref.kv.ModRevision
}

// settleDomains refuses, for each domain two apps list, the app whose
// claim began at the later revision (the app name breaks a tie); a
// refused new value gives way to the value in force, which may lose
// again. It returns the apps to serve and records the claims.
func (b *builder) settleDomains(cands []*candidate, cfg *Config) []*candidate {
	for {
		holder := map[string]*candidate{}
		rev := map[string]int64{}
		for _, c := range cands {
			for _, dom := range c.ref.app.Domains {
				r := b.claimRev(c, dom)
				if h, ok := holder[dom]; !ok || r < rev[dom] || r == rev[dom] && c.ref.app.Name < h.ref.app.Name {
					holder[dom], rev[dom] = c, r
				}
			}
		}
		var next []*candidate
		lost := false
		for _, c := range cands {
			dom := ""
			for _, d := range c.ref.app.Domains {
				if holder[d] != c {
					dom = d
					break
				}
			}
			if dom == "" {
				next = append(next, c)
				continue
			}
			lost = true
			h := holder[dom]
			if c.last {
				continue // the new value was refused already; the app is absent
			}
			b.refuse(c.key, "domains", fmt.Sprintf("domain %q is already a domain of app %q (key %s, since revision %d): "+
				"a domain belongs to one app, and the later claim is refused", dom, h.ref.app.Name, h.key, rev[dom]))
			if old := b.lastGood(c.key, c.ref.kv.ModRevision, cfg); old != nil {
				next = append(next, old)
			}
		}
		cands = next
		if !lost {
			break
		}
	}
	for _, c := range cands {
		for _, dom := range c.ref.app.Domains {
			b.out.claims[dom] = claim{app: c.ref.app.Name, rev: b.claimRev(c, dom)}
		}
		b.keep(c.ref.kv, c.ref.warns)
		b.out.apps[c.key] = c.ref
	}
	return cands
}

// maintenance applies the keys maintenance/<app> (the admin API's switch,
// true or false) over the apps' own maintenance.
func (b *builder) maintenance(kvs []KV, cands []*candidate) {
	byName := appsByName(cands)
	for _, kv := range kvs {
		on, ok := b.decodeSwitch(kv)
		if !ok {
			old, had := b.prev.inForce[kv.Key]
			if !had || old.ModRevision == kv.ModRevision {
				continue
			}
			if on, ok = b.decodeSwitchQuiet(old); !ok {
				continue
			}
			kv = old
		}
		b.out.inForce[kv.Key] = kv
		if c := byName[strings.TrimPrefix(kv.Key, KeyMaintenance)]; c != nil {
			c.Maintenance = on
		}
	}
}

// decodeSwitch decodes a maintenance value, refusing a bad one.
func (b *builder) decodeSwitch(kv KV) (bool, bool) {
	on, probs := b.switchValue(kv)
	b.refuseAll(kv.Key, probs)
	return on, len(probs) == 0
}

// decodeSwitchQuiet decodes a maintenance value in force before.
func (b *builder) decodeSwitchQuiet(kv KV) (bool, bool) {
	on, probs := b.switchValue(kv)
	return on, len(probs) == 0
}

// switchValue decodes the value of maintenance/<app>: true or false.
func (b *builder) switchValue(kv KV) (bool, []Problem) {
	d := b.decoder(kv.Key)
	var on bool
	if app := strings.TrimPrefix(kv.Key, KeyMaintenance); !appName.MatchString(app) {
		d.problem(nil, "", "bad app name %q in the key: want maintenance/<app>, the app 3 to 30 characters of a-z, 0-9 and -", app)
	} else if strings.TrimSpace(kv.Value) == "" {
		d.problem(nil, "", "empty value: want true or false")
	} else if root := d.document([]byte(kv.Value)); root != nil {
		d.boolean("", root, &on)
	}
	return on, noLines(d.probs)
}

// appsByName indexes the apps to serve by name; the pointers let the
// maintenance switches and the dynos change the build's copies.
func appsByName(cands []*candidate) map[string]*App {
	m := make(map[string]*App, len(cands))
	for _, c := range cands {
		m[c.ref.app.Name] = &c.ref.app
	}
	return m
}

// dynos decodes the keys dynos/<app>/<dyno> and gives each app its dynos,
// sorted by name. A dyno of an app that is not served is kept in force,
// for when the app comes.
func (b *builder) dynos(kvs []KV, cands []*candidate) {
	byName := appsByName(cands)
	for _, c := range cands {
		c.ref.app.Dynos = []Dyno{} // a copy: the cached app keeps its own
	}
	for _, kv := range kvs {
		app, name, _ := strings.Cut(strings.TrimPrefix(kv.Key, KeyDynos), "/")
		a := byName[app]
		dy, probs := b.decodeDyno(kv, app, name, a)
		if len(probs) > 0 {
			b.refuseAll(kv.Key, probs)
			old, had := b.prev.inForce[kv.Key]
			if !had || old.ModRevision == kv.ModRevision {
				continue
			}
			if dy, probs = b.decodeDyno(old, app, name, a); len(probs) > 0 {
				continue
			}
			kv = old
		}
		b.out.inForce[kv.Key] = kv
		if a != nil {
			a.Dynos = append(a.Dynos, dy)
		}
	}
	for _, c := range cands {
		slices.SortFunc(c.ref.app.Dynos, func(x, y Dyno) int { return cmp.Compare(x.Name, y.Name) })
	}
}

// dynoValueFields are the keys of a dyno's value; its name is the key's.
var dynoValueFields = []string{"address", "state"}

// dynoValue is a decoded dyno value, kept so that a build parses only the
// dyno keys that changed.
type dynoValue struct {
	kv    KV
	dyno  Dyno
	probs []Problem
}

// decodeDyno decodes the value of dynos/<app>/<name>; a, when not nil, is
// its app, whose dyno_tls it must suit.
func (b *builder) decodeDyno(kv KV, app, name string, a *App) (Dyno, []Problem) {
	r, ok := b.prev.dynos[kv.Key]
	if !ok || r.kv != kv {
		r = b.parseDyno(kv, app, name)
	}
	b.out.dynos[kv.Key] = r
	if len(r.probs) > 0 {
		return r.dyno, r.probs
	}
	if msg := dynoTLSProblem(r.dyno, app, a); msg != "" {
		return r.dyno, []Problem{{File: keyFile(kv.Key), Key: "address", Msg: msg}}
	}
	return r.dyno, nil
}

// parseDyno decodes the key and value of dynos/<app>/<name> alone.
func (b *builder) parseDyno(kv KV, app, name string) dynoValue {
	d := b.decoder(kv.Key)
	r := dynoValue{kv: kv, dyno: defaultDyno()}
	r.dyno.Name = name
	switch {
	case !appName.MatchString(app):
		d.problem(nil, "", "bad app name %q in the key: want dynos/<app>/<dyno>, the app 3 to 30 characters of a-z, 0-9 and -", app)
	case !dynoName.MatchString(name):
		d.problem(nil, "", "bad dyno name %q in the key: want dynos/<app>/<dyno>, the dyno up to 100 characters of "+
			"A-Z, a-z, 0-9, ., _ and -, such as web.1", name)
	default:
		if root := d.value(kv, "a mapping such as {address: 10.0.1.5:5000, state: up}"); root != nil {
			seen, ok := d.fields("", root, only(d.dynoFields(&r.dyno, "", map[string]string{}), dynoValueFields))
			if ok {
				d.need("", root, seen, "address", "every dyno needs an address host:port such as 127.0.0.1:5000")
			}
		}
	}
	r.probs = noLines(d.probs)
	return r
}

// dynoTLSProblem refuses a dyno at an IP address of an app whose
// dyno_tls is verify-full without server_name (as the file's check does).
func dynoTLSProblem(dy Dyno, app string, a *App) string {
	if a == nil || a.DynoTLS.Mode != DynoTLSVerifyFull || a.DynoTLS.ServerName != "" {
		return ""
	}
	host, _, err := net.SplitHostPort(dy.Address)
	if err != nil {
		return ""
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return ""
	}
	return fmt.Sprintf("dyno %s has an IP address (%s), and the dyno_tls mode of app %s is verify-full, "+
		"which checks the dyno's certificate against a host name: set dyno_tls.server_name in apps/%s, "+
		"or give the dyno a host name", dy.Name, host, app, app)
}

// finish puts the apps into a copy of cfg and lists the refusals.
func (b *builder) finish(cfg *Config, cands []*candidate) {
	c := *cfg
	c.Apps = make([]App, 0, len(cands))
	for _, cand := range cands {
		c.Apps = append(c.Apps, cand.ref.app)
	}
	slices.SortFunc(c.Apps, func(x, y App) int { return strings.Compare(x.Name, y.Name) })
	c.warnings = append(slices.Clone(b.local.warnings), b.warns...)
	b.out.Config = &c
	for key, probs := range b.refused {
		b.out.Refused = append(b.out.Refused, Refusal{Key: key, Problem: strings.Join(probs, "; ")})
	}
	slices.SortFunc(b.out.Refused, func(x, y Refusal) int { return strings.Compare(x.Key, y.Key) })
}

package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path and parses it with Parse, so problems
// name path as given. A file that cannot be read is an error wrapping the
// os error (errors.Is(err, fs.ErrNotExist) works); a file that is not a
// valid config is an *Errors.
func Load(path string) (*Config, error) {
	return LoadWith(path, LoadOptions{})
}

// LoadOptions relaxes what Load and Parse check, for the commands that
// must read a config before it is complete. The zero value checks
// everything, as Load and Parse do.
type LoadOptions struct {
	// SkipSpaceCAFiles leaves the files of space_ca.cert, space_ca.key and
	// space_ca.previous[].cert unread: the keys are still required and
	// their paths resolved against the config file's directory, but the
	// files need not exist, and nothing is checked of their contents.
	// `spacerouter ca init` loads the file this way, as it makes the CA
	// at those paths. Everything else (state_dir, retire_at, every other
	// key and file) is checked as by Load.
	SkipSpaceCAFiles bool
}

// LoadWith is Load with options: it reads the config file at path and
// parses it with ParseWith.
func LoadWith(path string, opts LoadOptions) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading config: %w", err)
	}
	return ParseWith(path, data, opts)
}

// Parse parses and validates the config file data; name is the file's name,
// used in problems, as Config.File and, through its directory, to resolve
// relative paths in the file. On success the Config has every default
// applied and every app's timeouts merged. Otherwise the error is an
// *Errors listing every problem in file order.
func Parse(name string, data []byte) (*Config, error) {
	return ParseWith(name, data, LoadOptions{})
}

// ParseWith is Parse with options; see LoadOptions.
func ParseWith(name string, data []byte, opts LoadOptions) (*Config, error) {
	d := &decoder{
		file:     name,
		dir:      filepath.Dir(name),
		opts:     opts,
		appNames: make(map[string]string),
		domains:  make(map[string]owner),
	}
	c := Defaults()
	c.File = name
	if root := d.document(data); root != nil {
		d.config(root, &c)
	}
	if len(d.probs) > 0 {
		sortByLine(d.probs)
		return nil, &Errors{Problems: d.probs}
	}
	sortByLine(d.warns)
	c.warnings = d.warns
	return &c, nil
}

// Warnings returns the non-fatal notes found while loading, one line each
// in the shape of a problem (FILE:LINE: KEY: MSG): a deprecated feature, a
// certificate that covers none of its app's domains, a previous space CA
// whose retire_at is past, tls: auto without listen.https, a dyno_tls key
// the mode does not use, an expired certificate in a trust bundle. cmd
// logs them.
func (c *Config) Warnings() []string {
	out := make([]string, len(c.warnings))
	for i, w := range c.warnings {
		out[i] = w.String()
	}
	return out
}

// App returns the app named name, or nil.
func (c *Config) App(name string) *App {
	for i := range c.Apps {
		if c.Apps[i].Name == name {
			return &c.Apps[i]
		}
	}
	return nil
}

// syntaxLine splits go.yaml.in/yaml/v3's "yaml: line 3: did not find expected key".
var syntaxLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data as exactly one YAML document and returns its root
// node, or nil after recording why there is none.
func (d *decoder) document(data []byte) *yaml.Node {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			d.problem(nil, "", "empty file: want a mapping with at least listen and apps")
		} else {
			d.syntax(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		d.syntax(err)
	default:
		d.problem(&next, "", "a second YAML document: want exactly one")
	}
	if len(doc.Content) == 0 {
		d.problem(&doc, "", "empty document: want a mapping with at least listen and apps")
		return nil
	}
	if !d.checkAliases(doc.Content[0]) {
		return nil
	}
	return doc.Content[0]
}

// syntax records a YAML syntax error at its line.
func (d *decoder) syntax(err error) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{File: d.file, Msg: "bad YAML: " + msg}
	if m := syntaxLine.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = "bad YAML: " + m[2]
	}
	d.probs = append(d.probs, p)
}

// config decodes the top-level mapping into c. Apps come last, whatever
// their place in the file, so that they merge the final global timeouts
// and know whether the space has a space_ca, an acme section and an https
// listener; admin is checked against listen.admin and the apps after them.
func (d *decoder) config(root *yaml.Node, c *Config) {
	var apps *yaml.Node
	seen, ok := d.fields("", root, d.rootFields(c, &apps))
	if !ok {
		return
	}
	d.needListener(root, seen, c.Listen)
	if c.Store != nil {
		// The apps live in etcd (SPEC.md section 14): BuildShared
		// decodes them, key by key.
		d.storeRoot(seen, c)
		return
	}
	d.apps(root, apps, c)
	d.checkAdmin(c, &d.adminAt)
}

// rootFields is the table of the top-level keys; apps is only kept in
// *apps, to be decoded last.
func (d *decoder) rootFields(c *Config, apps **yaml.Node) []field {
	return []field{
		{"space", func(k string, v *yaml.Node) { c.Space = d.str(k, v) }},
		{"listen", func(k string, v *yaml.Node) { d.section(k, v, d.listenFields(&c.Listen)) }},
		{"log", func(k string, v *yaml.Node) { d.section(k, v, d.logFields(&c.Log)) }},
		{"timeouts", func(k string, v *yaml.Node) { d.section(k, v, d.timeoutFields(&c.Timeouts)) }},
		{"limits", func(k string, v *yaml.Node) { d.limits(k, v, &c.Limits) }},
		{"buffering", func(k string, v *yaml.Node) { d.section(k, v, d.bufferingFields(&c.Buffering)) }},
		{"space_ca", func(k string, v *yaml.Node) { c.SpaceCA = d.spaceCA(k, v) }},
		{"acme", func(k string, v *yaml.Node) { c.ACME = d.acme(k, v) }},
		{"admin", func(k string, v *yaml.Node) { c.Admin = d.admin(k, v, &d.adminAt) }},
		{"apps", func(_ string, v *yaml.Node) { *apps = v }},
		{"store", func(k string, v *yaml.Node) { c.Store = d.store(k, v) }},
	}
}

// listenFields is the table of the listener addresses. Port 0 is allowed
// (tests bind to any free port).
func (d *decoder) listenFields(l *Listen) []field {
	addr := func(name string, dst *string) field {
		return field{name, func(k string, v *yaml.Node) {
			*dst = d.str(k, v)
			if msg := addrProblem(*dst, 0); *dst != "" && msg != "" {
				d.problem(v, k, "%s", msg)
			}
		}}
	}
	return []field{
		addr("http", &l.HTTP),
		addr("https", &l.HTTPS),
		addr("admin", &l.Admin),
	}
}

// needListener refuses a config with neither listen.http nor listen.https,
// and two listeners on one fixed address.
func (d *decoder) needListener(root *yaml.Node, seen map[string]pair, l Listen) {
	at := root
	if p, ok := seen["listen"]; ok {
		at = p.k
	}
	if l.HTTP == "" && l.HTTPS == "" {
		d.problem(at, "listen", "no listener: set http, https or both, such as http: 127.0.0.1:8080")
	}
	addrs := []struct{ name, addr string }{{"http", l.HTTP}, {"https", l.HTTPS}, {"admin", l.Admin}}
	for i, a := range addrs {
		for _, b := range addrs[:i] {
			if a.addr != "" && a.addr == b.addr && !anyPort(a.addr) {
				d.problem(at, "listen."+a.name, "address %q is also listen.%s: want one address per listener", a.addr, b.name)
			}
		}
	}
}

// logLevels are the zap levels log.level may name.
var logLevels = []string{"debug", "info", "warn", "error"}

// logFields is the table of where router lines go and the operational log
// level.
func (d *decoder) logFields(l *Log) []field {
	return []field{
		{"router", func(k string, v *yaml.Node) {
			l.Router = d.str(k, v)
			switch l.Router {
			case "":
				d.problem(v, k, "empty: want stdout, stderr or a file path")
			case "stdout", "stderr":
			default:
				l.Router = d.path(l.Router)
			}
		}},
		{"source", func(k string, v *yaml.Node) {
			l.Source = d.str(k, v)
			if !isToken(l.Source) {
				d.problem(v, k, "bad source %q: want one word without spaces, such as heroku[router]", l.Source)
			}
		}},
		{"level", func(k string, v *yaml.Node) {
			l.Level = d.str(k, v)
			d.oneOf(v, k, "level", l.Level, logLevels)
		}},
		{"redact", func(k string, v *yaml.Node) { l.Redact = d.strList(k, v, "parameter name") }},
	}
}

// timeoutFields is the table that overlays the timeout keys present onto
// t. The global timeouts and each app's overrides share it, so they share
// key names and checks.
func (d *decoder) timeoutFields(t *Timeouts) []field {
	dur := func(name string, dst *time.Duration) field {
		return field{name, func(k string, v *yaml.Node) { d.duration(k, v, dst) }}
	}
	return []field{
		dur("connect", &t.Connect),
		dur("response", &t.Response),
		dur("idle", &t.Idle),
		dur("client", &t.Client),
		dur("keepalive", &t.Keepalive),
		dur("dyno_keepalive", &t.DynoKeepalive),
		dur("shutdown", &t.Shutdown),
	}
}

// maxH2Streams is the largest limits.h2_max_streams: stream counts are
// 31-bit in HTTP/2 (RFC 9113 section 5.1.1).
const maxH2Streams = 1<<31 - 1

// limits overlays the limits present in n onto l, then warns about a
// per-client share larger than the whole.
func (d *decoder) limits(key string, n *yaml.Node, l *Limits) {
	if isNull(n) {
		return
	}
	seen, ok := d.fields(key, n, d.limitFields(l))
	if !ok {
		return
	}
	if l.ConnectionsPerClient > l.Connections {
		at, what := seen["connections"].k, "the default "
		if p, set := seen["connections_per_client"]; set {
			at, what = p.v, ""
		}
		d.warn(at, join(key, "connections_per_client"),
			"%s%d is more than limits.connections (%d): one client can hold every connection; want at most %d",
			what, l.ConnectionsPerClient, l.Connections, l.Connections)
	}
}

// limitFields is the table of the size and count limits. Each message
// suggests the key's default.
func (d *decoder) limitFields(l *Limits) []field {
	def := Defaults().Limits
	size := func(name string, dst *int, example int) field {
		return field{name, func(k string, v *yaml.Node) { d.size(k, v, dst, example) }}
	}
	return []field{
		size("request_line_bytes", &l.RequestLineBytes, def.RequestLineBytes),
		size("method_bytes", &l.MethodBytes, def.MethodBytes),
		size("header_name_bytes", &l.HeaderNameBytes, def.HeaderNameBytes),
		size("header_bytes", &l.HeaderBytes, def.HeaderBytes),
		size("cookie_bytes", &l.CookieBytes, def.CookieBytes),
		size("headers_total_bytes", &l.HeadersTotalBytes, def.HeadersTotalBytes),
		size("header_count", &l.HeaderCount, def.HeaderCount),
		size("concurrency_per_dyno", &l.ConcurrencyPerDyno, def.ConcurrencyPerDyno),
		size("connections", &l.Connections, def.Connections),
		size("connections_per_client", &l.ConnectionsPerClient, def.ConnectionsPerClient),
		size("requests_per_client", &l.RequestsPerClient, def.RequestsPerClient),
		{"min_transfer_rate", func(k string, v *yaml.Node) {
			d.whole(k, v, &l.MinTransferRate, 0, maxInt, fmt.Sprintf(
				"a whole number of bytes per second, 0 or more, such as %d (0 turns the check off)", def.MinTransferRate))
		}},
		{"h2_max_streams", func(k string, v *yaml.Node) {
			d.whole(k, v, &l.H2MaxStreams, 1, maxH2Streams, fmt.Sprintf(
				"a whole number from 1 to %d, such as %d", maxH2Streams, def.H2MaxStreams))
		}},
	}
}

// bufferingFields is the table of the buffering bounds.
func (d *decoder) bufferingFields(b *Buffering) []field {
	def := Defaults().Buffering
	return []field{
		{"window", func(k string, v *yaml.Node) { d.duration(k, v, &b.Window) }},
		{"bytes", func(k string, v *yaml.Node) { d.size(k, v, &b.Bytes, def.Bytes) }},
		{"request_bytes", func(k string, v *yaml.Node) {
			d.whole(k, v, &b.RequestBytes, 0, maxInt, fmt.Sprintf(
				"a whole number of bytes, 0 or more, such as %d (0: request bodies stream to the dyno from the start)", def.RequestBytes))
		}},
	}
}

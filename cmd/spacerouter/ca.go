package main

import (
	"context"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router"
	"github.com/spacerouter/spacerouter/spaceca"
	"github.com/spacerouter/spacerouter/store"
)

// caUsage is the help of the ca subcommand (SPEC.md section 11.3).
const caUsage = `Usage:
  spacerouter ca init -config FILE                      make the space CA's key and certificate at space_ca.key
                                                        and space_ca.cert (never overwrites a file)
  spacerouter ca issue -config FILE -app APP [-name N]  issue a client certificate; its id is the last word printed
  spacerouter ca list -config FILE [-app APP]           one line per client certificate: id, app, name, created,
                                                        not_after, status (ready, expiring, expired, revoked)
  spacerouter ca download -config FILE -id ID -dir DIR [-prefix P]
                                                        write P+client.crt, P+client.key, P+client.pk8 and
                                                        P+root.crt into DIR (never overwrites a file)
  spacerouter ca revoke -config FILE -id ID             revoke a client certificate; a running router refuses it
                                                        within 2 seconds

With store in FILE (SPEC.md section 14), space_ca and the apps are those of the keys space and
apps/<app> in etcd, and issue and revoke also write clients/<app>/<id>, so every router of the
space sees the certificate and refuses it once revoked.

Exit codes: 0 done, 1 the operation failed (or etcd did not answer), 2 bad usage or config.
`

// caLoader loads the config file for the ca subcommand; forInit is true
// for ca init, which makes the CA files and so must not need them.
type caLoader func(path string, forInit bool) (*config.Config, error)

// loadForCA is the caLoader of the command.
//
// loadForCA loads the config of a ca subcommand. ca init makes the CA's
// files, so it loads without reading them.
func loadForCA(path string, forInit bool) (*config.Config, error) {
	return config.LoadWith(path, config.LoadOptions{SkipSpaceCAFiles: forInit})
}

// caCommand is one run of spacerouter ca: its flags and output.
type caCommand struct {
	sub            string
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	configPath     *string

	// Set by loadConfig when the config file has store: the space (its
	// space_ca and apps) is read from etcd, and issue and revoke record
	// the certificate under clients/<app>/<id> for every router.
	st     *store.Store
	shared *config.Shared
	where  string // where the space is: the file, or etcd and its key space
	// etcdDown is set when etcd did not answer: exit code 1, not 2.
	etcdDown bool
}

// runCA is spacerouter ca SUBCOMMAND [flags]; it returns the exit code.
func runCA(args []string, stdout, stderr io.Writer, load caLoader) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, caUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	c := &caCommand{sub: args[0], stdout: stdout, stderr: stderr}
	c.fs = flag.NewFlagSet("spacerouter ca "+c.sub, flag.ContinueOnError)
	c.fs.SetOutput(stderr)
	c.fs.Usage = func() { fmt.Fprint(stderr, caUsage) }
	c.configPath = c.fs.String("config", "", "the space's config `FILE`, with space_ca (or with store: the space in etcd)")
	defer c.close()
	switch c.sub {
	case "init":
		return c.init(args[1:], load)
	case "issue":
		return c.issue(args[1:], load)
	case "list":
		return c.list(args[1:], load)
	case "download":
		return c.download(args[1:], load)
	case "revoke":
		return c.revoke(args[1:], load)
	}
	fmt.Fprintf(stderr, "spacerouter ca: unknown subcommand %q: want init, issue, list, download or revoke (spacerouter ca -help)\n", c.sub)
	return exitUsage
}

// parse parses args and checks that the flags named in required are set.
func (c *caCommand) parse(args []string, required ...string) bool {
	if err := c.fs.Parse(args); err != nil {
		return false
	}
	if c.fs.NArg() > 0 {
		c.fail("unexpected argument %q", c.fs.Arg(0))
		return false
	}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = f.Value.String() != "" })
	for _, name := range append([]string{"config"}, required...) {
		if !set[name] {
			c.fail("-%s is required (spacerouter ca -help)", name)
			return false
		}
	}
	return true
}

// fail prints one error line for the subcommand.
func (c *caCommand) fail(format string, args ...any) {
	fmt.Fprintf(c.stderr, "spacerouter ca %s: %s\n", c.sub, fmt.Sprintf(format, args...))
}

// loadConfig loads the config and its space_ca; nil after an error
// printed. A config file with store names a space kept in etcd (SPEC.md
// section 14): its space_ca and apps are those of the keys space and
// apps/<app>, read at one revision and checked as the routers and -check
// do.
func (c *caCommand) loadConfig(load caLoader) *config.Config {
	cfg, err := load(*c.configPath, c.sub == "init")
	if err != nil {
		printConfigError(c.stderr, err)
		return nil
	}
	c.where = *c.configPath
	if cfg.Store != nil {
		if cfg = c.loadShared(cfg); cfg == nil {
			return nil
		}
	}
	if cfg.SpaceCA == nil {
		if c.st != nil {
			c.fail("%s has no space_ca: add space_ca with cert, key and state_dir to it (spacerouter store get -config %s space)",
				c.where, *c.configPath)
			return nil
		}
		c.fail("%s has no space_ca: add space_ca with cert, key and state_dir (docs/config.md)", *c.configPath)
		return nil
	}
	return cfg
}

// loadShared reads the space of local, a config with store, from etcd;
// nil after an error printed. It keeps the store open for issue and
// revoke.
func (c *caCommand) loadShared(local *config.Config) *config.Config {
	e := local.Store.Etcd
	c.where = "key space in etcd (" + strings.Join(e.Endpoints, ", ") + ", prefix " + e.Prefix + ")"
	st, err := store.New(local, store.Options{})
	if err != nil {
		c.fail("%s: store: %v", *c.configPath, err)
		return nil
	}
	c.st = st
	sh, _, err := st.Shared(context.Background(), config.LoadOptions{SkipSpaceCAFiles: c.sub == "init"})
	if err != nil {
		c.fail("etcd at %s did not answer within store.etcd.dial_timeout (%s): %v; %s keeps its space CA and apps in etcd "+
			"(keys space and apps/<app>): start etcd, or fix store.etcd.endpoints in %s",
			strings.Join(e.Endpoints, ", "), e.DialTimeout, err, *c.configPath, *c.configPath)
		c.etcdDown = true
		return nil
	}
	c.shared = sh
	for _, r := range sh.Refused {
		if r.Key == config.KeySpace || strings.HasPrefix(r.Key, config.KeyApps) {
			fmt.Fprintf(c.stderr, "warning: refused by the routers, left out here: %s\n", r)
		}
	}
	return sh.Config
}

// loadExit is the exit code after loadConfig or open failed: 1 when
// etcd did not answer (as spacerouter store), else 2 (a bad config).
func (c *caCommand) loadExit() int {
	if c.etcdDown {
		return exitFail
	}
	return exitUsage
}

// close closes the store of a shared space.
func (c *caCommand) close() {
	if c.st != nil {
		c.st.Close()
	}
}

// record writes cl, issued or revoked in ca's state_dir, under
// clients/<app>/<id> when the space is shared, as the admin API does;
// false after an error printed.
func (c *caCommand) record(ca *spaceca.CA, cl spaceca.Client) bool {
	if c.st == nil {
		return true
	}
	if err := recordClient(c.st, ca, cl); err != nil {
		c.fail("%v", err)
		return false
	}
	return true
}

// sharedRecords are the records under clients/ of a shared space (none
// for a file's), by id, those of app only unless app is "". A record
// that does not parse is skipped with a warning.
func (c *caCommand) sharedRecords(app string) map[string]spaceca.Client {
	out := map[string]spaceca.Client{}
	if c.shared == nil {
		return out
	}
	for key, v := range c.shared.Clients {
		cl, err := spaceca.UnmarshalClient(v)
		if err != nil {
			fmt.Fprintf(c.stderr, "warning: etcd key %s%s skipped: not a client certificate record: %v\n", config.KeyClients, key, err)
			continue
		}
		if app == "" || cl.App == app {
			out[cl.ID] = cl
		}
	}
	return out
}

// sharedRecord is the record of certificate id under clients/ of a
// shared space, with its certificate and key; false when there is none,
// an error naming the key when it is refused.
func (c *caCommand) sharedRecord(id string) (spaceca.Record, bool, error) {
	if c.shared == nil {
		return spaceca.Record{}, false, nil
	}
	for key, v := range c.shared.Clients {
		if !strings.HasSuffix(key, "/"+id) {
			continue
		}
		rec, err := spaceca.UnmarshalRecord(v)
		if err == nil && (rec.ID != id || key != rec.App+"/"+id) {
			err = fmt.Errorf("it is the record of certificate %s of app %s", rec.ID, rec.App)
		}
		if err != nil {
			return spaceca.Record{}, true, fmt.Errorf("client certificate %s: its record %s%s in etcd is refused: %w", id, config.KeyClients, key, err)
		}
		return rec, true, nil
	}
	return spaceca.Record{}, false, nil
}

// open loads the config and opens its CA, printing the CA's warnings; nil
// after an error printed.
func (c *caCommand) open(load caLoader) (*config.Config, *spaceca.CA) {
	cfg := c.loadConfig(load)
	if cfg == nil {
		return nil, nil
	}
	sc := cfg.SpaceCA
	o := spaceca.Options{CertPath: sc.Cert, KeyPath: sc.Key, StateDir: sc.StateDir, Space: cfg.Space}
	for _, p := range sc.Previous {
		o.Previous = append(o.Previous, spaceca.Previous{CertPath: p.Cert, RetireAt: p.RetireAt})
	}
	ca, err := spaceca.Open(o)
	if err != nil {
		c.fail("%v", err)
		return nil, nil
	}
	for _, w := range ca.Warnings() {
		fmt.Fprintf(c.stderr, "warning: %s\n", w)
	}
	return cfg, ca
}

// app returns the config's app name, or nil after an error naming it.
func (c *caCommand) app(cfg *config.Config, name string) *config.App {
	names := make([]string, 0, len(cfg.Apps))
	for i := range cfg.Apps {
		if cfg.Apps[i].Name == name {
			return &cfg.Apps[i]
		}
		names = append(names, cfg.Apps[i].Name)
	}
	c.fail("unknown app %q: %s has apps %s", name, c.where, strings.Join(names, ", "))
	return nil
}

func (c *caCommand) init(args []string, load caLoader) int {
	if !c.parse(args) {
		return exitUsage
	}
	cfg := c.loadConfig(load)
	if cfg == nil {
		return c.loadExit()
	}
	cert, err := spaceca.Init(cfg.SpaceCA.Cert, cfg.SpaceCA.Key, cfg.Space)
	if err != nil {
		c.fail("%v", err)
		return exitFail
	}
	fmt.Fprintf(c.stdout, "made the space CA %q: certificate %s, key %s (mode 0600), valid until %s\n",
		cert.Subject.CommonName, cfg.SpaceCA.Cert, cfg.SpaceCA.Key, stamp(cert.NotAfter))
	return exitOK
}

func (c *caCommand) issue(args []string, load caLoader) int {
	app := c.fs.String("app", "", "the `APP` the certificate is for")
	name := c.fs.String("name", "", "the certificate's `NAME` (its CN; default: the app name)")
	if !c.parse(args, "app") {
		return exitUsage
	}
	if *name != "" {
		if err := spaceca.CheckName(*name); err != nil {
			c.fail("-name: %v", err)
			return exitUsage
		}
	}
	cfg, ca := c.open(load)
	if ca == nil || c.app(cfg, *app) == nil {
		return c.loadExit()
	}
	cl, err := ca.Issue(*app, *name)
	if err != nil {
		c.fail("%v", err)
		return exitFail
	}
	if !c.record(ca, cl) {
		return exitFail
	}
	if full := cl.Created.AddDate(0, spaceca.ValidMonths, 0); cl.NotAfter.Before(full) {
		fmt.Fprintf(c.stderr, "warning: the certificate ends with the CA on %s, before %d months: rotate the CA (space_ca.previous)\n",
			stamp(cl.NotAfter), spaceca.ValidMonths)
	}
	fmt.Fprintf(c.stdout, "issued client certificate %q for app %s, valid until %s; its files: spacerouter ca download -config %s -id %s -dir DIR\nid: %s\n",
		cl.Name, cl.App, stamp(cl.NotAfter), *c.configPath, cl.ID, cl.ID)
	return exitOK
}

func (c *caCommand) list(args []string, load caLoader) int {
	app := c.fs.String("app", "", "list only the certificates of `APP`")
	if !c.parse(args) {
		return exitUsage
	}
	cfg, ca := c.open(load)
	if ca == nil || (*app != "" && c.app(cfg, *app) == nil) {
		return c.loadExit()
	}
	tw := tabwriter.NewWriter(c.stdout, 0, 0, 2, ' ', 0)
	if c.st == nil {
		fmt.Fprintln(tw, "ID\tAPP\tNAME\tCREATED\tNOT_AFTER\tSTATUS")
		for _, cl := range ca.List(*app) {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, cl.App, cl.Name, stamp(cl.Created), stamp(cl.NotAfter), cl.Status)
		}
	} else {
		c.listShared(tw, ca, *app)
	}
	if err := tw.Flush(); err != nil {
		c.fail("%v", err)
		return exitFail
	}
	return exitOK
}

// listShared writes the rows of ca list in a shared space: the
// certificates of the state_dir, then those recorded under clients/ by
// other routers' space CA state_dirs; WHERE says where the status comes
// from: a certificate revoked in etcd (by another router or its admin
// API) is revoked everywhere, whatever this state_dir says.
func (c *caCommand) listShared(w io.Writer, ca *spaceca.CA, app string) {
	recs := c.sharedRecords(app)
	row := func(cl spaceca.Client, status spaceca.Status, where string) {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", cl.ID, cl.App, cl.Name, stamp(cl.Created), stamp(cl.NotAfter), status, where)
	}
	fmt.Fprintln(w, "ID\tAPP\tNAME\tCREATED\tNOT_AFTER\tSTATUS\tWHERE")
	for _, cl := range ca.List(app) {
		rec, ok := recs[cl.ID]
		delete(recs, cl.ID)
		if ok && cl.Status != spaceca.StatusRevoked && !rec.RevokedAt.IsZero() {
			row(cl, spaceca.StatusRevoked, "etcd")
			continue
		}
		row(cl, cl.Status, "state_dir")
	}
	ids := make([]string, 0, len(recs))
	for id := range recs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	now := time.Now()
	for _, id := range ids {
		rec := recs[id]
		row(rec, rec.StatusAt(now), "etcd")
	}
}

func (c *caCommand) download(args []string, load caLoader) int {
	id := c.fs.String("id", "", "the certificate's `ID` (from ca issue or ca list)")
	dir := c.fs.String("dir", "", "the `DIR`ectory to write into (created mode 0700 if missing)")
	prefix := c.fs.String("prefix", "", "a `PREFIX` for the file names")
	if !c.parse(args, "id", "dir") {
		return exitUsage
	}
	cfg, ca := c.open(load)
	if ca == nil {
		return c.loadExit()
	}
	cl, err := ca.Get(*id)
	var rec *spaceca.Record
	if _, ok := errors.AsType[*spaceca.UnknownIDError](err); ok && c.st != nil {
		// Issued from another router's state_dir: its record in etcd
		// holds the certificate and key.
		if r, found, rerr := c.sharedRecord(*id); found {
			if rerr != nil {
				c.fail("%v", rerr)
				return exitFail
			}
			cl, rec, err = r.Client, &r, nil
		}
	}
	if err != nil {
		c.fail("%v", err)
		return exitUsage
	}
	app := c.app(cfg, cl.App)
	if app == nil {
		return exitUsage
	}
	var roots []*x509.Certificate
	switch {
	case app.TLSAuto && cfg.ACME != nil:
		// The issuer's root of the ACME chains a router left in
		// acme.storage (SPEC.md 11.3).
		roots, err = acme.RootsFromStorage(router.ACMEOptions(cfg.ACME), app.Domains, time.Now())
		if err != nil {
			c.fail("app %s uses tls: auto: %v; root.crt needs the root a client verifies the router with", app.Name, err)
			return exitFail
		}
	case len(app.TLS) == 0:
		c.fail("app %s has no tls certificate, so root.crt would hold no root a client could verify the router with", app.Name)
		return exitUsage
	default:
		chains := make([]string, 0, len(app.TLS))
		for _, t := range app.TLS {
			chains = append(chains, t.Cert)
		}
		if roots, err = spaceca.ServedRoots(chains...); err != nil {
			c.fail("%v", err)
			return exitFail
		}
	}
	if rec != nil {
		err = ca.DownloadRecord(rec, *dir, *prefix, roots)
	} else {
		err = ca.Download(*id, *dir, *prefix, roots)
	}
	if err != nil {
		c.fail("%v", err)
		return exitFail
	}
	names := []string{spaceca.FileCert, spaceca.FileKey, spaceca.FilePKCS8, spaceca.FileRootCA}
	for i, n := range names {
		names[i] = filepath.Join(*dir, *prefix+n)
	}
	fmt.Fprintf(c.stdout, "wrote %s\n", strings.Join(names, ", "))
	return exitOK
}

func (c *caCommand) revoke(args []string, load caLoader) int {
	id := c.fs.String("id", "", "the certificate's `ID`")
	if !c.parse(args, "id") {
		return exitUsage
	}
	_, ca := c.open(load)
	if ca == nil {
		return c.loadExit()
	}
	cl, changed, err := ca.Revoke(*id)
	if _, ok := errors.AsType[*spaceca.UnknownIDError](err); ok {
		// Issued from another router's state_dir: its record in etcd is
		// what the routers refuse it by.
		rec, found := c.sharedRecords("")[*id]
		if !found {
			c.fail("%v", err)
			return exitUsage
		}
		cl, changed, err = rec, rec.RevokedAt.IsZero(), nil
		if changed {
			cl.RevokedAt = time.Now().UTC().Truncate(time.Second)
		}
	}
	if err != nil {
		c.fail("%v", err)
		return exitFail
	}
	// Recorded even when it was revoked already: a record an earlier
	// revoke could not write is written now.
	if !c.record(ca, cl) {
		return exitFail
	}
	if !changed {
		fmt.Fprintf(c.stdout, "%s (app %s, name %s) was already revoked on %s\n", cl.ID, cl.App, cl.Name, stamp(cl.RevokedAt))
		return exitOK
	}
	fmt.Fprintf(c.stdout, "revoked %s (app %s, name %s): a running router refuses it within 2 seconds\n", cl.ID, cl.App, cl.Name)
	return exitOK
}

// stamp writes t as ca list does: RFC 3339, UTC, seconds.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// Command spacerouter is the HTTP edge router of a private space (SPEC.md).
//
//	spacerouter                              the built-in demo space
//	spacerouter -config space.yaml           the space the file describes
//	spacerouter -config space.yaml -check    validate the file and exit
//	spacerouter -version                     print the version
//	spacerouter ca init|issue|list|download|revoke -config space.yaml ...
//	                                         the space CA and its client certificates
//	spacerouter certs status -config space.yaml [-app APP]
//	                                         the tls: auto certificates and their state
//	spacerouter store import|get -config space.yaml ...
//	                                         the space's keys in etcd (SPEC.md section 14)
//
// main only wires: flags, the config file, the logs, the router, signals.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"strconv"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/spacerouter/spacerouter/admin"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/demo"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router"
)

// version is printed by -version; release builds set it with
// -ldflags "-X main.version=1.2.3". Left at "dev", -version prints what
// the Go toolchain recorded in the binary instead (see buildVersion).
var version = "dev"

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1 // the router could not start
	exitUsage = 2 // bad flags or an invalid config file
)

// Where the demo space listens unless the ports are taken.
const (
	demoHTTPAddr  = "127.0.0.1:8080"
	demoHTTPSAddr = "127.0.0.1:8443"
)

// freeOr returns addr when its port is free, else a port-0 address.
func freeOr(addr string) string {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "127.0.0.1:0"
	}
	_ = ln.Close()
	return addr
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command: it parses args, does what they say, and returns
// the exit code. Router lines go where the config's log.router says, not to
// stdout here.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "ca" {
		return runCA(args[1:], stdout, stderr, loadForCA)
	}
	if len(args) > 0 && args[0] == "certs" {
		return runCerts(args[1:], stdout, stderr, config.Load)
	}
	if len(args) > 0 && args[0] == "store" {
		return runStore(args[1:], stdout, stderr, config.Load)
	}
	fs := flag.NewFlagSet("spacerouter", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "run the space described by the YAML `FILE` (without it: the built-in demo space)")
	check := fs.Bool("check", false, "validate the -config file and exit: 0 when valid, 2 with one line per problem")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), "Usage:\n"+
			"  spacerouter                             run the built-in demo space\n"+
			"  spacerouter -config FILE                run the space FILE describes\n"+
			"  spacerouter -config FILE -check         validate FILE and exit\n"+
			"  spacerouter -version                    print the version\n"+
			"  spacerouter ca ...                      the space CA and its client certificates (spacerouter ca -help)\n"+
			"  spacerouter certs status -config FILE   the tls: auto certificates (spacerouter certs -help)\n"+
			"  spacerouter store import|get -config FILE  the space's keys in etcd (spacerouter store -help)\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "spacerouter: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return exitUsage
	}

	switch {
	case *showVersion:
		bi, ok := debug.ReadBuildInfo()
		fmt.Fprintf(stdout, "spacerouter %s\n", buildVersion(version, bi, ok))
		return exitOK
	case *check && *configPath == "":
		fmt.Fprintln(stderr, "spacerouter: -check needs -config FILE")
		fs.Usage()
		return exitUsage
	case *check:
		return checkConfig(*configPath, stdout, stderr)
	case *configPath == "":
		return runDemo(stderr)
	default:
		cfg, err := config.Load(*configPath)
		if err != nil {
			printConfigError(stderr, err)
			return exitUsage
		}
		return serve(cfg, *configPath, stderr, nil)
	}
}

// printConfigError prints one line per problem (file:line: key: msg), or
// the error itself when it is not a list of problems (an unreadable file).
func printConfigError(w io.Writer, err error) {
	if errs, ok := errors.AsType[*config.Errors](err); ok && len(errs.Problems) > 0 {
		for _, p := range errs.Problems {
			fmt.Fprintln(w, p.String())
		}
		return
	}
	fmt.Fprintf(w, "spacerouter: %v\n", err)
}

// runDemo runs the built-in demo space (SPEC.md section 1): two demo dynos
// in this process and app demo on localhost and demo.localhost.
func runDemo(stderr io.Writer) int {
	dynoAddrs, stopDynos, err := demo.StartDynos(context.Background())
	if err != nil {
		fmt.Fprintf(stderr, "spacerouter: starting the demo dynos: %v\n", err)
		return exitFail
	}
	// Deferred, so the dynos stop only after the router has drained.
	defer stopDynos()

	httpAddr := freeOr(demoHTTPAddr)
	ln := demo.Listeners{HTTP: httpAddr, HTTPS: freeOr(demoHTTPSAddr)}
	dir, err := os.MkdirTemp("", "spacerouter-demo-")
	if err != nil {
		fmt.Fprintf(stderr, "spacerouter: making a directory for the demo certificates: %v\n", err)
		return exitFail
	}
	defer os.RemoveAll(dir)
	// ECDSA and RSA: the demo app's profile has RSA-signed TLS 1.2 suites only.
	if ln.Certs, err = demo.SelfSignedCerts(dir); err != nil {
		fmt.Fprintf(stderr, "spacerouter: making the demo certificates: %v\n", err)
		return exitFail
	}
	cfg, err := config.Parse("demo.yaml", demo.Config(ln, dynoAddrs))
	if err != nil {
		printConfigError(stderr, err)
		return exitFail
	}
	// No config file: a SIGHUP has nothing to reload.
	return serve(cfg, "", stderr, func(r *router.Router) { printDemoHelp(stderr, r, httpAddr) })
}

// demoNotice says, before the URLs, that this is the demo and how to run
// one's own space (issue 9: a new user's first hour).
const demoNotice = "This is the built-in demo space: spacerouter was started without -config.\n" +
	"To run your own space: spacerouter -config space.yaml (every key: docs/config.md; an annotated example: examples/space.yaml).\n"

// printDemoHelp tells a person what runs and where the demo space answers.
func printDemoHelp(w io.Writer, r *router.Router, httpAddr string) {
	_, port, _ := net.SplitHostPort(httpAddr)
	if a, ok := r.HTTPAddr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	fmt.Fprintf(w, "\n%sThe demo space is up: app %q with dynos %s and %s.\n",
		demoNotice, demo.App, demo.DynoName(0), demo.DynoName(1))
	tlsPort := ""
	if a, ok := r.HTTPSAddr().(*net.TCPAddr); ok {
		tlsPort = strconv.Itoa(a.Port)
	}
	fmt.Fprintf(w, "  http://localhost:%s/\n  http://demo.localhost:%s/\n", port, port)
	if tlsPort != "" {
		fmt.Fprintf(w, "  https://localhost:%s/  (self-signed certificate)\n", tlsPort)
	}
	fmt.Fprintf(w, "Try:\n  curl -i http://localhost:%s/headers\n", port)
	if tlsPort != "" {
		fmt.Fprintf(w, "  curl -k --http2 -i https://localhost:%s/headers\n", tlsPort)
	}
	fmt.Fprintf(w, "Router lines follow on stdout. Ctrl-C stops.\n\n")
}

// serve runs the space cfg until SIGTERM or SIGINT, then drains for up to
// timeouts.shutdown of the config running then. file is the -config file
// that SIGHUP reloads, "" for the built-in demo space. started, if set, is
// called once the router serves.
func serve(cfg *config.Config, file string, stderr io.Writer, started func(*router.Router)) int {
	logger, err := logging.New(cfg.Log.Level)
	if err != nil {
		fmt.Fprintf(stderr, "spacerouter: building the operational log: %v\n", err)
		return exitFail
	}
	defer func() { _ = logger.Sync() }()
	for _, w := range cfg.Warnings() {
		logger.Warn(w) // already "file:line: key: msg"
	}

	lines, err := logging.OpenRouterLog(cfg.Log.Router, cfg.Log.Source, cfg.Log.Redact)
	if err != nil {
		logger.Error("opening the router log", zap.String(logging.KeyTarget, cfg.Log.Router), zap.Error(err))
		return exitFail
	}
	lines.SetLogger(logger)
	rl := &routerLog{lines: lines, target: cfg.Log.Router, source: cfg.Log.Source, logger: logger}
	defer rl.close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts := router.Options{Logger: logger, Lines: lines, Registry: reg}
	var sh *shared // with store: the space comes from etcd (SPEC.md section 14)
	var r *router.Router
	if cfg.Store != nil {
		sh, err = newShared(cfg, opts)
		if sh != nil {
			r = sh.r
		}
	} else {
		r, err = router.New(cfg, opts)
	}
	if err != nil {
		logger.Error("building the router", zap.Error(err))
		return exitFail
	}
	adm, err := startAdminAPI(r, cfg, logger, sh)
	if err != nil {
		logger.Error("building the admin API", zap.Error(err))
		return exitFail
	}

	ctx, stopSignals := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stopSignals()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	if err := r.Start(); err != nil {
		logger.Error("starting the router", zap.Error(err))
		return exitFail
	}
	bi, ok := debug.ReadBuildInfo()
	logger.Info("serving", zap.String(logging.KeySpace, cfg.Space), zap.String(logging.KeyFile, file),
		zap.String(logging.KeyVersion, buildVersion(version, bi, ok)))
	if started != nil {
		started(r)
	}
	if sh != nil {
		sh.run()
	}

	running := cfg
	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			if sh != nil {
				reopen(rl)
				logger.Info("SIGHUP: the router log is reopened; with store, the space's config comes from etcd " +
					"and the file's listen, log and admin take effect at the next restart")
				continue
			}
			if next := reload(r, rl, file, logger); next != nil {
				reloadAdminAPI(adm, running, next, logger)
				running = next
			}
		}
	}
	stopSignals() // a second signal kills at once
	if sh != nil {
		sh.stop() // no config changes while draining; routers/<id> goes now
		running = sh.current()
	}
	// The drain limit is the one of the config running now, reloads included.
	logger.Info("shutting down", zap.Duration(logging.KeyDuration, running.Timeouts.Shutdown))
	sctx, cancel := context.WithTimeout(context.Background(), running.Timeouts.Shutdown)
	defer cancel()
	if err := r.Shutdown(sctx); err != nil {
		logger.Warn("timeouts.shutdown reached: requests in flight cut", zap.Error(err))
	}
	return exitOK
}

// routerLog is the router line output of the running config, swapped when a
// reload names another target or source.
type routerLog struct {
	lines  *logging.RouterLog
	target string // log.router of lines
	source string // log.source of lines
	logger *zap.Logger
	// retired outputs stay open until exit: requests in flight on the old
	// config may still write their lines there.
	retired []*logging.RouterLog
}

func (rl *routerLog) close() {
	for _, l := range append(rl.retired, rl.lines) {
		if err := l.Close(); err != nil {
			rl.logger.Error("closing the router log", zap.Error(err))
		}
	}
}

// reload is SIGHUP (SPEC.md section 1): read and validate file; a valid
// config takes over for new requests and is returned, an invalid one is
// refused with the problems in the operational log and nil is returned.
// Either way the router log is reopened (logrotate). file is "" for the
// built-in demo space, which has no file to read: a config file named
// demo.yaml is reloaded like any other.
func reload(r *router.Router, rl *routerLog, file string, logger *zap.Logger) *config.Config {
	if file == "" {
		logger.Warn("SIGHUP: the demo space has no config file to reload")
		return nil
	}
	cfg, err := config.Load(file)
	if err != nil {
		reopen(rl)
		r.ReloadFailed(err) // logs every problem, file:line: key: msg
		return nil
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	if lvl, err := zapcore.ParseLevel(cfg.Log.Level); err == nil && lvl != zapcore.LevelOf(logger.Core()) {
		// The operational logger is built once, at start.
		logger.Warn("log.level changed in the config: it takes effect at the next restart",
			zap.String(logging.KeyFile, file), zap.String(logging.KeyKey, "log.level"))
	}
	if cfg.Log.Router == rl.target && cfg.Log.Source == rl.source {
		// Reopened first: once the reload counts, new lines go to the new file.
		reopen(rl)
		if r.Reload(cfg) != nil { // an error is counted and logged by the router
			return nil
		}
		rl.lines.SetRedact(cfg.Log.Redact)
		return cfg
	}
	// Another target or source: a new output, as a RouterLog writes one
	// source to one target.
	lw, err := logging.OpenRouterLog(cfg.Log.Router, cfg.Log.Source, cfg.Log.Redact)
	if err != nil {
		r.ReloadFailed(fmt.Errorf("opening log.router %s: %w", cfg.Log.Router, err))
		reopen(rl)
		return nil
	}
	if r.Reload(cfg) != nil {
		lw.Close()
		reopen(rl)
		return nil
	}
	lw.SetLogger(logger)
	rl.retired = append(rl.retired, rl.lines)
	rl.lines, rl.target, rl.source = lw, cfg.Log.Router, cfg.Log.Source
	r.SetLines(lw)
	return cfg
}

// reopen reopens the router log file (after logrotate moved it).
func reopen(rl *routerLog) {
	if err := rl.lines.Reopen(); err != nil {
		rl.logger.Error("reopening the router log", zap.String(logging.KeyTarget, rl.target), zap.Error(err))
	}
}

// startAdminAPI puts the admin API, sign-in and dashboard of admin.auth
// on the admin listener (SPEC.md section 13); nil without admin.auth,
// when the listener serves /healthz and /metrics only.
func startAdminAPI(r *router.Router, cfg *config.Config, logger *zap.Logger, sh *shared) (*admin.Server, error) {
	if cfg.Admin == nil || cfg.Admin.Auth == nil {
		return nil, nil
	}
	var backend admin.Backend = r.AdminBackend()
	if sh != nil {
		backend = sharedBackend{AdminBackend: r.AdminBackend(), st: sh.st}
	}
	srv, err := admin.New(admin.Options{Auth: cfg.Admin.Auth, TLS: cfg.Admin.TLS != nil,
		Backend: backend, Log: logger.Named("admin")})
	if err != nil {
		return nil, err
	}
	r.SetAdminHandler(srv.Handler)
	return srv, nil
}

// reloadAdminAPI gives the admin API the roles, authz_ttl and
// groups_claim of a reloaded config; what needs a restart is logged.
func reloadAdminAPI(adm *admin.Server, old, next *config.Config, logger *zap.Logger) {
	var was, now *config.AdminAuth
	if old.Admin != nil {
		was = old.Admin.Auth
	}
	if next.Admin != nil {
		now = next.Admin.Auth
	}
	switch {
	case adm == nil && now == nil:
	case adm == nil || now == nil:
		logger.Warn("admin.auth added or removed in the config: it takes effect at the next restart",
			zap.String(logging.KeyKey, "admin.auth"))
	default:
		adm.SetAuth(now)
		if was.Issuer != now.Issuer || was.ClientID != now.ClientID || was.ClientSecretFile != now.ClientSecretFile ||
			was.RedirectURL != now.RedirectURL || (old.Admin.TLS == nil) != (next.Admin.TLS == nil) {
			logger.Warn("admin.auth issuer, client or redirect_url, or admin.tls on or off, changed in the config: "+
				"they take effect at the next restart (roles, authz_ttl and groups_claim took effect now)",
				zap.String(logging.KeyKey, "admin.auth"))
		}
	}
}

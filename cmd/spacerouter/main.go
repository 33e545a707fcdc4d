// Command spacerouter is the HTTP edge router of a private space (SPEC.md).
//
//	spacerouter                              the built-in demo space
//	spacerouter -config space.yaml           the space the file describes
//	spacerouter -config space.yaml -check    validate the file and exit
//	spacerouter -version                     print the version
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
	"strconv"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/demo"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router"
)

// version is printed by -version; release builds set it with
// -ldflags "-X main.version=1.2.3".
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
			"  spacerouter -version                    print the version\n\n")
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
		fmt.Fprintf(stdout, "spacerouter %s\n", version)
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
		return serve(cfg, stderr, nil)
	}
}

// checkConfig is -check: it loads path and prints "path: ok" or the problems.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, err)
		return exitUsage
	}
	for _, w := range cfg.Warnings() {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return exitOK
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
		fmt.Fprintf(stderr, "spacerouter: making a directory for the demo certificate: %v\n", err)
		return exitFail
	}
	defer os.RemoveAll(dir)
	if ln.Cert, ln.Key, err = demo.SelfSigned(dir); err != nil {
		fmt.Fprintf(stderr, "spacerouter: making the demo certificate: %v\n", err)
		return exitFail
	}
	cfg, err := config.Parse("demo.yaml", demo.Config(ln, dynoAddrs))
	if err != nil {
		printConfigError(stderr, err)
		return exitFail
	}
	return serve(cfg, stderr, func(r *router.Router) { printDemoHelp(stderr, r, httpAddr) })
}

// printDemoHelp tells a person where the demo space answers.
func printDemoHelp(w io.Writer, r *router.Router, httpAddr string) {
	_, port, _ := net.SplitHostPort(httpAddr)
	if a, ok := r.HTTPAddr().(*net.TCPAddr); ok {
		port = strconv.Itoa(a.Port)
	}
	fmt.Fprintf(w, "\nThe spacerouter demo space is up: app %q with dynos %s and %s.\n",
		demo.App, demo.DynoName(0), demo.DynoName(1))
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
// timeouts.shutdown. started, if set, is called once the router serves.
func serve(cfg *config.Config, stderr io.Writer, started func(*router.Router)) int {
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
	rl := &routerLog{lines: lines, target: cfg.Log.Router, logger: logger}
	defer rl.close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r, err := router.New(cfg, router.Options{Logger: logger, Lines: lines, Registry: reg})
	if err != nil {
		logger.Error("building the router", zap.Error(err))
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
	logger.Info("serving", zap.String(logging.KeySpace, cfg.Space), zap.String(logging.KeyFile, cfg.File),
		zap.String(logging.KeyVersion, version))
	if started != nil {
		started(r)
	}

	for ctx.Err() == nil {
		select {
		case <-ctx.Done():
		case <-hup:
			reload(r, rl, cfg.File, logger)
		}
	}
	stopSignals() // a second signal kills at once
	logger.Info("shutting down", zap.Duration(logging.KeyDuration, cfg.Timeouts.Shutdown))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.Timeouts.Shutdown)
	defer cancel()
	if err := r.Shutdown(sctx); err != nil {
		logger.Warn("timeouts.shutdown reached: requests in flight cut", zap.Error(err))
	}
	return exitOK
}

// routerLog is the router line output of the running config, swapped when a
// reload names another target.
type routerLog struct {
	lines  *logging.RouterLog
	target string
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

// reload is SIGHUP (SPEC.md section 1): read and validate the file; a
// valid one takes over for new requests, an invalid one is refused with the
// problems in the operational log. Either way the router log is reopened
// (logrotate).
func reload(r *router.Router, rl *routerLog, file string, logger *zap.Logger) {
	if file == "" || file == "demo.yaml" {
		logger.Warn("SIGHUP: the demo space has no config file to reload")
		return
	}
	cfg, err := config.Load(file)
	if err != nil {
		reopen(rl)
		r.ReloadFailed(err) // logs every problem, file:line: key: msg
		return
	}
	for _, w := range cfg.Warnings() {
		logger.Warn(w)
	}
	if cfg.Log.Router == rl.target {
		// Reopened first: once the reload counts, new lines go to the new file.
		reopen(rl)
		if r.Reload(cfg) == nil { // an error is counted and logged by the router
			rl.lines.SetRedact(cfg.Log.Redact)
		}
		return
	}
	lw, err := logging.OpenRouterLog(cfg.Log.Router, cfg.Log.Source, cfg.Log.Redact)
	if err != nil {
		r.ReloadFailed(fmt.Errorf("opening log.router %s: %w", cfg.Log.Router, err))
		reopen(rl)
		return
	}
	if r.Reload(cfg) != nil {
		lw.Close()
		reopen(rl)
		return
	}
	lw.SetLogger(logger)
	rl.retired = append(rl.retired, rl.lines)
	rl.lines, rl.target = lw, cfg.Log.Router
	r.SetLines(lw)
}

// reopen reopens the router log file (after logrotate moved it).
func reopen(rl *routerLog) {
	if err := rl.lines.Reopen(); err != nil {
		rl.logger.Error("reopening the router log", zap.String(logging.KeyTarget, rl.target), zap.Error(err))
	}
}

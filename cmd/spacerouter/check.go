package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router"
	"github.com/spacerouter/spacerouter/store"
)

// checkConfig is -check: it loads path and verifies what start-up verifies
// after loading, without its side effects (no listener is bound, no file is
// created or written, no error page is fetched). It prints the warnings
// start-up logs, then "path: ok", or one line per problem and exit code 2.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err != nil {
		printConfigError(stderr, err)
		return exitUsage
	}
	warnings := cfg.Warnings()
	var problems []config.Problem
	if msg := routerLogProblem(cfg.Log.Router); msg != "" {
		problems = append(problems, config.Problem{File: path, Key: "log.router", Msg: msg})
	}
	tlsWarnings, err := tlsStoreWarnings(cfg)
	if err != nil {
		problems = append(problems, config.Problem{File: path, Key: "apps", Msg: err.Error()})
	}
	if cfg.Store != nil {
		refused, warning := storeRefusals(cfg)
		problems = append(problems, refused...)
		if warning != "" {
			tlsWarnings = append(tlsWarnings, warning)
		}
	}
	for _, w := range append(warnings, tlsWarnings...) {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	if len(problems) > 0 {
		printConfigError(stderr, &config.Errors{Problems: problems})
		return exitUsage
	}
	fmt.Fprintf(stdout, "%s: ok\n", path)
	return exitOK
}

// routerLogProblem says why the run could not open the router log target
// for appending (logging.OpenRouterLog), or returns "". It creates and
// writes nothing: an existing file is opened for appending and closed
// unwritten (a FIFO or a device is only checked for write permission, as
// opening one may block or act); for a missing file, its directory must
// exist and let this user create the file.
func routerLogProblem(target string) string {
	if target == "stdout" || target == "stderr" {
		return ""
	}
	fi, err := os.Stat(target)
	switch {
	case err == nil && fi.IsDir():
		return fmt.Sprintf("%q is a directory: want a file path, stdout or stderr", target)
	case err == nil && fi.Mode().IsRegular():
		f, err := os.OpenFile(target, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			return fmt.Sprintf("opening the router log for appending: %v", err)
		}
		_ = f.Close()
		return ""
	case err == nil:
		return writable(target, unix.W_OK, "the router log")
	case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, unix.ENOTDIR):
		return err.Error()
	}
	// No file there yet (or a file where its directory should be).
	dir := filepath.Dir(target)
	switch di, err := os.Stat(dir); {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("directory %q does not exist: create it, or choose a path in an existing directory", dir)
	case err != nil:
		return err.Error()
	case !di.IsDir():
		return fmt.Sprintf("%q is not a directory: want a file path in an existing directory", dir)
	}
	// Creating a file in dir needs write and search permission on it.
	return writable(dir, unix.W_OK|unix.X_OK, "the directory of the router log")
}

// writable says why this process (its effective user and groups, as the
// run's open would use) may not access path in mode, or returns "".
func writable(path string, mode uint32, what string) string {
	if err := unix.Faccessat(unix.AT_FDCWD, path, mode, unix.AT_EACCESS); err != nil {
		return fmt.Sprintf("%s %q is not writable by this user: %v", what, path, err)
	}
	return ""
}

// tlsStoreWarnings builds the TLS configs that start-up builds for
// listen.https (router.NewTLSStore, as router.New does: certificates loaded,
// profiles resolved) and returns their warnings, then the certificate
// expiry and rotation warnings start-up logs (router.CheckExpiry, SPEC.md
// 12.2: within 30 days of expiry, and previous space CAs retired within 14
// days). Without listen.https the router builds no TLS configs, and
// neither does this.
func tlsStoreWarnings(cfg *config.Config) ([]string, error) {
	var warnings []string
	if cfg.Listen.HTTPS != "" {
		st, err := router.NewTLSStore(cfg, router.TLSStoreOptions{})
		if err != nil {
			return nil, fmt.Errorf("building TLS configs: %w", err)
		}
		warnings = st.Warnings()
	}
	findings, err := router.CheckExpiry(cfg, time.Now())
	if err != nil {
		return nil, err
	}
	for _, f := range findings {
		warnings = append(warnings, f.Msg)
	}
	return warnings, nil
}

// storeRefusals checks every key in etcd as the routers would (SPEC.md
// section 14: -check checks the keys when etcd answers within
// dial_timeout) and returns one problem per refused key, named
// etcd:KEY, or a warning when etcd does not answer.
func storeRefusals(cfg *config.Config) ([]config.Problem, string) {
	s, err := store.New(cfg, store.Options{})
	if err != nil {
		return nil, fmt.Sprintf("%s: store: the keys in etcd were not checked: %v", cfg.File, err)
	}
	defer s.Close()
	refused, _, err := s.Check(context.Background())
	if err != nil {
		return nil, fmt.Sprintf("%s: store: the keys in etcd were not checked: %v", cfg.File, err)
	}
	var out []config.Problem
	for _, r := range refused {
		out = append(out, config.Problem{File: "etcd:" + r.Key, Msg: r.Problem})
	}
	return out, ""
}

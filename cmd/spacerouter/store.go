package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/store"
)

// storeUsage is the help of the store subcommand (SPEC.md section 14).
const storeUsage = `Usage:
  spacerouter store import -config FILE -from SPACE.yaml
        write the file-based space SPACE.yaml into etcd: key space (its timeouts,
        limits, buffering, acme, space_ca), apps/<app> for each app (without
        dynos) and dynos/<app>/<dyno> for each dyno, under store.etcd.prefix of
        FILE. SPACE.yaml must pass -check, and every key must pass the checks
        the routers make (relative paths are resolved against FILE's directory);
        otherwise nothing is written. Keys in etcd that SPACE.yaml does not
        have are left as they are.
  spacerouter store get -config FILE [KEY]
        print the keys under store.etcd.prefix (all of them, those under KEY
        when it ends in /, or KEY alone), each as a YAML document headed by its
        name and revision; KEY alone prints its value only.

Exit codes: 0 done, 1 etcd did not answer (or KEY is not there), 2 bad usage,
a bad config file or a space the routers would refuse.
`

// storeLoader loads the config file for the store subcommand.
type storeLoader func(path string) (*config.Config, error)

// runStore is spacerouter store SUBCOMMAND [flags]; it returns the exit
// code.
func runStore(args []string, stdout, stderr io.Writer, load storeLoader) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, storeUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	sub := args[0]
	if sub != "import" && sub != "get" {
		fmt.Fprintf(stderr, "spacerouter store: unknown subcommand %q: want import or get (spacerouter store -help)\n", sub)
		return exitUsage
	}
	fail := func(format string, a ...any) {
		fmt.Fprintf(stderr, "spacerouter store %s: %s\n", sub, fmt.Sprintf(format, a...))
	}
	fs := flag.NewFlagSet("spacerouter store "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, storeUsage) }
	configPath := fs.String("config", "", "the router's config `FILE`, with store")
	from := fs.String("from", "", "the file-based space `SPACE.yaml` to import")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	switch {
	case *configPath == "":
		fail("-config is required (spacerouter store -help)")
		return exitUsage
	case sub == "import" && *from == "":
		fail("-from is required: the file-based space to import")
		return exitUsage
	case sub == "import" && fs.NArg() > 0, sub == "get" && fs.NArg() > 1:
		fail("unexpected argument %q", fs.Arg(fs.NArg()-1))
		return exitUsage
	case sub == "get" && *from != "":
		fail("-from is for import")
		return exitUsage
	}
	cfg, err := load(*configPath)
	if err != nil {
		printConfigError(stderr, err)
		return exitUsage
	}
	if cfg.Store == nil {
		fail("%s has no store section: add store.etcd (docs/config.md)", *configPath)
		return exitUsage
	}
	s, err := store.New(cfg, store.Options{})
	if err != nil {
		fail("%v", err)
		return exitFail
	}
	defer s.Close()
	if sub == "import" {
		return storeImport(s, cfg, *from, stdout, stderr, fail)
	}
	return storeGet(s, fs.Arg(0), stdout, fail)
}

// storeImport is spacerouter store import.
func storeImport(s *store.Store, cfg *config.Config, from string, stdout, stderr io.Writer, fail func(string, ...any)) int {
	kvs, rev, err := s.Import(context.Background(), from)
	if refused, ok := errors.AsType[*store.RefusedError](err); ok {
		for _, r := range refused.Refused {
			fmt.Fprintln(stderr, r.String())
		}
		fail("nothing was written: the routers would refuse the keys above")
		return exitUsage
	}
	if _, ok := errors.AsType[*config.Errors](err); ok {
		printConfigError(stderr, err)
		return exitUsage
	}
	if err != nil {
		fail("%v", err)
		return exitFail
	}
	for _, kv := range kvs {
		fmt.Fprintf(stdout, "%s%s\n", cfg.Store.Etcd.Prefix, kv.Key)
	}
	fmt.Fprintf(stdout, "wrote %d keys at revision %d\n", len(kvs), rev)
	return exitOK
}

// storeGet is spacerouter store get.
func storeGet(s *store.Store, key string, stdout io.Writer, fail func(string, ...any)) int {
	kvs, err := s.Get(context.Background(), key)
	if err != nil {
		fail("%v", err)
		return exitFail
	}
	if key != "" && !strings.HasSuffix(key, "/") {
		if len(kvs) == 0 {
			fail("no key %s", key)
			return exitFail
		}
		fmt.Fprintln(stdout, strings.TrimSuffix(kvs[0].Value, "\n"))
		return exitOK
	}
	for _, kv := range kvs {
		fmt.Fprintf(stdout, "--- # %s, revision %d\n%s\n", kv.Key, kv.ModRevision, strings.TrimSuffix(kv.Value, "\n"))
	}
	return exitOK
}

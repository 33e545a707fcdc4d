package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spacerouter/spacerouter/acme"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/router"
)

// certsUsage is the help of the certs subcommand (SPEC.md section 12.1).
const certsUsage = `Usage:
  spacerouter certs status -config FILE [-app APP] [-json]
        the certificates of the tls: auto apps, one line per domain: app, domain,
        state (waiting, in_progress, ok, failing), not_after, issuer, verify-full
        (yes when the chain verifies with the system's roots, or acme.trusted_roots,
        for the domain name) and the last error. Read from acme.storage without
        starting anything: the state and last error are those a running router
        (or the last one) wrote there. -json prints the same as a JSON array.

Exit codes: 0 done, 1 the storage could not be read, 2 bad usage or config.
`

// certsLoader loads the config file for the certs subcommand.
type certsLoader func(path string) (*config.Config, error)

// runCerts is spacerouter certs SUBCOMMAND [flags]; it returns the exit
// code.
func runCerts(args []string, stdout, stderr io.Writer, load certsLoader) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, certsUsage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	if args[0] != "status" {
		fmt.Fprintf(stderr, "spacerouter certs: unknown subcommand %q: want status (spacerouter certs -help)\n", args[0])
		return exitUsage
	}
	fail := func(format string, a ...any) {
		fmt.Fprintf(stderr, "spacerouter certs status: %s\n", fmt.Sprintf(format, a...))
	}
	fs := flag.NewFlagSet("spacerouter certs status", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, certsUsage) }
	configPath := fs.String("config", "", "the space's config `FILE`, with acme")
	app := fs.String("app", "", "only the domains of `APP`")
	asJSON := fs.Bool("json", false, "print a JSON array")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		fail("unexpected argument %q", fs.Arg(0))
		return exitUsage
	case *configPath == "":
		fail("-config is required (spacerouter certs -help)")
		return exitUsage
	}
	cfg, err := load(*configPath)
	if err != nil {
		printConfigError(stderr, err)
		return exitUsage
	}
	if cfg.ACME == nil {
		fail("%s has no acme section: no app can use tls: auto (docs/config.md)", *configPath)
		return exitUsage
	}
	apps, err := autoDomains(cfg, *app)
	if err != nil {
		fail("%s: %v", *configPath, err)
		return exitUsage
	}
	statuses, err := acme.StatusFromStorage(router.ACMEOptions(cfg.ACME), apps, time.Now())
	if err != nil {
		fail("%v", err)
		return exitFail
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		err = enc.Encode(statuses)
	} else {
		err = acme.WriteStatus(stdout, statuses)
	}
	if err != nil {
		fail("%v", err)
		return exitFail
	}
	return exitOK
}

// autoDomains returns the domains of the config's tls: auto apps by app
// name, or of the one app named only (which must exist and use tls: auto).
func autoDomains(cfg *config.Config, only string) (map[string][]string, error) {
	apps := map[string][]string{}
	names := make([]string, 0, len(cfg.Apps))
	for _, a := range cfg.Apps {
		names = append(names, a.Name)
		if only != "" && a.Name != only {
			continue
		}
		if only != "" && !a.TLSAuto {
			return nil, fmt.Errorf("app %s does not use tls: auto", only)
		}
		if a.TLSAuto {
			apps[a.Name] = a.Domains
		}
	}
	if only != "" && len(apps) == 0 {
		return nil, fmt.Errorf("unknown app %q: the apps are %s", only, strings.Join(names, ", "))
	}
	return apps, nil
}

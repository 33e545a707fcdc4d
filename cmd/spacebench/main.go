// Command spacebench loads an HTTP target and reports requests per second,
// latency percentiles, status counts and transport errors (SPEC.md section
// 10). The work is done by package bench; main only parses flags and prints.
//
// Usage:
//
//	spacebench [flags] URL
//	spacebench -space [flags]
//
// Closed loop by default (-c connections, each sending its next request as
// soon as the last completes); -rate N sends N requests per second from the
// start and measures latency from when each was due. -compare URL2 runs both
// targets interleaved in -rounds rounds and prints the ratio B/A of requests
// per second. -json prints the machine-readable result on stdout (schema in
// bench.Summary and bench.ComparisonSummary). A progress bar is drawn on
// stderr when stderr is a terminal. -plot FILE.png or FILE.html draws the
// latency distribution (both targets with -compare).
//
// -space is the self-contained mode: it starts -dynos synthetic dynos in
// this process (-body-size, -latency, -chunked), a router in front of them
// (the binary -router, or by default in this process) with a generated
// config, and compares going straight to one dyno (A) with going through the
// router (B) in -rounds rounds. It prints the router's overhead: the median
// throughput ratio router/direct and the added p50 and p99 latency (-json:
// bench.SpaceSummary).
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spacerouter/spacerouter/bench"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the parsed command line.
type options struct {
	cfg     bench.Config
	json    bool
	compare string
	rounds  int
	plot    string
	space   spaceOptions
}

// run is the whole command: it returns 0 on success, 1 when the run failed
// or was interrupted, and 2 on a usage error.
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "spacebench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if opts.space.on {
		return runSpace(ctx, opts, stdout, stderr)
	}
	if opts.compare != "" {
		return runCompare(ctx, opts, stdout, stderr)
	}
	var progress func(bench.Snapshot)
	if isTerminal(stderr) {
		progress = progressBar(stderr, opts.cfg)
	}
	res, err := bench.Run(ctx, opts.cfg, progress)
	if progress != nil {
		fmt.Fprint(stderr, "\r\033[K") // clear the bar
	}
	if res == nil {
		fmt.Fprintln(stderr, "spacebench:", err)
		return 1
	}
	if opts.json {
		b, jerr := res.JSON()
		if jerr != nil {
			fmt.Fprintln(stderr, "spacebench:", jerr)
			return 1
		}
		stdout.Write(b)
	} else {
		printResult(stdout, res)
	}
	if code := writePlot(opts.plot, "spacebench: "+res.URL, stderr, bench.Series{Name: res.URL, Hist: res.Latency}); code != 0 {
		return code
	}
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: interrupted:", err)
		return 1
	}
	return 0
}

// parseFlags turns args into options; usage errors are returned.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("spacebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: spacebench [flags] URL\n       spacebench -space [flags]")
		fs.PrintDefaults()
	}
	var o options
	c := &o.cfg
	headers := http.Header{}
	var body string
	fs.IntVar(&c.Conns, "c", 10, "connections")
	fs.DurationVar(&c.Duration, "d", 10*time.Second, "duration of the run (per target and round with -compare)")
	fs.IntVar(&c.Requests, "n", 0, "stop after this many requests (alone, -n runs without a time limit)")
	fs.Float64Var(&c.Rate, "rate", 0, "open loop: requests per second, latency measured from the due time (0: closed loop)")
	fs.BoolVar(&c.HTTP2, "h2", false, "speak HTTP/2 (ALPN h2 over TLS, h2c prior knowledge over http)")
	fs.IntVar(&c.Streams, "streams", 1, "concurrent streams per HTTP/2 connection")
	fs.BoolVar(&c.Insecure, "insecure", false, "do not verify the server certificate")
	fs.StringVar(&c.SNI, "sni", "", "TLS server name (default: the URL's host)")
	fs.StringVar(&c.Method, "m", http.MethodGet, "request method")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "limit for each connection attempt and each request")
	fs.Func("H", "request header 'Key: Value' (repeatable)", func(s string) error {
		k, v, ok := strings.Cut(s, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return fmt.Errorf("header %q is not 'Key: Value'", s)
		}
		headers.Add(strings.TrimSpace(k), strings.TrimSpace(v))
		return nil
	})
	fs.StringVar(&body, "body", "", "request body; @FILE reads it from FILE")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON on stdout, nothing else")
	fs.StringVar(&o.compare, "compare", "", "second URL: run both interleaved and print the ratio of req/s (B/A)")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds with -compare and -space")
	fs.StringVar(&o.plot, "plot", "", "draw the latency distribution into `FILE`: .png, or .html with a table")
	sp := &o.space
	fs.BoolVar(&sp.on, "space", false, "self-contained: start synthetic dynos and a router, print the router's overhead")
	fs.IntVar(&sp.dyno.BodySize, "body-size", 64, "-space: response body size in bytes")
	fs.DurationVar(&sp.dyno.Latency, "latency", 0, "-space: time each dyno waits before answering")
	fs.BoolVar(&sp.dyno.Chunked, "chunked", false, "-space: dynos stream chunked bodies in several writes")
	fs.IntVar(&sp.dynos, "dynos", 2, "-space: number of synthetic dynos")
	fs.StringVar(&sp.router, "router", "", "-space: router `BINARY` to start (default: the router in this process)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if err := checkModes(&o, fs.NArg()); err != nil {
		fs.Usage()
		return o, err
	}
	if !sp.on {
		c.URL = fs.Arg(0)
	}
	if len(headers) > 0 {
		c.Headers = headers
	}
	setD := false
	fs.Visit(func(f *flag.Flag) { setD = setD || f.Name == "d" })
	if c.Requests > 0 && !setD {
		c.Duration = 0
	}
	if body != "" {
		if name, ok := strings.CutPrefix(body, "@"); ok {
			b, err := os.ReadFile(name)
			if err != nil {
				return o, fmt.Errorf("reading body: %w", err)
			}
			c.Body = b
		} else {
			c.Body = []byte(body)
		}
	}
	return o, c.Validate()
}

// checkModes checks the flags that depend on the mode, given the number of
// arguments left after the flags.
func checkModes(o *options, nargs int) error {
	if ext := filepath.Ext(o.plot); o.plot != "" && ext != ".png" && ext != ".html" {
		return fmt.Errorf("-plot %s: want a .png or .html file", o.plot)
	}
	sp := o.space
	switch {
	case !sp.on && nargs != 1:
		return errors.New("want exactly one URL")
	case !sp.on:
		return nil
	case nargs != 0:
		return errors.New("-space takes no URL")
	case o.compare != "":
		return errors.New("-space compares the router with its dynos: -compare does not apply")
	case o.cfg.HTTP2:
		return errors.New("-space: the synthetic dynos speak HTTP/1.1 only: -h2 does not apply")
	case sp.dynos < 1:
		return fmt.Errorf("-dynos %d: want at least 1", sp.dynos)
	case sp.dyno.BodySize < 0:
		return fmt.Errorf("-body-size %d: is negative", sp.dyno.BodySize)
	case sp.dyno.Latency < 0:
		return fmt.Errorf("-latency %v: is negative", sp.dyno.Latency)
	}
	// The targets are known only once the dynos and the router run; this
	// stand-in lets Validate check the rest of the config now.
	o.cfg.URL = "http://127.0.0.1/"
	return nil
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressBar returns a callback drawing a one-line bar on w. Run calls it
// about 4 times a second.
func progressBar(w io.Writer, cfg bench.Config) func(bench.Snapshot) {
	const width = 30
	return func(s bench.Snapshot) {
		var frac float64
		switch {
		case cfg.Duration > 0:
			frac = float64(s.Elapsed) / float64(cfg.Duration)
		case cfg.Requests > 0:
			frac = float64(s.Requests+s.Errors) / float64(cfg.Requests)
		}
		frac = min(max(frac, 0), 1)
		fill := int(frac * width)
		rps := float64(s.Requests) / max(s.Elapsed.Seconds(), 1e-9)
		fmt.Fprintf(w, "\r[%s%s] %3.0f%% %6.1fs %10d req %10.1f req/s %6d err\033[K",
			strings.Repeat("#", fill), strings.Repeat("-", width-fill), frac*100,
			s.Elapsed.Seconds(), s.Requests, rps, s.Errors)
	}
}

// printResult writes the human summary of res.
func printResult(w io.Writer, res *bench.Result) {
	s := res.Summary()
	mode := fmt.Sprintf("closed loop, %d conns", s.Conns)
	if s.Mode == "open" {
		mode = fmt.Sprintf("open loop at %g req/s, %d conns", s.Rate, s.Conns)
	}
	if s.Protocol == "HTTP/2" {
		mode += fmt.Sprintf(" × %d streams", s.Streams)
	}
	fmt.Fprintf(w, "Target    %s (%s, %s)\n", s.URL, s.Protocol, mode)
	fmt.Fprintf(w, "Requests  %d in %.2fs, %.1f req/s, %s of bodies\n", s.Requests, s.ElapsedS, s.RPS, byteSize(s.Bytes))
	l := s.LatencyMS
	fmt.Fprintf(w, "Latency   p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
		l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(w, "Status    %s\n", counts(res.Status))
	errs := map[string]int{}
	for k, n := range res.Errors {
		if n > 0 {
			errs[k] = n
		}
	}
	fmt.Fprintf(w, "Errors    %s\n", counts(errs))
}

// counts formats a count map as "k: n  k: n" in key order, or "none".
func counts[K cmp.Ordered](m map[K]int) string {
	if len(m) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteString("  ")
		}
		fmt.Fprintf(&b, "%v: %d", k, m[k])
	}
	return b.String()
}

// byteSize formats n bytes for people.
func byteSize(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.2f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// runCompare runs the -compare mode.
func runCompare(ctx context.Context, o options, stdout, stderr io.Writer) int {
	cfgB := o.cfg
	cfgB.URL = o.compare
	if err := cfgB.Validate(); err != nil {
		fmt.Fprintln(stderr, "spacebench: -compare:", err)
		return 2
	}
	c, err := bench.Compare(ctx, o.cfg, cfgB, o.rounds)
	if c == nil {
		fmt.Fprintln(stderr, "spacebench:", err)
		return 1
	}
	if o.json {
		b, jerr := json.MarshalIndent(c.Summary(), "", "  ")
		if jerr != nil {
			fmt.Fprintln(stderr, "spacebench:", jerr)
			return 1
		}
		stdout.Write(append(b, '\n'))
	} else if len(c.Rounds) > 0 {
		printComparison(stdout, c)
	}
	if len(c.Rounds) > 0 {
		code := writePlot(o.plot, "spacebench: A/B", stderr,
			bench.Series{Name: "A " + o.cfg.URL, Hist: c.Total(true).Latency},
			bench.Series{Name: "B " + cfgB.URL, Hist: c.Total(false).Latency})
		if code != 0 {
			return code
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: interrupted:", err)
		return 1
	}
	return 0
}

// printComparison writes the per-round table, the median ratio and each
// side's merged summary.
func printComparison(w io.Writer, c *bench.Comparison) {
	a, b := c.Total(true), c.Total(false)
	fmt.Fprintf(w, "A  %s\nB  %s\n\n", a.URL, b.URL)
	fmt.Fprintf(w, "%-6s %-6s %12s %12s %8s\n", "round", "order", "A req/s", "B req/s", "B/A")
	for i, r := range c.Rounds {
		order := "B A"
		if r.AFirst {
			order = "A B"
		}
		fmt.Fprintf(w, "%-6d %-6s %12.1f %12.1f %8.3f\n", i+1, order, r.A.RPS, r.B.RPS, r.Ratio)
	}
	fmt.Fprintf(w, "\nmedian B/A  %.3f\n\n", c.Median)
	fmt.Fprintln(w, "A (all rounds)")
	printResult(w, a)
	fmt.Fprintln(w, "\nB (all rounds)")
	printResult(w, b)
}

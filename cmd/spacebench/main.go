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
//
// Flags may also follow the URL (spacebench URL -c 10), and -rate takes
// vegeta's N/UNIT too (100/s, 50/100ms). When -d ends, requests in flight
// get up to -timeout to complete; the rest count as timeouts. The report
// counts responses that are not 2xx or 3xx apart, as wrk does, and quotes
// the first error of each kind. Warnings go to stderr, with -json too: an
// open-loop rate that was not reached (with the achieved rate and the due
// requests never sent), a server certificate that did not verify, and
// every request failing, which also sets the exit status (see exitOK).
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spacerouter/spacerouter/bench"
)

func main() {
	// With SIGPIPE caught, a write to a closed stdout (spacebench ... | head)
	// fails with EPIPE instead of killing the process, so -space still stops
	// the router child it started (os/signal, "SIGPIPE").
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes, listed in the usage text.
const (
	exitOK = 0
	// exitFailed: the run could not be done or was interrupted, or the
	// report or the plot could not be written.
	exitFailed = 1
	// exitUsage: the command line is wrong.
	exitUsage = 2
	// exitAllFailed: every request failed (no 2xx or 3xx response), on
	// either side with -compare and -space.
	exitAllFailed = 3
)

// exitCodes is the exit-code part of the usage text.
const exitCodes = `
Exit status:
  0  the run completed and some request got a 2xx or 3xx response
  1  the run could not be done or was interrupted, or the report or plot could not be written
  2  usage error
  3  every request failed: transport errors (timeouts included) or statuses other than 2xx and 3xx
     (with -compare and -space: on either side)
`

// options are the parsed command line.
type options struct {
	cfg     bench.Config
	json    bool
	compare string
	rounds  int
	plot    string
	space   spaceOptions
}

// run is the whole command; it returns the exit code (exitOK and the
// others).
func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		fmt.Fprintln(stderr, "spacebench:", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	out := &reportWriter{w: stdout}
	var code int
	switch {
	case opts.space.on:
		code = runSpace(ctx, opts, out, stderr)
	case opts.compare != "":
		code = runCompare(ctx, opts, out, stderr)
	default:
		code = runOne(ctx, opts, out, stderr)
	}
	if out.err != nil && code == exitOK {
		// A reader that went away (| head) is the user's choice, not news.
		if !errors.Is(out.err, syscall.EPIPE) {
			fmt.Fprintln(stderr, "spacebench: writing the report:", out.err)
		}
		return exitFailed
	}
	return code
}

// reportWriter keeps the first error of writing the report, so a stdout
// that went away turns into an exit code instead of going unnoticed.
type reportWriter struct {
	w   io.Writer
	err error
}

func (rw *reportWriter) Write(p []byte) (int, error) {
	if rw.err != nil {
		return 0, rw.err
	}
	n, err := rw.w.Write(p)
	rw.err = err
	return n, err
}

// runOne loads one URL.
func runOne(ctx context.Context, opts options, stdout, stderr io.Writer) int {
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
		return exitFailed
	}
	if opts.json {
		b, jerr := res.JSON()
		if jerr != nil {
			fmt.Fprintln(stderr, "spacebench:", jerr)
			return exitFailed
		}
		stdout.Write(b)
	} else {
		printResult(stdout, res)
	}
	code := warn(stderr, "", res)
	if c := writePlot(opts.plot, "spacebench: "+res.URL, stderr, bench.Series{Name: res.URL, Hist: res.Latency}); c != exitOK {
		return c
	}
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: interrupted:", err)
		return exitFailed
	}
	return code
}

// parseFlags turns args into options; usage errors are returned.
func parseFlags(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("spacebench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: spacebench [flags] URL [flags]\n       spacebench -space [flags]\n\nFlags:")
		fs.PrintDefaults()
		fmt.Fprint(stderr, exitCodes)
	}
	var o options
	c := &o.cfg
	headers := http.Header{}
	var body string
	fs.IntVar(&c.Conns, "c", 10, "connections")
	fs.DurationVar(&c.Duration, "d", 10*time.Second, "duration of sending (per target and round with -compare); requests in flight then get up to -timeout")
	fs.IntVar(&c.Requests, "n", 0, "stop after this many requests (alone, -n runs without a time limit)")
	fs.Var(rateFlag{&c.Rate}, "rate", "open loop: send `N[/UNIT]` requests per second, or per UNIT (100/s, 50/100ms, 6000/m); latency measured from the due time (0: closed loop)")
	fs.BoolVar(&c.HTTP2, "h2", false, "speak HTTP/2 (ALPN h2 over TLS, h2c prior knowledge over http)")
	fs.IntVar(&c.Streams, "streams", 1, "concurrent streams per HTTP/2 connection")
	fs.BoolVar(&c.Insecure, "insecure", false, "do not verify the server certificate")
	fs.StringVar(&c.SNI, "sni", "", "TLS server name (default: the URL's host)")
	fs.StringVar(&c.ClientCert, "cert", "", "client certificate `FILE` (PEM, its chain after it) for a TLS server that asks for one (mtls); needs -key")
	fs.StringVar(&c.ClientKey, "key", "", "the client certificate's private key `FILE` (PEM)")
	fs.StringVar(&c.Local, "local", "", "source `IP` of the connections (on loopback, 127.0.0.2 is another client)")
	fs.StringVar(&c.Method, "m", http.MethodGet, "request method")
	fs.DurationVar(&c.Timeout, "timeout", 10*time.Second, "limit for each connection attempt and each request, and for the requests in flight when -d ends")
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
	urls, err := parseArgs(fs, args)
	if err != nil {
		return o, err
	}
	if err := checkModes(&o, len(urls)); err != nil {
		fs.Usage()
		return o, err
	}
	if !sp.on {
		c.URL = urls[0]
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

// parseArgs parses args with fs and returns the arguments that are not
// flags. Flags may follow them, as users of wrk, hey and vegeta type them
// (spacebench URL -c 10); after "--" everything is an argument.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		left := fs.Args()
		if len(left) == 0 {
			return rest, nil
		}
		if n := len(args) - len(left); n > 0 && args[n-1] == "--" {
			return append(rest, left...), nil
		}
		rest = append(rest, left[0])
		args = left[1:]
	}
}

// rateFlag is -rate: N requests per second, or vegeta's N/UNIT, N requests
// per UNIT, a duration whose leading 1 may be left out (100/s, 50/100ms,
// 6000/1m, 6000/m).
type rateFlag struct{ rate *float64 }

func (f rateFlag) String() string {
	if f.rate == nil { // the zero value flag.PrintDefaults makes
		return "0"
	}
	return strconv.FormatFloat(*f.rate, 'g', -1, 64)
}

func (f rateFlag) Set(s string) error {
	num, unit, perUnit := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(num, 64)
	if err != nil || !(n >= 0) || math.IsInf(n, 0) {
		return fmt.Errorf("%q is not a number of requests", num)
	}
	per := time.Second
	if perUnit {
		if unit != "" && (unit[0] < '0' || unit[0] > '9') && unit[0] != '.' {
			unit = "1" + unit
		}
		if per, err = time.ParseDuration(unit); err != nil || per <= 0 {
			return fmt.Errorf("%q is not a time unit such as s, 1s or 100ms", unit)
		}
	}
	*f.rate = n / per.Seconds()
	return nil
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
	if s.Mode == "open" {
		fmt.Fprintf(w, "Rate      asked %g req/s, sent %.1f req/s, %s\n", s.Rate, s.AchievedRate, unsent(res))
	}
	l := s.LatencyMS
	fmt.Fprintf(w, "Latency   p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
		l.P50, l.P90, l.P99, l.P999, l.Max)
	fmt.Fprintf(w, "Status    %s\n", counts(res.Status))
	if n := s.StatusErrors; n > 0 {
		// As wrk's "Non-2xx or 3xx responses", with the codes.
		bad := map[int]int{}
		for code, k := range res.Status {
			if !bench.StatusOK(code) {
				bad[code] = k
			}
		}
		fmt.Fprintf(w, "Non-2xx   %d of %d responses (%.1f%%) are not 2xx or 3xx: %s\n",
			n, s.Requests, 100*float64(n)/float64(s.Requests), counts(bad))
	}
	printErrors(w, res)
}

// unsent describes the open-loop requests that were due but never sent.
func unsent(res *bench.Result) string {
	if res.Unsent == 0 {
		return fmt.Sprintf("all %d due requests sent", res.Due)
	}
	return fmt.Sprintf("%d of %d due requests never sent", res.Unsent, res.Due)
}

// printErrors writes the transport errors of res by kind, then the reason
// of the first error of each kind.
func printErrors(w io.Writer, res *bench.Result) {
	errs := nonZero(res.Errors)
	line := counts(errs)
	if n := res.EndTimeouts; n > 0 {
		line += fmt.Sprintf(" (%d in flight when -d ended, no response within -timeout)", n)
	}
	fmt.Fprintf(w, "Errors    %s\n", line)
	for _, k := range bench.Kinds {
		if err := res.FirstErrors[k]; errs[k] > 0 && err != nil {
			fmt.Fprintf(w, "          first %s error: %v\n", k, err)
		}
	}
}

// nonZero returns the entries of m that are not 0.
func nonZero(m map[string]int) map[string]int {
	out := map[string]int{}
	for k, n := range m {
		if n > 0 {
			out[k] = n
		}
	}
	return out
}

// warn writes to w what nobody should miss in res: an open-loop rate that
// was not reached, a server certificate that did not verify, and that every
// request failed. It returns exitAllFailed in that last case, else exitOK.
// side names the side of a -compare or -space run, "" for a single run.
func warn(w io.Writer, side string, res *bench.Result) int {
	prefix := "spacebench: "
	if side != "" {
		prefix += side + ": "
	}
	if res.Rate > 0 && (res.Unsent > 0 || res.AchievedRate < rateShortfall*res.Rate) {
		raise := "-c"
		if res.Protocol == "HTTP/2" {
			raise = "-c or -streams"
		}
		fmt.Fprintf(w, "%swarning: -rate %g not reached: sent %.1f req/s, %s; requests waited for a free connection: raise %s\n",
			prefix, res.Rate, res.AchievedRate, unsent(res), raise)
	}
	if cerr, ok := errors.AsType[*tls.CertificateVerificationError](res.FirstErrors[bench.KindTLS]); ok {
		fmt.Fprintf(w, "%sthe server's certificate did not verify (%v); -insecure skips the check\n", prefix, cerr.Err)
	}
	if !res.AllFailed() {
		return exitOK
	}
	var why []string
	if res.Requests > 0 {
		why = append(why, fmt.Sprintf("%d responses, none 2xx or 3xx (%s)", res.Requests, counts(res.Status)))
	}
	if n := res.ErrorCount(); n > 0 {
		why = append(why, fmt.Sprintf("%d transport errors (%s)", n, counts(nonZero(res.Errors))))
	}
	if len(why) == 0 {
		why = append(why, "no request was sent")
	}
	fmt.Fprintf(w, "%severy request failed: %s\n", prefix, strings.Join(why, "; "))
	return exitAllFailed
}

// rateShortfall: an open loop that sent less than this share of -rate per
// second is reported as not reaching it. Below 1, so a timer firing late
// for the last request of a short run raises no warning.
const rateShortfall = 0.9

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
		return exitUsage
	}
	c, err := bench.Compare(ctx, o.cfg, cfgB, o.rounds)
	if c == nil {
		fmt.Fprintln(stderr, "spacebench:", err)
		return exitFailed
	}
	code := exitOK
	if o.json {
		b, jerr := json.MarshalIndent(c.Summary(), "", "  ")
		if jerr != nil {
			fmt.Fprintln(stderr, "spacebench:", jerr)
			return exitFailed
		}
		stdout.Write(append(b, '\n'))
	} else if len(c.Rounds) > 0 {
		printComparison(stdout, c)
	}
	if len(c.Rounds) > 0 {
		code = warnSides(stderr, c, "A", "B")
		plot := writePlot(o.plot, "spacebench: A/B", stderr,
			bench.Series{Name: "A " + o.cfg.URL, Hist: c.Total(true).Latency},
			bench.Series{Name: "B " + cfgB.URL, Hist: c.Total(false).Latency})
		if plot != exitOK {
			return plot
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: interrupted:", err)
		return exitFailed
	}
	return code
}

// warnSides warns about both sides of c, named a and b, and returns
// exitAllFailed if every request of either side failed.
func warnSides(w io.Writer, c *bench.Comparison, a, b string) int {
	return max(warn(w, a, c.Total(true)), warn(w, b, c.Total(false)))
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

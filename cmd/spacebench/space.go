package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spacerouter/spacerouter/bench"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router"
)

// spaceOptions are the flags of the self-contained mode (-space).
type spaceOptions struct {
	on     bool
	dyno   bench.DynoConfig
	dynos  int
	router string // router binary; "" runs the router in this process
}

// Limits of starting and stopping the router.
const (
	routerStartLimit = 15 * time.Second
	routerStopLimit  = 10 * time.Second
)

// runSpace is -space: synthetic dynos, a router in front of them, then the
// load straight to one dyno (A) and through the router (B), interleaved.
func runSpace(ctx context.Context, o options, stdout, stderr io.Writer) int {
	dynos, err := bench.StartDynos(o.space.dynos, o.space.dyno)
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: starting the dynos:", err)
		return exitFailed
	}
	defer dynos.Close()
	start := startInProcess
	if o.space.router != "" {
		start = func(ctx context.Context, dynos []string) (string, func(), error) {
			return startBinary(ctx, o.space.router, dynos, stderr)
		}
	}
	addr, stopRouter, err := start(ctx, dynos.Addrs())
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: starting the router:", err)
		return exitFailed
	}
	defer stopRouter()

	direct := o.cfg
	direct.URL = "http://" + dynos[0].Addr() + "/"
	via := o.cfg
	via.URL = "http://" + addr + "/"
	via.Headers = o.cfg.Headers.Clone()
	if via.Headers == nil {
		via.Headers = map[string][]string{}
	}
	via.Headers.Set("Host", bench.SpaceDomain)
	c, err := bench.Compare(ctx, direct, via, o.rounds)
	if c == nil {
		fmt.Fprintln(stderr, "spacebench:", err)
		return exitFailed
	}
	code := exitOK
	if len(c.Rounds) > 0 {
		code = reportSpace(o, c, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: interrupted:", err)
		return exitFailed
	}
	return code
}

// reportSpace prints the result of runSpace and writes the plot.
func reportSpace(o options, c *bench.Comparison, stdout, stderr io.Writer) int {
	if o.json {
		s := c.SpaceSummary()
		s.Setup = bench.SpaceSetup{Dynos: o.space.dynos, BodySize: o.space.dyno.BodySize,
			LatencyMS: float64(o.space.dyno.Latency) / float64(time.Millisecond), Chunked: o.space.dyno.Chunked,
			Router: cmp.Or(o.space.router, "in-process")}
		b, err := json.MarshalIndent(s, "", "  ")
		if err != nil {
			fmt.Fprintln(stderr, "spacebench:", err)
			return exitFailed
		}
		stdout.Write(append(b, '\n'))
	} else {
		printSpace(stdout, o, c)
	}
	code := warnSides(stderr, c, "direct", "router")
	if plot := writePlot(o.plot, "spacebench: router overhead", stderr,
		bench.Series{Name: "direct", Hist: c.Total(true).Latency},
		bench.Series{Name: "router", Hist: c.Total(false).Latency}); plot != exitOK {
		return plot
	}
	return code
}

// printSpace writes the human report of a -space run.
func printSpace(w io.Writer, o options, c *bench.Comparison) {
	d := o.space.dyno
	enc := "Content-Length"
	if d.Chunked {
		enc = "chunked"
	}
	fmt.Fprintf(w, "Space     %d dynos, %s bodies (%s), latency %v, router %s\n",
		o.space.dynos, byteSize(int64(d.BodySize)), enc, d.Latency, cmp.Or(o.space.router, "in-process"))
	fmt.Fprintf(w, "Direct    %s\nRouter    %s (Host: %s)\n\n", c.Rounds[0].A.URL, c.Rounds[0].B.URL, bench.SpaceDomain)
	fmt.Fprintf(w, "%-6s %-15s %14s %14s %14s\n", "round", "order", "direct req/s", "router req/s", "router/direct")
	for i, r := range c.Rounds {
		order := "router, direct"
		if r.AFirst {
			order = "direct, router"
		}
		fmt.Fprintf(w, "%-6d %-15s %14.1f %14.1f %14.3f\n", i+1, order, r.A.RPS, r.B.RPS, r.Ratio)
	}
	ov := bench.NewOverhead(c)
	fmt.Fprintf(w, "\nOverhead  throughput router/direct %.3f (median of %d rounds)\n", ov.ThroughputRatio, len(c.Rounds))
	fmt.Fprintf(w, "          added latency p50 %+.3f ms  p99 %+.3f ms\n\n",
		float64(ov.AddedP50)/float64(time.Millisecond), float64(ov.AddedP99)/float64(time.Millisecond))
	fmt.Fprintln(w, "Direct (all rounds)")
	printResult(w, c.Total(true))
	fmt.Fprintln(w, "\nRouter (all rounds)")
	printResult(w, c.Total(false))
}

// startInProcess runs the router in this process through its public API,
// on a free port, in front of dynos. Router lines are formatted (their cost
// is part of the router's) and thrown away.
func startInProcess(_ context.Context, dynos []string) (string, func(), error) {
	cfg, err := config.Parse("spacebench.yaml", bench.SpaceConfigYAML("127.0.0.1:0", dynos, os.DevNull))
	if err != nil {
		return "", nil, fmt.Errorf("generating the config: %w", err)
	}
	lines := logging.NewRouterLog(io.Discard, cfg.Log.Source, cfg.Log.Redact)
	r, err := router.New(cfg, router.Options{Lines: lines})
	if err != nil {
		return "", nil, err
	}
	if err := r.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), routerStopLimit)
		defer cancel()
		r.Shutdown(ctx)
	}
	return r.HTTPAddr().String(), stop, nil
}

// startBinary runs the router binary bin with a generated config file in a
// temporary directory, and waits until it accepts connections. Its
// operational log goes to stderr; router lines to /dev/null.
func startBinary(ctx context.Context, bin string, dynos []string, stderr io.Writer) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "spacebench-")
	if err != nil {
		return "", nil, err
	}
	file := filepath.Join(dir, "space.yaml")
	if err := os.WriteFile(file, bench.SpaceConfigYAML(addr, dynos, os.DevNull), 0o600); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("writing the config: %w", err)
	}
	cmd := exec.Command(bin, "-config", file)
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	if err := cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		defer os.RemoveAll(dir)
		cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(routerStopLimit)
		defer t.Stop()
		select {
		case <-exited:
		case <-t.C:
			cmd.Process.Kill()
			<-exited
		}
	}
	if err := waitListening(ctx, addr, exited); err != nil {
		stop()
		return "", nil, fmt.Errorf("waiting for %s to listen on %s: %w", bin, addr, err)
	}
	return addr, stop, nil
}

// errExited means the router process ended before it listened.
var errExited = errors.New("the router exited")

// waitListening polls addr until it accepts a connection, the process
// exits, ctx ends or routerStartLimit passes.
func waitListening(ctx context.Context, addr string, exited chan error) error {
	ctx, cancel := context.WithTimeout(ctx, routerStartLimit)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var d net.Dialer
		if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			exited <- err // for stop
			return fmt.Errorf("%w: %v", errExited, err)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// writePlot writes the latency plot to path (.png or .html, checked by
// parseFlags); an empty path writes nothing. It returns the exit code.
func writePlot(path, title string, stderr io.Writer, series ...bench.Series) int {
	if path == "" {
		return exitOK
	}
	f, err := os.Create(path)
	if err == nil {
		if filepath.Ext(path) == ".png" {
			err = bench.WritePNG(f, series...)
		} else {
			err = bench.WriteHTML(f, title, series...)
		}
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		fmt.Fprintln(stderr, "spacebench: writing the plot:", err)
		return exitFailed
	}
	return exitOK
}

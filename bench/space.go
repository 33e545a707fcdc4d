package bench

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SpaceApp and SpaceDomain name the one app of a generated space config
// (SpaceConfigYAML); requests through the router carry Host: SpaceDomain.
const (
	SpaceApp    = "bench"
	SpaceDomain = "localhost"
)

// SpaceConfigYAML returns a router config file (SPEC.md section 2) for a
// self-contained benchmark: plain HTTP on listen, router lines to logPath,
// one app SpaceApp on SpaceDomain with the given dyno addresses, and a
// per-dyno concurrency limit far above any load spacebench sends, so the
// router's admission never shapes the result.
func SpaceConfigYAML(listen string, dynos []string, logPath string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "space: spacebench\nlisten:\n  http: %s\n", strconv.Quote(listen))
	fmt.Fprintf(&b, "log:\n  router: %s\n  level: error\n", strconv.Quote(logPath))
	b.WriteString("limits:\n  concurrency_per_dyno: 100000\n")
	fmt.Fprintf(&b, "apps:\n  - name: %s\n    domains: [%s]\n    dynos:\n", SpaceApp, SpaceDomain)
	for i, a := range dynos {
		fmt.Fprintf(&b, "      - {name: web.%d, address: %s}\n", i+1, strconv.Quote(a))
	}
	return []byte(b.String())
}

// Overhead is what the router costs, from a Compare of the direct path
// (A: straight to one dyno) against the router path (B).
type Overhead struct {
	// ThroughputRatio is the median over rounds of router req/s divided by
	// direct req/s: 1 means the router costs no throughput.
	ThroughputRatio float64
	// AddedP50 and AddedP99 are the router's p50 and p99 latency minus the
	// direct ones, each over all rounds. They can be negative when the
	// router's cost drowns in noise.
	AddedP50, AddedP99 time.Duration
}

// NewOverhead computes the overhead from c, whose A side went directly to
// a dyno and B side through the router. c needs at least one round.
func NewOverhead(c *Comparison) Overhead {
	o := Overhead{ThroughputRatio: c.Median}
	if len(c.Rounds) == 0 {
		return o
	}
	d, r := c.Total(true).Latency, c.Total(false).Latency
	o.AddedP50 = r.Percentile(50) - d.Percentile(50)
	o.AddedP99 = r.Percentile(99) - d.Percentile(99)
	return o
}

// SpaceSummary is the stable JSON form of a self-contained run, printed by
// spacebench -space -json: "direct" and "router" are the merged Summary of
// each path over all rounds, "rounds" the per-round req/s (a = direct,
// b = router) and ratio, then the overhead figures.
type SpaceSummary struct {
	Setup           SpaceSetup     `json:"setup"`
	Direct          Summary        `json:"direct"`
	Router          Summary        `json:"router"`
	Rounds          []RoundSummary `json:"rounds"`
	ThroughputRatio float64        `json:"throughput_ratio"`
	AddedP50MS      float64        `json:"added_p50_ms"`
	AddedP99MS      float64        `json:"added_p99_ms"`
}

// SpaceSetup describes the space a self-contained run measured; the
// caller fills it in (Comparison.SpaceSummary leaves it zero).
type SpaceSetup struct {
	Dynos     int     `json:"dynos"`
	BodySize  int     `json:"body_size"`
	LatencyMS float64 `json:"latency_ms"`
	Chunked   bool    `json:"chunked"`
	// Router is "in-process" or the path of the router binary.
	Router string `json:"router"`
}

// SpaceSummary returns the JSON form of c, a Compare of direct (A) against
// router (B), with its overhead.
func (c *Comparison) SpaceSummary() SpaceSummary {
	cs := c.Summary()
	o := NewOverhead(c)
	return SpaceSummary{
		Direct: cs.A, Router: cs.B, Rounds: cs.Rounds,
		ThroughputRatio: o.ThroughputRatio,
		AddedP50MS:      ms(o.AddedP50),
		AddedP99MS:      ms(o.AddedP99),
	}
}

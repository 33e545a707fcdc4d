package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
)

// Round is one round of a Compare: both targets run once, back to back.
type Round struct {
	// AFirst reports whether A ran before B in this round.
	AFirst bool
	// A and B are the two runs.
	A, B *Result
	// Ratio is B's requests per second divided by A's (0 if A served none).
	Ratio float64
}

// Comparison is the outcome of Compare.
type Comparison struct {
	// Rounds holds every round in order.
	Rounds []Round
	// Median is the median of the rounds' ratios: the figure to quote, as it
	// shrugs off a round disturbed by the machine's other work.
	Median float64
}

// Compare runs cfgA and cfgB alternately for rounds rounds (A B, then B A,
// and so on), so drift in the machine's speed hits both targets alike, and
// reports the ratio of B's to A's requests per second in each round and their
// median. Each run lasts cfgA.Duration (or cfgB.Duration) and is limited by
// the configs' Requests as in Run. If ctx is canceled, Compare returns the
// rounds completed so far together with ctx's error.
func Compare(ctx context.Context, cfgA, cfgB Config, rounds int) (*Comparison, error) {
	if rounds < 1 {
		return nil, fmt.Errorf("rounds: %d is less than 1", rounds)
	}
	for _, c := range []Config{cfgA, cfgB} {
		if err := c.withDefaults().Validate(); err != nil {
			return nil, err
		}
	}
	cmp := &Comparison{}
	for i := range rounds {
		r := Round{AFirst: i%2 == 0}
		var err error
		if r.AFirst {
			r.A, r.B, err = runPair(ctx, cfgA, cfgB)
		} else {
			r.B, r.A, err = runPair(ctx, cfgB, cfgA)
		}
		if err != nil {
			if errors.Is(err, ctx.Err()) {
				cmp.Median = median(cmp.Rounds)
				return cmp, err
			}
			return nil, fmt.Errorf("running round %d: %w", i+1, err)
		}
		if r.A.RPS > 0 {
			r.Ratio = r.B.RPS / r.A.RPS
		}
		cmp.Rounds = append(cmp.Rounds, r)
	}
	cmp.Median = median(cmp.Rounds)
	return cmp, nil
}

// runPair runs first then second.
func runPair(ctx context.Context, first, second Config) (*Result, *Result, error) {
	a, err := Run(ctx, first, nil)
	if err != nil {
		return nil, nil, err
	}
	b, err := Run(ctx, second, nil)
	if err != nil {
		return nil, nil, err
	}
	return a, b, nil
}

// median returns the median ratio of rounds, 0 if there are none.
func median(rounds []Round) float64 {
	if len(rounds) == 0 {
		return 0
	}
	rs := make([]float64, len(rounds))
	for i, r := range rounds {
		rs[i] = r.Ratio
	}
	slices.Sort(rs)
	if n := len(rs); n%2 == 0 {
		return (rs[n/2-1] + rs[n/2]) / 2
	}
	return rs[len(rs)/2]
}

// Total merges the rounds' results of one side (a true for A) into one
// Result, as if it had been a single run.
func (c *Comparison) Total(a bool) *Result {
	var t *Result
	for _, r := range c.Rounds {
		x := r.B
		if a {
			x = r.A
		}
		if t == nil {
			t = &Result{URL: x.URL, Protocol: x.Protocol, Conns: x.Conns, Streams: x.Streams, Rate: x.Rate,
				Errors: map[string]int{}, FirstErrors: map[string]error{}, Status: map[int]int{}, Latency: NewHist()}
		}
		t.add(x)
	}
	if t != nil && t.Elapsed > 0 {
		t.RPS = float64(t.Requests) / t.Elapsed.Seconds()
	}
	if t != nil && t.Sending > 0 {
		t.AchievedRate = float64(t.Due-t.Unsent) / t.Sending.Seconds()
	}
	return t
}

// add adds the counts of x to r.
func (r *Result) add(x *Result) {
	r.Requests += x.Requests
	r.Sent += x.Sent
	r.Bytes += x.Bytes
	r.Elapsed += x.Elapsed
	r.EndTimeouts += x.EndTimeouts
	r.Due += x.Due
	r.Unsent += x.Unsent
	r.Sending += x.Sending
	r.Latency.Merge(x.Latency)
	for k, n := range x.Errors {
		r.Errors[k] += n
	}
	for k, err := range x.FirstErrors {
		if r.FirstErrors[k] == nil {
			r.FirstErrors[k] = err
		}
	}
	for k, n := range x.Status {
		r.Status[k] += n
	}
}

// ComparisonSummary is the stable JSON form of a Comparison, printed by
// spacebench -json -compare: "a" and "b" are the merged Summary of each
// target over all rounds, "rounds" the per-round requests per second and
// ratio, "median_ratio" the median of the ratios (B/A).
type ComparisonSummary struct {
	A           Summary        `json:"a"`
	B           Summary        `json:"b"`
	Rounds      []RoundSummary `json:"rounds"`
	MedianRatio float64        `json:"median_ratio"`
}

// RoundSummary is one round in a ComparisonSummary.
type RoundSummary struct {
	AFirst bool    `json:"a_first"`
	RPSA   float64 `json:"rps_a"`
	RPSB   float64 `json:"rps_b"`
	Ratio  float64 `json:"ratio"`
}

// Summary returns the JSON form of c. It needs at least one round.
func (c *Comparison) Summary() ComparisonSummary {
	s := ComparisonSummary{MedianRatio: c.Median, Rounds: []RoundSummary{}}
	if len(c.Rounds) > 0 {
		s.A, s.B = c.Total(true).Summary(), c.Total(false).Summary()
	}
	for _, r := range c.Rounds {
		s.Rounds = append(s.Rounds, RoundSummary{AFirst: r.AFirst, RPSA: r.A.RPS, RPSB: r.B.RPS, Ratio: r.Ratio})
	}
	return s
}

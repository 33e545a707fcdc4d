package router

import (
	"math/rand/v2"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/router/h1"
)

// pickDyno chooses, of two up dynos drawn at random, the one with fewer
// requests in flight (SPEC.md 4.5). Dynos tried already are left out, and
// so are skipped ones while others remain.
func pickDyno(up []*dyno, tried []*dyno, rng *rand.ChaCha8, now int64) *dyno {
	var cand [2]*dyno
	n := 0
	for pass := 0; pass < 2 && n == 0; pass++ {
		// Reservoir-sample two candidates in one walk, without allocating.
		seen := 0
		for _, d := range up {
			if contains(tried, d) || (pass == 0 && d.skipUntil.Load() > now) {
				continue
			}
			seen++
			if n < 2 {
				cand[n] = d
				n++
			} else if j := int(rng.Uint64() % uint64(seen)); j < 2 {
				cand[j] = d
			}
		}
	}
	switch n {
	case 0:
		return up[int(rng.Uint64()%uint64(len(up)))]
	case 1:
		return cand[0]
	}
	if rng.Uint64()&1 == 0 {
		cand[0], cand[1] = cand[1], cand[0]
	}
	if cand[1].inflight.Load() < cand[0].inflight.Load() {
		return cand[1]
	}
	return cand[0]
}

func contains(ds []*dyno, d *dyno) bool {
	for _, x := range ds {
		if x == d {
			return true
		}
	}
	return false
}

func hasUntried(up []*dyno, tried []*dyno) bool {
	for _, d := range up {
		if !contains(tried, d) {
			return true
		}
	}
	return false
}

// dynoFault reports the codes that count against the dyno (SPEC.md 4.5):
// it closed without a response, answered garbage or went away mid-way.
func dynoFault(c errcodes.Code) bool {
	switch c {
	case errcodes.ConnectionClosedWithoutResponse, errcodes.PoorlyFormattedResponse, errcodes.ServerRequestInterrupted:
		return true
	}
	return false
}

// keepAliveTimeout returns how long a pooled connection may stay idle by
// the dyno's Keep-Alive: timeout=N (seconds), less a margin so the router
// never sends on a connection the dyno is closing (Node closes after 5 s,
// Go's net/http and most servers announce nothing); 0 when not said.
func keepAliveTimeout(resp *h1.Response) time.Duration {
	for i := range resp.Fields {
		f := &resp.Fields[i]
		if f.Known != h1.KnownKeepAlive {
			continue
		}
		n, ok := h1.KeepAliveTimeout(f.Value)
		if !ok {
			return 0
		}
		d := time.Duration(n) * time.Second
		return max(d-min(time.Second, d/4), time.Millisecond)
	}
	return 0
}

// penalize passes the dyno over for dynoSkip after a failure: a refused
// or timed-out connect, H13, H17 or H18 (SPEC.md 4.5, 4.6).
func (d *dyno) penalize() { d.skipUntil.Store(time.Now().Add(dynoSkip).UnixNano()) }

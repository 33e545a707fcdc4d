package router

import (
	"errors"
	"math/rand/v2"
	"time"

	"github.com/spacerouter/spacerouter/errcodes"
)

// maxTries bounds the connect attempts of one request (SPEC.md 4.6).
const maxTries = 3

// proxy forwards the admitted request to a dyno of its app and relays the
// response (SPEC.md 4.5–4.9).
func (ex *exchange) proxy() error {
	a := ex.app
	l := &ex.line
	var tried [maxTries]*dyno
	var again *dyno // the dyno whose pooled connection proved dead
	// The first try comes microseconds after the request arrived: its time
	// stands for now in the skip and pool idle checks.
	now := ex.start
	for try := 0; ; now = time.Now() {
		d := again
		if d == nil {
			d = pickDyno(a.up, tried[:try], ex.sc.rng, now.UnixNano())
		}
		ex.d = d
		l.Dyno = d.name
		var dc *dynoConn
		if again == nil {
			dc = d.pool.get(now, ex.sp.cfg.Timeouts.DynoKeepalive)
		}
		again = nil
		if dc != nil {
			l.Connect = 0
		} else {
			dialStart := time.Now()
			var err error
			dc, err = d.pool.dial(ex.rt.stopCtx, a.to.Connect, dynoReadBuf)
			l.Connect = time.Since(dialStart)
			if err != nil {
				// A dyno that cannot be connected to, or whose certificate
				// is rejected, is passed over while others are fine (SPEC.md
				// 4.5, 12.4): a bad certificate fails every request until
				// the dyno is fixed.
				d.penalize()
				tried[try] = d
				try++
				if !certRejected(err) && try < maxTries && hasUntried(a.up, tried[:try]) {
					continue
				}
				return dialFailure(err)
			}
		}
		d.inflight.Add(1)
		retry, err := ex.forward(dc)
		d.inflight.Add(-1)
		if e, ok := errors.AsType[*errcodes.Error](err); ok && dynoFault(e.Code) {
			// A dyno that fails at once must not attract the traffic its
			// short requests free up (SPEC.md 4.5).
			d.penalize()
		}
		if !retry {
			return err
		}
		// The pooled connection was dead before any byte of the request
		// was written: the same dyno on a fresh connection, in silence
		// (SPEC.md 4.6); this is no new try.
		again = d
	}
}

// dialFailure classifies a failed connect: H43 with its cause for a dyno
// certificate rejected, H19 for a timeout (TLS handshake included), else
// H21.
func dialFailure(err error) error {
	if ce, ok := errors.AsType[*dynoCertError](err); ok {
		return errcodes.New(ce.code, err)
	}
	code := errcodes.BackendConnectionRefused
	if de, ok := errors.AsType[*dialError](err); ok && de.timeout {
		code = errcodes.BackendConnectionTimeout
	}
	return errcodes.New(code, err)
}

// certRejected reports a connect that failed on the dyno's certificate
// (H43): the request is not tried on another dyno (SPEC.md 12.4), so a
// certificate problem is answered and logged where it is, not hidden by a
// retry that may succeed.
func certRejected(err error) bool {
	_, ok := errors.AsType[*dynoCertError](err)
	return ok
}

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

// penalize passes the dyno over for dynoSkip after a failure: a refused
// or timed-out connect, a rejected certificate (H43), H13, H17 or H18
// (SPEC.md 4.5, 4.6).
func (d *dyno) penalize() { d.skipUntil.Store(time.Now().Add(dynoSkip).UnixNano()) }

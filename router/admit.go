package router

import "github.com/spacerouter/spacerouter/errcodes"

// admit counts the request in flight for its app and for its client
// address, or refuses it when either has too many (SPEC.md 4.4 and
// limits.requests_per_client): H11 at once, no queue.
func (ex *exchange) admit() error {
	a := ex.app
	if n := a.inflight.Add(1); n > a.limit {
		a.inflight.Add(-1)
		return errcodes.New(errcodes.BacklogTooDeep, nil)
	}
	if !a.clients.add(ex.peer, ex.sp.cfg.Limits.RequestsPerClient) {
		a.inflight.Add(-1)
		return errcodes.New(errcodes.BacklogTooDeep, errClientShare)
	}
	a.m.inFlight.Inc()
	return nil
}

// release undoes admit.
func (ex *exchange) release() {
	a := ex.app
	a.inflight.Add(-1)
	a.clients.done(ex.peer)
	a.m.inFlight.Dec()
}

package h2

import "time"

// budget counts frames that cost the server work without giving the client
// a response — resets of running streams, PINGs, SETTINGS, empty frames,
// PRIORITY frames — the way production servers bound them after
// CVE-2023-44487 (rapid reset) and the 2019 HTTP/2 flood advisories
// (CVE-2019-9512/9515/9518): each such frame adds one to a debt that
// decays with time and shrinks with every completed request; a debt over
// the limit ends the connection with GOAWAY(ENHANCE_YOUR_CALM).
//
// A budget is used under Conn.mu (resets come from the reader, completed
// requests from handlers) or by the reader alone.
type budget struct {
	debt float64
	last time.Time
}

// Budget parameters: a client may spend budgetLimit frames in excess of
// its completed requests in a burst, and budgetRate a second for ever.
var (
	budgetLimit = 100.0
	budgetRate  = 10.0
)

// spend adds n to the debt at time now and reports whether the client is
// still within its budget.
func (b *budget) spend(now time.Time, n float64) bool {
	if !b.last.IsZero() {
		b.debt = max(0, b.debt-now.Sub(b.last).Seconds()*budgetRate)
	}
	b.last = now
	b.debt += n
	return b.debt <= budgetLimit
}

// refund forgives one unit: a request completed.
func (b *budget) refund() {
	b.debt = max(0, b.debt-1)
}

// abuseBudgets are the reader's flood budgets (one per kind of frame, so
// the OnAbuse reason names it).
type abuseBudgets struct {
	ping, settings, empty, priority budget
}

// refund forgives one unit of each: a request completed.
func (a *abuseBudgets) refund() {
	a.ping.refund()
	a.settings.refund()
	a.empty.refund()
	a.priority.refund()
}

// maxQueuedControl bounds the control frames (SETTINGS and PING
// acknowledgements, WINDOW_UPDATE, RST_STREAM) queued and not yet written:
// a client that provokes them and never reads is cut (as Go's
// maxQueuedControlFrames).
const maxQueuedControl = 10000

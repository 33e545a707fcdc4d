package bench

import (
	"encoding/json"
	"maps"
	"strconv"
	"time"
)

// Transport error kinds, the keys of Result.Errors.
const (
	// KindConnect: the TCP connection could not be made (refused, dial
	// timeout, unreachable).
	KindConnect = "connect"
	// KindTLS: the TLS handshake failed (certificate, ALPN without h2 for
	// HTTP/2, handshake timeout).
	KindTLS = "tls"
	// KindTimeout: no complete response within Config.Timeout.
	KindTimeout = "timeout"
	// KindReset: the peer reset or closed the connection (or the HTTP/2
	// stream) before the response was complete.
	KindReset = "reset"
	// KindWrite: sending the request failed for another reason.
	KindWrite = "write"
	// KindRead: reading the response failed for another reason.
	KindRead = "read"
	// KindProtocol: the response was not valid HTTP.
	KindProtocol = "protocol"
)

// Kinds lists every error kind in report order.
var Kinds = []string{KindConnect, KindTLS, KindTimeout, KindReset, KindWrite, KindRead, KindProtocol}

// Result is what one Run measured.
type Result struct {
	// URL is the target.
	URL string
	// Protocol is "HTTP/1.1" or "HTTP/2".
	Protocol string
	// Conns, Streams and Rate echo the configuration (Streams is 1 for
	// HTTP/1.1; Rate is 0 for the closed loop).
	Conns, Streams int
	// Rate is the requested open-loop rate in requests per second, 0 for the
	// closed loop.
	Rate float64
	// Requests is the number of complete responses, whatever their status.
	Requests int64
	// Sent is the number of requests started: complete responses plus
	// transport errors (and, if the run was canceled, the requests it cut
	// off).
	Sent int64
	// Errors counts transport errors by kind (see KindConnect and the
	// others); every kind is present, most with 0.
	Errors map[string]int
	// FirstErrors holds the first transport error of each kind that
	// occurred, for its reason (a TLS error's "x509: ...").
	FirstErrors map[string]error
	// EndTimeouts is the part of Errors[KindTimeout] that were requests in
	// flight when Config.Duration ended which got no complete response
	// within Config.Timeout.
	EndTimeouts int
	// Status counts responses by status code.
	Status map[int]int
	// Bytes is the total of response body bytes received.
	Bytes int64
	// Elapsed is the wall time of the run, from the start until the last
	// request completed or timed out: at most Config.Duration plus
	// Config.Timeout when Duration is set.
	Elapsed time.Duration
	// RPS is Requests divided by Elapsed.
	RPS float64
	// Latency holds the latency of every complete response: from send to
	// the end of the body in the closed loop, from the due time in the open
	// loop.
	Latency *Hist
	// Due, Unsent, Sending and AchievedRate describe the open loop (all
	// zero in the closed loop). Due is the number of requests the schedule
	// made due; Unsent those of them never sent because every connection
	// (or stream) was busy until Duration ended. Sending is the time spent
	// sending: from the start to the last send plus one interval 1/Rate,
	// and at least Duration. AchievedRate is the requests sent per second
	// of Sending: below Rate when the target or Conns could not keep up.
	Due, Unsent  int64
	Sending      time.Duration
	AchievedRate float64
}

// result merges the workers' counts into a Result; sched is the open-loop
// schedule's log.
func (r *loadRun) result(workers []*worker, sched sendLog, elapsed time.Duration) *Result {
	res := &Result{
		URL:         r.cfg.URL,
		Protocol:    "HTTP/1.1",
		Conns:       r.cfg.Conns,
		Streams:     1,
		Rate:        r.cfg.Rate,
		Errors:      map[string]int{},
		FirstErrors: map[string]error{},
		Status:      map[int]int{},
		Bytes:       r.bytes.Load(),
		Elapsed:     elapsed,
		Latency:     NewHist(),
	}
	if r.cfg.HTTP2 {
		res.Protocol, res.Streams = "HTTP/2", r.cfg.Streams
	}
	for _, k := range Kinds {
		res.Errors[k] = 0
	}
	for _, w := range workers {
		res.Sent += w.sent
		res.EndTimeouts += w.endTimeouts
		for k, n := range w.errors {
			res.Errors[k] += n
		}
		for k, err := range w.first {
			if res.FirstErrors[k] == nil {
				res.FirstErrors[k] = err
			}
		}
		for s, n := range w.status {
			res.Status[s] += n
		}
	}
	for i := range r.shards {
		res.Latency.Merge(r.shards[i].h)
	}
	res.Requests = res.Latency.Count()
	if elapsed > 0 {
		res.RPS = float64(res.Requests) / elapsed.Seconds()
	}
	if r.cfg.Rate > 0 {
		res.Due, res.Unsent, res.Sending = sched.due, sched.due-sched.sent, sched.window
		if res.Sending > 0 {
			res.AchievedRate = float64(sched.sent) / res.Sending.Seconds()
		}
	}
	return res
}

// ErrorCount returns the total of transport errors of every kind.
func (r *Result) ErrorCount() int {
	n := 0
	for _, c := range r.Errors {
		n += c
	}
	return n
}

// StatusOK reports whether a response with status code counts as a
// success: 2xx or 3xx, as wrk counts (it reports the rest as "Non-2xx or
// 3xx responses").
func StatusOK(code int) bool { return code >= 200 && code < 400 }

// StatusErrors returns the number of responses whose status is not 2xx or
// 3xx.
func (r *Result) StatusErrors() int {
	n := 0
	for code, c := range r.Status {
		if !StatusOK(code) {
			n += c
		}
	}
	return n
}

// AllFailed reports whether no request succeeded: every one ended in a
// transport error or a status other than 2xx or 3xx, or none was sent.
func (r *Result) AllFailed() bool {
	return r.Requests == int64(r.StatusErrors())
}

// Summary is the stable, documented JSON form of a Result, printed by
// spacebench -json. Fields are only ever added, never renamed or removed.
//
//	{
//	  "url": "http://127.0.0.1:8080/",
//	  "protocol": "HTTP/1.1",          // or "HTTP/2"
//	  "mode": "closed",                // or "open" (fixed rate)
//	  "conns": 10, "streams": 1,
//	  "rate": 0,                       // requested req/s, 0 in the closed loop
//	  "requests": 123456,              // complete responses, any status
//	  "elapsed_s": 10.0,               // until the last request completed or timed out
//	  "rps": 12345.6,
//	  "bytes": 1234560,                // response body bytes
//	  "latency_ms": {"min": .., "mean": .., "p50": .., "p90": .., "p99": .., "p999": .., "max": ..},
//	  "status": {"200": 123456},       // by status code
//	  "errors": {"connect": 0, "tls": 0, "timeout": 0, "reset": 0, "write": 0, "read": 0, "protocol": 0},
//	  "error_count": 0,
//	  "sent": 123456,                  // requests started: responses + transport errors
//	  "status_errors": 0,              // responses whose status is not 2xx or 3xx
//	  "all_failed": false,             // no 2xx or 3xx response at all (spacebench exits 3)
//	  "end_timeouts": 0,               // of errors.timeout: in flight when the duration ended
//	  "first_errors": {},              // kind → the first error's reason, e.g. {"tls": "tls: failed to verify certificate: x509: ..."}
//	  "due": 0,                        // open loop: requests due by the schedule
//	  "unsent": 0,                     // open loop: due but never sent (every connection busy)
//	  "achieved_rate": 0               // open loop: requests sent per second
//	}
type Summary struct {
	URL          string            `json:"url"`
	Protocol     string            `json:"protocol"`
	Mode         string            `json:"mode"`
	Conns        int               `json:"conns"`
	Streams      int               `json:"streams"`
	Rate         float64           `json:"rate"`
	Requests     int64             `json:"requests"`
	ElapsedS     float64           `json:"elapsed_s"`
	RPS          float64           `json:"rps"`
	Bytes        int64             `json:"bytes"`
	LatencyMS    LatencySummary    `json:"latency_ms"`
	Status       map[string]int    `json:"status"`
	Errors       map[string]int    `json:"errors"`
	ErrorCount   int               `json:"error_count"`
	Sent         int64             `json:"sent"`
	StatusErrors int               `json:"status_errors"`
	AllFailed    bool              `json:"all_failed"`
	EndTimeouts  int               `json:"end_timeouts"`
	FirstErrors  map[string]string `json:"first_errors"`
	Due          int64             `json:"due"`
	Unsent       int64             `json:"unsent"`
	AchievedRate float64           `json:"achieved_rate"`
}

// LatencySummary is the latency part of a Summary, in milliseconds.
// P999 is the 99.9th percentile.
type LatencySummary struct {
	Min  float64 `json:"min"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// Summary returns the JSON form of r.
func (r *Result) Summary() Summary {
	s := Summary{
		URL:        r.URL,
		Protocol:   r.Protocol,
		Mode:       "closed",
		Conns:      r.Conns,
		Streams:    r.Streams,
		Rate:       r.Rate,
		Requests:   r.Requests,
		ElapsedS:   r.Elapsed.Seconds(),
		RPS:        r.RPS,
		Bytes:      r.Bytes,
		LatencyMS:  latencySummary(r.Latency),
		Status:     make(map[string]int, len(r.Status)),
		Errors:     maps.Clone(r.Errors),
		ErrorCount: r.ErrorCount(),

		Sent:         r.Sent,
		StatusErrors: r.StatusErrors(),
		AllFailed:    r.AllFailed(),
		EndTimeouts:  r.EndTimeouts,
		FirstErrors:  make(map[string]string, len(r.FirstErrors)),
		Due:          r.Due,
		Unsent:       r.Unsent,
		AchievedRate: r.AchievedRate,
	}
	for k, err := range r.FirstErrors {
		s.FirstErrors[k] = err.Error()
	}
	if r.Rate > 0 {
		s.Mode = "open"
	}
	for code, n := range r.Status {
		s.Status[strconv.Itoa(code)] = n
	}
	return s
}

// latencySummary reads the percentiles of h in milliseconds.
func latencySummary(h *Hist) LatencySummary {
	return LatencySummary{
		Min:  ms(h.Min()),
		Mean: ms(h.Mean()),
		P50:  ms(h.Percentile(50)),
		P90:  ms(h.Percentile(90)),
		P99:  ms(h.Percentile(99)),
		P999: ms(h.Percentile(99.9)),
		Max:  ms(h.Max()),
	}
}

// ms converts d to milliseconds, rounded to the microsecond so the JSON stays
// short without losing what the histogram resolves.
func ms(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond)) / float64(time.Millisecond)
}

// JSON returns the indented JSON of r.Summary() followed by a newline.
func (r *Result) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r.Summary(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

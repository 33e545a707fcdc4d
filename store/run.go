package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/spacerouter/spacerouter/config"
	"github.com/spacerouter/spacerouter/logging"
)

// Run applies the space's keys until ctx ends, then revokes this router's
// status lease and returns nil. At start it reads every key at one
// revision and hands the config over; while etcd does not answer, it
// hands over the cache file's config, if any, and retries with backoff.
// Then it watches the prefix from the next revision: a burst of changes
// is handed over once (Options.Settle, Options.Coalesce). An outage
// keeps the last config: the watch resumes from the last revision when
// etcd is back, and a compacted revision (or an etcd whose revision went
// back) makes a full read. Run may be called once at a time.
func (s *Store) Run(ctx context.Context) (err error) {
	if !s.runMu.TryLock() {
		return errors.New("store: Run is already running")
	}
	defer s.runMu.Unlock()
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("store loop panicked", zap.Any(logging.KeyError, p), zap.Stack("stack"))
			err = fmt.Errorf("store loop panicked: %v", p)
		}
	}()
	defer s.leave(ctx)
	s.m.connected.Set(0)
	full := true
	if err := s.fullRead(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		s.disconnected(err)
		s.fromCache(ctx)
	} else {
		full = false
	}
	backoff := s.opts.BackoffMin
	for ctx.Err() == nil {
		if full {
			if err := s.fullRead(ctx); err != nil {
				s.disconnected(err)
				backoff = s.wait(ctx, backoff)
				continue
			}
			backoff = s.opts.BackoffMin
		}
		var healthy bool
		full, healthy = s.watch(ctx)
		if healthy {
			backoff = s.opts.BackoffMin
		}
		if !full && ctx.Err() == nil {
			backoff = s.wait(ctx, backoff)
		}
	}
	return nil
}

// wait sleeps for d or until ctx ends, and returns the next backoff.
func (s *Store) wait(ctx context.Context, d time.Duration) time.Duration {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return min(2*d, s.opts.BackoffMax)
}

// connectedNow records that etcd answered.
func (s *Store) connectedNow() {
	if !s.up {
		s.up = true
		s.m.connected.Set(1)
		s.log.Info("etcd answers", zap.Strings("endpoints", s.etcd.Endpoints))
	}
}

// disconnected records that etcd did not answer, logging the start of an
// outage once.
func (s *Store) disconnected(err error) {
	s.m.connected.Set(0)
	if s.up || !s.downLogged {
		s.log.Warn("etcd does not answer: serving the last config and retrying with backoff",
			zap.Strings("endpoints", s.etcd.Endpoints), zap.Error(err))
	}
	s.up, s.downLogged = false, true
}

// relevant reports whether the key (without prefix) is part of the
// config: routers/ (the routers' own status) and acme/ are not.
func relevant(key string) bool {
	return !strings.HasPrefix(key, config.KeyRouters) && !strings.HasPrefix(key, config.KeyACME)
}

// pageSize is how many keys one read of a full read returns.
const pageSize = 500

// readAll reads every config key under the prefix at one revision, in
// pages, each bounded by dial_timeout.
func (s *Store) readAll(ctx context.Context) (map[string]config.KV, int64, error) {
	kvs := map[string]config.KV{}
	end := clientv3.GetPrefixRangeEnd(s.prefix)
	from, rev := s.prefix, int64(0)
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(pageSize)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		cctx, cancel := s.timeout(ctx)
		resp, err := s.cli.Get(cctx, from, opts...)
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("reading the keys under %s: %w", s.prefix, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			key := strings.TrimPrefix(string(kv.Key), s.prefix)
			if relevant(key) {
				kvs[key] = config.KV{Key: key, Value: string(kv.Value), ModRevision: kv.ModRevision}
			}
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return kvs, rev, nil
		}
		from = string(resp.Kvs[len(resp.Kvs)-1].Key) + "\x00"
	}
}

// fullRead reads every key and hands the config over.
func (s *Store) fullRead(ctx context.Context) error {
	kvs, rev, err := s.readAll(ctx)
	if err != nil {
		return err
	}
	s.connectedNow()
	if rev < s.rev {
		s.log.Warn("etcd's revision went back (a restored or new cluster): the keys are read again",
			zap.Int64(logging.KeyRevision, rev), zap.Int64("last_revision", s.rev))
	}
	s.kvs, s.rev = kvs, rev
	s.apply(ctx, Applied{FullRead: true})
	return nil
}

// errWatchEnded is why the store is disconnected when its watch ends
// without an error of its own.
var errWatchEnded = errors.New("the watch of the prefix ended: etcd went away or lost its leader")

// probeResult is the outcome of one health probe.
type probeResult struct {
	rev, since int64
	err        error
}

// probe reads the count of one key: it answers only while etcd has a
// leader and the connection works, and gives etcd's revision. since is
// the store's revision when the probe started: the watch may move s.rev
// on while the probe waits, so only a revision below since means etcd
// went back.
func (s *Store) probe(ctx context.Context, since int64, out chan<- probeResult) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(ctx, s.prefix+config.KeySpace, clientv3.WithCountOnly())
	r := probeResult{err: err, since: since}
	if err == nil {
		r.rev = resp.Header.Revision
	}
	out <- r
}

// watch follows the prefix from the revision after s.rev, applying
// bursts of changes, until ctx ends, the watch fails or a full read is
// needed. It reports whether a full read is needed and whether etcd
// answered at all.
func (s *Store) watch(ctx context.Context) (full, healthy bool) {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	defer cancel()
	// Watch blocks until etcd answers; meanwhile the loop goes on
	// probing, so an outage is seen (and counted) at once.
	watches := make(chan clientv3.WatchChan, 1)
	go func() {
		watches <- s.cli.Watch(wctx, s.prefix, clientv3.WithPrefix(), clientv3.WithRev(s.rev+1))
	}()
	var wch clientv3.WatchChan // nil until Watch returns
	flush := time.NewTimer(time.Hour)
	flush.Stop()
	defer flush.Stop()
	health := time.NewTicker(s.opts.HealthInterval)
	defer health.Stop()
	probes := make(chan probeResult, 1)
	probing := false
	if s.pending > 0 {
		// Changes watched before the last watch ended, not applied yet.
		flush.Reset(s.opts.Settle)
	}
	for {
		select {
		case <-ctx.Done():
			return false, healthy
		case wch = <-watches:
		case resp, open := <-wch:
			if !open {
				// The stream to etcd broke (with WithRequireLeader, also
				// when etcd lost its leader). The next Watch waits for
				// etcd to answer again.
				if ctx.Err() == nil {
					s.disconnected(errWatchEnded)
				}
				return false, healthy
			}
			if resp.CompactRevision != 0 {
				s.log.Info("the watched revision was compacted: the keys are read again",
					zap.Int64(logging.KeyRevision, s.rev+1), zap.Int64("compact_revision", resp.CompactRevision))
				return true, true
			}
			if err := resp.Err(); err != nil {
				s.disconnected(err)
				return false, healthy
			}
			s.connectedNow()
			healthy = true
			n := s.events(resp.Events)
			if resp.Header.Revision > s.rev {
				s.rev = resp.Header.Revision
			}
			if n > 0 {
				flush.Reset(s.nextApply(n))
			}
		case <-flush.C:
			s.apply(ctx, Applied{Changes: s.pending})
		case <-health.C:
			if !probing {
				probing = true
				go s.probe(ctx, s.rev, probes)
			}
		case r := <-probes:
			probing = false
			if r.err != nil {
				s.disconnected(r.err)
				continue
			}
			s.connectedNow()
			healthy = true
			if r.rev < r.since {
				s.log.Warn("etcd's revision went back (a restored or new cluster): the keys are read again",
					zap.Int64(logging.KeyRevision, r.rev), zap.Int64("last_revision", r.since))
				return true, true
			}
			s.writeStatus(ctx)
		}
	}
}

// nextApply counts n more pending changes and returns how long to wait
// before applying them: Settle after the last change, but no later than
// Coalesce after the first pending one, and no sooner than Coalesce after
// the last apply. So a lone change waits Settle, a burst is applied once,
// and a stream of changes at most once per Coalesce.
func (s *Store) nextApply(n int) time.Duration {
	now := time.Now()
	if s.pending == 0 {
		s.firstPending = now
	}
	s.pending += n
	lo := s.lastApply.Add(s.opts.Coalesce)
	hi := s.firstPending.Add(s.opts.Coalesce)
	if hi.Before(lo) {
		hi = lo
	}
	at := now.Add(s.opts.Settle)
	if at.Before(lo) {
		at = lo
	}
	if at.After(hi) {
		at = hi
	}
	return max(0, at.Sub(now))
}

// events applies watched events to s.kvs and returns how many were
// config keys.
func (s *Store) events(evs []*clientv3.Event) int {
	n := 0
	for _, ev := range evs {
		key := strings.TrimPrefix(string(ev.Kv.Key), s.prefix)
		if !relevant(key) {
			continue
		}
		n++
		switch ev.Type {
		case clientv3.EventTypePut:
			s.kvs[key] = config.KV{Key: key, Value: string(ev.Kv.Value), ModRevision: ev.Kv.ModRevision}
		case clientv3.EventTypeDelete:
			delete(s.kvs, key)
		}
	}
	return n
}

// apply builds the config of s.kvs, hands it over, and records it: the
// metrics, the log, the cache file and the status under routers/<id>.
func (s *Store) apply(ctx context.Context, a Applied) {
	kvs := make([]config.KV, 0, len(s.kvs))
	for _, kv := range s.kvs {
		kvs = append(kvs, kv)
	}
	prev := s.shared
	sh := config.BuildShared(s.local, kvs, prev)
	s.shared = sh
	if !a.FromCache {
		a.Revision = s.rev
	}
	a.Refused, a.Clients = sh.Refused, sh.Clients
	s.applied, s.pending, s.lastApply = a.Revision, 0, time.Now()
	s.m.revision.Set(float64(a.Revision))
	s.m.refused.Set(float64(len(sh.Refused)))
	s.logApplied(prev, sh, a)
	if s.opts.OnSnapshot != nil {
		s.opts.OnSnapshot(sh.Config, a)
	}
	if a.FromCache {
		return
	}
	if s.cache != "" {
		if err := writeCache(s.cache, a.Revision, sh); err != nil {
			s.log.Warn("writing the cache file", zap.String(logging.KeyFile, s.cache), zap.Error(err))
		}
	}
	s.writeStatus(ctx)
}

// logApplied logs an applied config, and each refusal that is new.
func (s *Store) logApplied(prev, sh *config.Shared, a Applied) {
	before := map[string]string{}
	if prev != nil {
		for _, r := range prev.Refused {
			before[r.Key] = r.Problem
		}
	}
	for _, r := range sh.Refused {
		if before[r.Key] != r.Problem {
			s.log.Warn("store key refused: its last good value, if any, stays in force",
				zap.String(logging.KeyKey, keyFileName(r.Key)), zap.String(logging.KeyProblem, r.Problem))
		}
	}
	level := zap.DebugLevel
	if a.FullRead || a.FromCache {
		level = zap.InfoLevel
	}
	if ce := s.log.Check(level, "store config applied"); ce != nil {
		ce.Write(zap.Int64(logging.KeyRevision, a.Revision), zap.Int(logging.KeyCount, len(sh.Config.Apps)),
			zap.Int(logging.KeyRefused, len(sh.Refused)), zap.Bool("full_read", a.FullRead),
			zap.Bool("from_cache", a.FromCache), zap.Int("changes", a.Changes))
	}
}

// keyFileName names a key as problems do: etcd:apps/shop.
func keyFileName(key string) string { return "etcd:" + key }

// fromCache hands over the config of the cache file, when there is one.
func (s *Store) fromCache(ctx context.Context) {
	if s.cache == "" {
		s.log.Warn("etcd does not answer and store.cache_file is not set: nothing is served until etcd answers")
		return
	}
	c, err := readCache(s.cache)
	if err != nil {
		s.log.Warn("etcd does not answer and the cache file cannot be read: nothing is served until etcd answers",
			zap.String(logging.KeyFile, s.cache), zap.Error(err))
		return
	}
	s.kvs = map[string]config.KV{}
	for _, kv := range c.Keys {
		s.kvs[kv.Key] = kv
	}
	s.apply(ctx, Applied{FromCache: true, Revision: c.Revision})
}

package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"sync"

	"github.com/caddyserver/certmagic"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/concurrency"

	"github.com/spacerouter/spacerouter/config"
)

// ACMEStorage is certmagic's storage on etcd, under <prefix>acme/ (SPEC.md
// section 14): the ACME accounts, certificates and keys every router of
// the space shares, and the locks that make one router order a domain
// while the others wait and then load what it stored. A lock is an etcd
// mutex on a session lease of Options.LeaseTTL, so the lock of a router
// that died or lost etcd ends with its lease. Values are stored as given;
// etcd keeps no modification time, so Stat's Modified is zero.
type ACMEStorage struct {
	s *Store

	// mu guards session and locks.
	mu      sync.Mutex
	session *concurrency.Session
	locks   map[string]*concurrency.Mutex
}

var (
	_ certmagic.Storage   = (*ACMEStorage)(nil)
	_ certmagic.TryLocker = (*ACMEStorage)(nil)
)

// acmeLocks is where the locks live, under the acme keys as certmagic's
// file storage keeps them (a "locks" directory beside "certificates").
const acmeLocks = "locks/"

// ACMEStorage returns the store's certmagic storage. Close ends its locks.
func (s *Store) ACMEStorage() *ACMEStorage {
	s.acmeOnce.Do(func() { s.acme = &ACMEStorage{s: s, locks: map[string]*concurrency.Mutex{}} })
	return s.acme
}

// key is the etcd key of a certmagic key.
func (a *ACMEStorage) key(k string) string {
	return a.s.prefix + config.KeyACME + strings.Trim(k, "/")
}

// Store puts value at key.
func (a *ACMEStorage) Store(ctx context.Context, key string, value []byte) error {
	cctx, cancel := a.s.timeout(ctx)
	defer cancel()
	if _, err := a.s.cli.Put(cctx, a.key(key), string(value)); err != nil {
		return fmt.Errorf("storing %s in etcd: %w", key, err)
	}
	return nil
}

// Load returns the value at key, or an error wrapping fs.ErrNotExist.
func (a *ACMEStorage) Load(ctx context.Context, key string) ([]byte, error) {
	cctx, cancel := a.s.timeout(ctx)
	defer cancel()
	resp, err := a.s.cli.Get(cctx, a.key(key))
	if err != nil {
		return nil, fmt.Errorf("loading %s from etcd: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return nil, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
	}
	return resp.Kvs[0].Value, nil
}

// Delete removes key and every key under it, as certmagic's file storage
// removes a directory; a key that is not there is no error.
func (a *ACMEStorage) Delete(ctx context.Context, key string) error {
	cctx, cancel := a.s.timeout(ctx)
	defer cancel()
	k := a.key(key)
	_, err := a.s.cli.Txn(cctx).Then(clientv3.OpDelete(k), clientv3.OpDelete(k+"/", clientv3.WithPrefix())).Commit()
	if err != nil {
		return fmt.Errorf("deleting %s from etcd: %w", key, err)
	}
	return nil
}

// Exists reports whether key is a value or has values under it.
func (a *ACMEStorage) Exists(ctx context.Context, key string) bool {
	_, err := a.Stat(ctx, key)
	return err == nil
}

// Stat describes key: a value (IsTerminal, Size) or a directory of values;
// an error wrapping fs.ErrNotExist when it is neither.
func (a *ACMEStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	cctx, cancel := a.s.timeout(ctx)
	defer cancel()
	k := a.key(key)
	resp, err := a.s.cli.Txn(cctx).Then(clientv3.OpGet(k), clientv3.OpGet(k+"/", clientv3.WithPrefix(), clientv3.WithCountOnly())).Commit()
	if err != nil {
		return certmagic.KeyInfo{}, fmt.Errorf("reading %s from etcd: %w", key, err)
	}
	if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
		return certmagic.KeyInfo{Key: key, Size: int64(len(kvs[0].Value)), IsTerminal: true}, nil
	}
	if resp.Responses[1].GetResponseRange().Count > 0 {
		return certmagic.KeyInfo{Key: key}, nil
	}
	return certmagic.KeyInfo{}, fmt.Errorf("%s: %w", key, fs.ErrNotExist)
}

// List returns the keys under path: its direct children (values and
// directories), or with recursive every value under it, in key order; an
// error wrapping fs.ErrNotExist when there is none.
func (a *ACMEStorage) List(ctx context.Context, path string, recursive bool) ([]string, error) {
	cctx, cancel := a.s.timeout(ctx)
	defer cancel()
	dir := strings.Trim(path, "/")
	from := a.s.prefix + config.KeyACME
	if dir != "" {
		from += dir + "/"
	}
	resp, err := a.s.cli.Get(cctx, from, clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		return nil, fmt.Errorf("listing %s in etcd: %w", path, err)
	}
	var out []string
	seen := map[string]bool{}
	for _, kv := range resp.Kvs {
		rest := strings.TrimPrefix(string(kv.Key), from)
		if dir == "" && strings.HasPrefix(rest, acmeLocks) {
			continue
		}
		if !recursive {
			rest, _, _ = strings.Cut(rest, "/")
		}
		k := rest
		if dir != "" {
			k = dir + "/" + rest
		}
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", path, fs.ErrNotExist)
	}
	slices.Sort(out)
	return out, nil
}

// sessionLocked returns the live session of the locks, making one when
// there is none or its lease ended.
func (a *ACMEStorage) sessionLocked() (*concurrency.Session, error) {
	if a.session != nil {
		select {
		case <-a.session.Done():
			a.session = nil
		default:
			return a.session, nil
		}
	}
	ttl := int((a.s.opts.LeaseTTL + 999_999_999) / 1_000_000_000)
	sess, err := concurrency.NewSession(a.s.cli, concurrency.WithTTL(ttl))
	if err != nil {
		return nil, fmt.Errorf("starting the etcd session of the ACME locks: %w", err)
	}
	a.session = sess
	return sess, nil
}

// mutex returns a new mutex for the lock name on the live session.
func (a *ACMEStorage) mutex(name string) (*concurrency.Mutex, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, held := a.locks[name]; held {
		// certmagic never locks a name twice in one process; a second
		// Lock would wait for itself.
		return nil, fmt.Errorf("lock %s is already held by this router", name)
	}
	sess, err := a.sessionLocked()
	if err != nil {
		return nil, err
	}
	return concurrency.NewMutex(sess, a.key(acmeLocks+name)), nil
}

// Lock takes the lock name, waiting while another router holds it, until
// ctx ends.
func (a *ACMEStorage) Lock(ctx context.Context, name string) error {
	m, err := a.mutex(name)
	if err != nil {
		return err
	}
	if err := m.Lock(ctx); err != nil {
		return fmt.Errorf("taking lock %s: %w", name, err)
	}
	a.hold(name, m)
	return nil
}

// TryLock takes the lock name if no router holds it, and reports whether
// it did.
func (a *ACMEStorage) TryLock(ctx context.Context, name string) (bool, error) {
	m, err := a.mutex(name)
	if err != nil {
		return false, err
	}
	cctx, cancel := a.s.timeout(ctx)
	defer cancel()
	switch err := m.TryLock(cctx); {
	case errors.Is(err, concurrency.ErrLocked):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("trying lock %s: %w", name, err)
	}
	a.hold(name, m)
	return true, nil
}

// hold records a lock taken.
func (a *ACMEStorage) hold(name string, m *concurrency.Mutex) {
	a.mu.Lock()
	a.locks[name] = m
	a.mu.Unlock()
}

// Unlock releases the lock name taken by Lock or TryLock.
func (a *ACMEStorage) Unlock(ctx context.Context, name string) error {
	a.mu.Lock()
	m, ok := a.locks[name]
	delete(a.locks, name)
	a.mu.Unlock()
	if !ok {
		return fmt.Errorf("unlocking %s: not locked by this router", name)
	}
	cctx, cancel := a.s.timeout(ctx)
	defer cancel()
	if err := m.Unlock(cctx); err != nil {
		return fmt.Errorf("unlocking %s: %w", name, err)
	}
	return nil
}

// close ends the session, releasing every lock still held.
func (a *ACMEStorage) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.session != nil {
		_ = a.session.Close()
		a.session = nil
	}
	clear(a.locks)
}

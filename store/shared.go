package store

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/spacerouter/spacerouter/config"
)

// list reads the keys under the prefix that start with under ("" for
// all), names without the prefix, in key order.
func (s *Store) list(ctx context.Context, under string) ([]config.KV, error) {
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.prefix+under, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("reading %s%s: %w", s.prefix, under, err)
	}
	out := make([]config.KV, 0, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out = append(out, config.KV{Key: strings.TrimPrefix(string(kv.Key), s.prefix), Value: string(kv.Value), ModRevision: kv.ModRevision})
	}
	return out, nil
}

// Get returns the key named key (without the prefix) and, when key ends
// in "/" or is "", every key under it, in key order. A key that is not
// there gives none.
func (s *Store) Get(ctx context.Context, key string) ([]config.KV, error) {
	if key == "" || strings.HasSuffix(key, "/") {
		return s.list(ctx, key)
	}
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Get(cctx, s.prefix+key)
	if err != nil {
		return nil, fmt.Errorf("reading %s%s: %w", s.prefix, key, err)
	}
	out := []config.KV{}
	for _, kv := range resp.Kvs {
		out = append(out, config.KV{Key: key, Value: string(kv.Value), ModRevision: kv.ModRevision})
	}
	return out, nil
}

// put writes one key and returns its revision.
func (s *Store) put(ctx context.Context, key, value string) (int64, error) {
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Put(cctx, s.prefix+key, value)
	if err != nil {
		return 0, fmt.Errorf("writing %s%s: %w", s.prefix, key, err)
	}
	return resp.Header.Revision, nil
}

// SetMaintenance writes the admin API's maintenance switch of app,
// maintenance/<app>, which every router of the space applies over the
// app's own maintenance. It returns the revision written.
func (s *Store) SetMaintenance(ctx context.Context, app string, on bool) (int64, error) {
	return s.put(ctx, config.KeyMaintenance+app, strconv.FormatBool(on))
}

// ClearMaintenance deletes maintenance/<app>: the app's own maintenance
// applies again. It returns the revision of the deletion.
func (s *Store) ClearMaintenance(ctx context.Context, app string) (int64, error) {
	return s.deleteRev(ctx, config.KeyMaintenance+app)
}

// PutClient writes clients/<app>/<id>, an issued client certificate in
// package spaceca's format; every router sees it (and a revocation in
// it) at its next applied change. It returns the revision written.
func (s *Store) PutClient(ctx context.Context, app, id, value string) (int64, error) {
	return s.put(ctx, config.KeyClients+app+"/"+id, value)
}

// DeleteClient deletes clients/<app>/<id>.
func (s *Store) DeleteClient(ctx context.Context, app, id string) error {
	return s.delete(ctx, config.KeyClients+app+"/"+id)
}

// Clients reads the keys clients/<app>/, by id.
func (s *Store) Clients(ctx context.Context, app string) (map[string]string, error) {
	kvs, err := s.list(ctx, config.KeyClients+app+"/")
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		out[strings.TrimPrefix(kv.Key, config.KeyClients+app+"/")] = kv.Value
	}
	return out, nil
}

// delete deletes one key.
func (s *Store) delete(ctx context.Context, key string) error {
	_, err := s.deleteRev(ctx, key)
	return err
}

// deleteRev deletes one key and returns the revision after it.
func (s *Store) deleteRev(ctx context.Context, key string) (int64, error) {
	cctx, cancel := s.timeout(ctx)
	defer cancel()
	resp, err := s.cli.Delete(cctx, s.prefix+key)
	if err != nil {
		return 0, fmt.Errorf("deleting %s%s: %w", s.prefix, key, err)
	}
	return resp.Header.Revision, nil
}

// RefusedError is Import's error when the routers would refuse keys of
// the space to import; nothing was written.
type RefusedError struct {
	Refused []config.Refusal
}

// Error returns one line per refused key, etcd:KEY: PROBLEM.
func (e *RefusedError) Error() string {
	lines := make([]string, len(e.Refused))
	for i, r := range e.Refused {
		lines[i] = r.String()
	}
	return "the routers would refuse these keys, so nothing was written:\n" + strings.Join(lines, "\n")
}

// maxTxnOps is etcd's default --max-txn-ops: the most puts one
// transaction may hold.
const maxTxnOps = 128

// Import writes the file-based space in the config file at from into the
// store (spacerouter store import): the keys of config.ExportKeys, each
// checked first as the routers will check it, against this router's
// config file (so relative paths must work from its directory). Nothing
// is written when the file fails -check or a key would be refused. Keys
// are written in transactions of up to 128 puts; keys already in the
// store and not in the file are left as they are. It returns the keys
// written and the revision of the last transaction.
func (s *Store) Import(ctx context.Context, from string) ([]config.KV, int64, error) {
	data, err := os.ReadFile(from)
	if err != nil {
		return nil, 0, fmt.Errorf("reading the space to import: %w", err)
	}
	kvs, err := config.ExportKeys(from, data)
	if err != nil {
		return nil, 0, err
	}
	if sh := config.BuildShared(s.local, kvs, nil); len(sh.Refused) > 0 {
		return nil, 0, &RefusedError{Refused: sh.Refused}
	}
	var rev int64
	for i := 0; i < len(kvs); i += maxTxnOps {
		ops := make([]clientv3.Op, 0, maxTxnOps)
		for _, kv := range kvs[i:min(i+maxTxnOps, len(kvs))] {
			ops = append(ops, clientv3.OpPut(s.prefix+kv.Key, kv.Value))
		}
		cctx, cancel := s.timeout(ctx)
		resp, err := s.cli.Txn(cctx).Then(ops...).Commit()
		cancel()
		if err != nil {
			return nil, 0, fmt.Errorf("writing keys %d to %d of %d: %w", i+1, i+len(ops), len(kvs), err)
		}
		rev = resp.Header.Revision
	}
	return kvs, rev, nil
}

// Check validates every key of the store as the routers do (-check with
// store): it reads them at one revision and returns the keys refused.
func (s *Store) Check(ctx context.Context) ([]config.Refusal, int64, error) {
	sh, rev, err := s.Shared(ctx, config.LoadOptions{})
	if err != nil {
		return nil, 0, err
	}
	return sh.Refused, rev, nil
}

// Shared reads every key of the store at one revision and builds the
// space from them as the routers do (config.BuildSharedWith with opts),
// for the commands that work on the space without serving it (-check,
// spacerouter ca). It returns the build and the revision read.
func (s *Store) Shared(ctx context.Context, opts config.LoadOptions) (*config.Shared, int64, error) {
	kvs, rev, err := s.readAll(ctx)
	if err != nil {
		return nil, 0, err
	}
	list := make([]config.KV, 0, len(kvs))
	for _, kv := range kvs {
		list = append(list, kv)
	}
	return config.BuildSharedWith(s.local, list, nil, opts), rev, nil
}

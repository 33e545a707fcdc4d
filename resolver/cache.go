package resolver

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// entry is one cached answer: addresses, or the error of a name that does
// not exist.
type entry struct {
	addrs   []netip.Addr // shared; callers get a copy
	err     error
	expires time.Time
}

// flight is one lookup in progress; every caller asking for the same name
// meanwhile waits for it instead of sending its own query.
type flight struct {
	done   chan struct{} // closed when addrs and err are set
	addrs  []netip.Addr
	err    error
	cancel context.CancelFunc
	// waiters counts the callers still waiting; guarded by Resolver.mu.
	waiters int
}

// cachedLocked returns the unexpired entry for name, dropping an expired
// one.
func (r *Resolver) cachedLocked(name string) (entry, bool) {
	e, ok := r.entries[name]
	if !ok {
		return entry{}, false
	}
	if !r.opts.Now().Before(e.expires) {
		delete(r.entries, name)
		return entry{}, false
	}
	return e, true
}

// storeLocked caches a result for ttl; a ttl of 0 caches nothing.
func (r *Resolver) storeLocked(name string, addrs []netip.Addr, ttl time.Duration, err error) {
	if ttl <= 0 {
		return
	}
	now := r.opts.Now()
	if _, ok := r.entries[name]; !ok && len(r.entries) >= r.opts.MaxEntries {
		r.evictLocked(now)
	}
	r.entries[name] = entry{addrs: addrs, err: err, expires: now.Add(ttl)}
}

// evictLocked makes room for one entry: it drops every expired entry, and if
// none was, the one closest to expiry.
func (r *Resolver) evictLocked(now time.Time) {
	var soonest string
	var soonestAt time.Time
	for name, e := range r.entries {
		if !now.Before(e.expires) {
			delete(r.entries, name)
		} else if soonest == "" || e.expires.Before(soonestAt) {
			soonest, soonestAt = name, e.expires
		}
	}
	if len(r.entries) >= r.opts.MaxEntries {
		delete(r.entries, soonest)
	}
}

// joinLocked returns the lookup in progress for name, starting one if there
// is none, and counts the caller as waiting for it.
func (r *Resolver) joinLocked(ctx context.Context, name string) *flight {
	f, ok := r.flights[name]
	if !ok {
		f = r.startLocked(ctx, name)
	}
	f.waiters++
	return f
}

// startLocked starts a lookup of name on its own goroutine. The lookup is
// detached from ctx's cancellation on purpose: when the caller that started
// it gives up, the others waiting for the name still get the answer. It
// keeps ctx's deadline (the dyno connect timeout the budget is cut from) and
// is cancelled when the last waiter leaves, so it always ends.
func (r *Resolver) startLocked(ctx context.Context, name string) *flight {
	fctx, cancel := detach(ctx)
	f := &flight{done: make(chan struct{}), cancel: cancel}
	r.flights[name] = f
	go r.run(fctx, name, f)
	return f
}

// detach returns a context with ctx's values and deadline but not its
// cancellation.
func detach(ctx context.Context) (context.Context, context.CancelFunc) {
	base := context.WithoutCancel(ctx)
	if d, ok := ctx.Deadline(); ok {
		return context.WithDeadline(base, d)
	}
	return context.WithCancel(base)
}

// run does the lookup of f, caches its result and wakes its waiters.
func (r *Resolver) run(ctx context.Context, name string, f *flight) {
	defer f.cancel()
	addrs, ttl, err := r.resolve(ctx, name)
	r.mu.Lock()
	r.storeLocked(name, addrs, ttl, err)
	if r.flights[name] == f {
		delete(r.flights, name)
	}
	f.addrs, f.err = addrs, err
	r.mu.Unlock()
	close(f.done)
}

// wait waits for f or for ctx. A caller that leaves stops the lookup when it
// was the last one waiting.
func (r *Resolver) wait(ctx context.Context, host, name string, f *flight) ([]netip.Addr, error) {
	select {
	case <-f.done:
		if f.err != nil {
			return nil, fmt.Errorf("resolving %s: %w", host, f.err)
		}
		return slices.Clone(f.addrs), nil
	case <-ctx.Done():
		r.leave(name, f)
		return nil, fmt.Errorf("resolving %s: %w", host, ctx.Err())
	}
}

// leave counts a caller out of f, cancelling f when nobody waits any more.
// The flight is forgotten at once, so a later caller starts a fresh lookup
// instead of joining a cancelled one.
func (r *Resolver) leave(name string, f *flight) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f.waiters--
	if f.waiters > 0 {
		return
	}
	f.cancel()
	if r.flights[name] == f {
		delete(r.flights, name)
	}
}

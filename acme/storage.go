package acme

import (
	"context"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
)

// stopDrainTimeout bounds how long Stop waits for certmagic's cancelled
// jobs to release the storage.
const stopDrainTimeout = 10 * time.Second

// SharedStorage is a certmagic storage with TryLock, such as certmagic's
// FileStorage or package store's ACMEStorage (etcd, shared by the routers
// of a space).
type SharedStorage interface {
	certmagic.Storage
	certmagic.TryLocker
}

// storageName names key of st for a log line or an error: the file of a
// FileStorage, else the key.
func storageName(st certmagic.Storage, key string) string {
	if fs, ok := st.(*certmagic.FileStorage); ok {
		return fs.Filename(key)
	}
	return key
}

// gatedStorage is certmagic's storage with a gate Stop closes:
// certmagic runs its orders on goroutines of its own (a package-wide job
// queue) that cancelling their context ends but that nobody can wait for.
// The gate counts the storage calls in flight and the locks held; once
// closed it refuses new writes and locks (reads, deletions and unlocks
// still pass, so a cancelled job cleans up), and Stop waits until the
// count is zero. After Stop, no job of the Manager writes to the storage,
// so the next Manager (a reload, a restart) or a test's cleanup has it to
// itself.
type gatedStorage struct {
	SharedStorage

	// noEmail hides the account list from certmagic when acme.email is
	// not set: it would otherwise take the name of the account directory
	// of an earlier start without email ("default") for an email, and
	// register mailto:default, which CAs refuse (invalidContact), from
	// then on for every Manager of the process. Hidden, certmagic loads
	// the account it keeps for no email.
	noEmail bool

	// mu guards closed, busy, held and idle.
	mu     sync.Mutex
	closed bool
	busy   int            // calls in flight plus locks held
	held   map[string]int // locks held, by name
	idle   chan struct{}  // closed when busy reaches 0 after close
}

var (
	_ certmagic.Storage   = (*gatedStorage)(nil)
	_ certmagic.TryLocker = (*gatedStorage)(nil)
)

func newGatedStorage(st SharedStorage) *gatedStorage {
	return &gatedStorage{SharedStorage: st, held: make(map[string]int)}
}

// enter counts a call in; a write or lock after close is refused.
func (g *gatedStorage) enter(write bool) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed && write {
		return ErrStopped
	}
	g.busy++
	return nil
}

// leave counts a call (or a lock) out.
func (g *gatedStorage) leave() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.busy--
	if g.closed && g.busy == 0 && g.idle != nil {
		close(g.idle)
		g.idle = nil
	}
}

// closeAndWait closes the gate and waits until nothing is in flight or
// held, for at most timeout; it reports whether the storage went idle.
func (g *gatedStorage) closeAndWait(timeout time.Duration) bool {
	g.mu.Lock()
	g.closed = true
	if g.busy == 0 {
		g.mu.Unlock()
		return true
	}
	idle := make(chan struct{})
	g.idle = idle
	g.mu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-idle:
		return true
	case <-t.C:
		return false
	}
}

func (g *gatedStorage) Store(ctx context.Context, key string, value []byte) error {
	if err := g.enter(true); err != nil {
		return err
	}
	defer g.leave()
	return g.SharedStorage.Store(ctx, key, value)
}

func (g *gatedStorage) Load(ctx context.Context, key string) ([]byte, error) {
	g.enter(false)
	defer g.leave()
	return g.SharedStorage.Load(ctx, key)
}

func (g *gatedStorage) Delete(ctx context.Context, key string) error {
	g.enter(false)
	defer g.leave()
	return g.SharedStorage.Delete(ctx, key)
}

func (g *gatedStorage) Exists(ctx context.Context, key string) bool {
	g.enter(false)
	defer g.leave()
	return g.SharedStorage.Exists(ctx, key)
}

func (g *gatedStorage) List(ctx context.Context, prefix string, recursive bool) ([]string, error) {
	if g.noEmail && isAccountList(prefix) {
		return nil, nil
	}
	g.enter(false)
	defer g.leave()
	return g.SharedStorage.List(ctx, prefix, recursive)
}

// isAccountList reports certmagic's listing of the ACME accounts of a CA
// (acme/<CA>/users), which it reads to guess an email when none is set.
func isAccountList(prefix string) bool {
	return path.Base(prefix) == "users" && strings.HasPrefix(prefix, "acme/")
}

func (g *gatedStorage) Stat(ctx context.Context, key string) (certmagic.KeyInfo, error) {
	g.enter(false)
	defer g.leave()
	return g.SharedStorage.Stat(ctx, key)
}

// Lock takes the lock name; while held, it counts as a call in flight.
func (g *gatedStorage) Lock(ctx context.Context, name string) error {
	if err := g.enter(true); err != nil {
		return err
	}
	if err := g.SharedStorage.Lock(ctx, name); err != nil {
		g.leave()
		return err
	}
	g.hold(name)
	return nil
}

// TryLock is Lock without waiting for another holder.
func (g *gatedStorage) TryLock(ctx context.Context, name string) (bool, error) {
	if err := g.enter(true); err != nil {
		return false, err
	}
	ok, err := g.SharedStorage.TryLock(ctx, name)
	if !ok || err != nil {
		g.leave()
		return ok, err
	}
	g.hold(name)
	return true, nil
}

// Unlock releases the lock name.
func (g *gatedStorage) Unlock(ctx context.Context, name string) error {
	err := g.SharedStorage.Unlock(ctx, name)
	g.mu.Lock()
	n := g.held[name]
	if n > 0 {
		if n == 1 {
			delete(g.held, name)
		} else {
			g.held[name] = n - 1
		}
	}
	g.mu.Unlock()
	if n > 0 {
		g.leave()
	}
	return err
}

// hold records the lock name as held (its call stays counted in).
func (g *gatedStorage) hold(name string) {
	g.mu.Lock()
	g.held[name]++
	g.mu.Unlock()
}

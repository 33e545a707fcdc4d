package spaceca

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ExpiringWithin is how long before its end a client certificate is
// expiring and gets its successor (SPEC.md section 11.3).
const ExpiringWithin = 75 * 24 * time.Hour

// Status is where a client certificate stands.
type Status string

// The statuses of SPEC.md section 11.3.
const (
	StatusReady    Status = "ready"
	StatusExpiring Status = "expiring" // within ExpiringWithin of NotAfter
	StatusExpired  Status = "expired"
	StatusRevoked  Status = "revoked"
)

// Statuses lists every Status, in the order above.
var Statuses = [...]Status{StatusReady, StatusExpiring, StatusExpired, StatusRevoked}

// Client is one issued client certificate, as its meta.json records it.
type Client struct {
	ID       string   // 16 lower-case hex digits
	App      string   // the app it was issued for
	Name     string   // the certificate's CN
	Serial   *big.Int // random, 128 bits
	Created  time.Time
	NotAfter time.Time
	// Issuer is the hex SHA-256 of the issuing CA certificate's DER.
	Issuer string
	// SuccessorOf is the ID of the certificate this one renews, or "".
	SuccessorOf string
	// RevokedAt is when it was revoked; zero when it was not.
	RevokedAt time.Time
	// Status is the status when the Client was returned.
	Status Status
}

// StatusAt returns c's status at now.
func (c *Client) StatusAt(now time.Time) Status {
	switch {
	case !c.RevokedAt.IsZero():
		return StatusRevoked
	case !now.Before(c.NotAfter):
		return StatusExpired
	case !now.Before(c.NotAfter.Add(-ExpiringWithin)):
		return StatusExpiring
	}
	return StatusReady
}

// meta is the JSON form of a Client in meta.json.
type meta struct {
	ID          string     `json:"id"`
	App         string     `json:"app"`
	Name        string     `json:"name"`
	Serial      string     `json:"serial"` // hex
	Created     time.Time  `json:"created"`
	NotAfter    time.Time  `json:"not_after"`
	Issuer      string     `json:"issuer"`
	SuccessorOf string     `json:"successor_of,omitempty"`
	RevokedAt   *time.Time `json:"revoked_at,omitempty"`
}

func toMeta(c *Client) meta {
	m := meta{ID: c.ID, App: c.App, Name: c.Name, Serial: c.Serial.Text(16),
		Created: c.Created.UTC(), NotAfter: c.NotAfter.UTC(), Issuer: c.Issuer, SuccessorOf: c.SuccessorOf}
	if !c.RevokedAt.IsZero() {
		t := c.RevokedAt.UTC()
		m.RevokedAt = &t
	}
	return m
}

func (m *meta) client() (Client, error) {
	serial, ok := new(big.Int).SetString(m.Serial, 16)
	if !ok || serial.Sign() <= 0 {
		return Client{}, fmt.Errorf("serial %q is not a positive hex number", m.Serial)
	}
	if m.App == "" || m.Name == "" || m.NotAfter.IsZero() || m.Created.IsZero() {
		return Client{}, errors.New("app, name, created or not_after missing")
	}
	c := Client{ID: m.ID, App: m.App, Name: m.Name, Serial: serial, Created: m.Created,
		NotAfter: m.NotAfter, Issuer: m.Issuer, SuccessorOf: m.SuccessorOf}
	if m.RevokedAt != nil {
		c.RevokedAt = *m.RevokedAt
	}
	return c, nil
}

// snapshot is the state directory as last read; never changed once stored.
type snapshot struct {
	gen        uint64
	clients    []Client          // by Created, then ID
	byID       map[string]int    // index into clients
	successors map[string]string // ID -> the ID of its successor
	revoked    *Revocations
}

// Revocations is the set of revoked serial numbers at one generation of
// the state; a change makes a new set, so a holder of one sees no change
// under it. Its methods are safe on a nil set (nothing revoked).
type Revocations struct {
	gen     uint64
	serials map[string]struct{} // string(serial.Bytes())
}

// Revoked reports whether serial is revoked.
func (r *Revocations) Revoked(serial *big.Int) bool {
	if r == nil || serial == nil {
		return false
	}
	_, ok := r.serials[string(serial.Bytes())]
	return ok
}

// revokedKey is Revoked for a serial already in key form; it does not
// allocate.
func (r *Revocations) revokedKey(key string) bool {
	if r == nil {
		return false
	}
	_, ok := r.serials[key]
	return ok
}

// Len returns how many serials are revoked.
func (r *Revocations) Len() int {
	if r == nil {
		return 0
	}
	return len(r.serials)
}

// Generation returns the state generation the set was read at.
func (r *Revocations) Generation() uint64 {
	if r == nil {
		return 0
	}
	return r.gen
}

func newSnapshot(gen uint64, clients []Client) *snapshot {
	slices.SortFunc(clients, func(a, b Client) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	s := &snapshot{gen: gen, clients: clients, byID: make(map[string]int, len(clients)),
		successors: map[string]string{}, revoked: &Revocations{gen: gen, serials: map[string]struct{}{}}}
	for i, c := range clients {
		s.byID[c.ID] = i
		if c.SuccessorOf != "" {
			s.successors[c.SuccessorOf] = c.ID
		}
		if !c.RevokedAt.IsZero() {
			s.revoked.serials[string(c.Serial.Bytes())] = struct{}{}
		}
	}
	return s
}

// readGeneration returns the counter in the generation file; 0 when the
// file does not exist yet.
func (ca *CA) readGeneration() (uint64, error) {
	data, err := os.ReadFile(ca.generationFile())
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: not a generation number: %w", ca.generationFile(), err)
	}
	return n, nil
}

// scan reads every certificate's meta.json. A file that cannot be read or
// parsed is an error naming it: skipping it could forget a revocation.
func (ca *CA) scan(gen uint64) (*snapshot, error) {
	entries, err := os.ReadDir(ca.clientsDir())
	if err != nil {
		return nil, fmt.Errorf("reading the state directory: %w", err)
	}
	clients := make([]Client, 0, len(entries))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") || !e.IsDir() {
			continue // a certificate being written, or not ours
		}
		path := filepath.Join(ca.clientsDir(), e.Name(), "meta.json")
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading client certificate state: %w", err)
		}
		var m meta
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if m.ID != e.Name() {
			return nil, fmt.Errorf("%s: id %q does not match its directory", path, m.ID)
		}
		c, err := m.client()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		clients = append(clients, c)
	}
	return newSnapshot(gen, clients), nil
}

// Refresh rereads the state directory if its generation changed since the
// last read, and reports whether it did. It costs one small file read when
// nothing changed, so a router may call it every second: a certificate
// issued or revoked by another process (the ca subcommand) then counts
// within a second. On error the last good state stays in force.
func (ca *CA) Refresh() (changed bool, err error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	return ca.refreshLocked()
}

func (ca *CA) refreshLocked() (bool, error) {
	gen, err := ca.readGeneration()
	if err != nil {
		return false, err
	}
	if cur := ca.snap.Load(); cur != nil && cur.gen == gen {
		return false, nil
	}
	s, err := ca.scan(gen)
	if err != nil {
		return false, err
	}
	ca.snap.Store(s)
	return true, nil
}

// Watch calls Refresh every interval (> 0) until ctx is done, and calls report
// (if not nil) after each Refresh that changed the state or failed. It
// blocks; the caller owns the goroutine that runs it.
func (ca *CA) Watch(ctx context.Context, interval time.Duration, report func(changed bool, err error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := ca.Refresh()
		if (changed || err != nil) && report != nil {
			report(changed, err)
		}
	}
}

// Generation returns the generation of the state in force: it changes
// whenever a certificate is issued or revoked, here or by another process
// (seen by Refresh).
func (ca *CA) Generation() uint64 { return ca.snap.Load().gen }

// Revocations returns the revoked serials in force. The set does not
// change; Refresh and the CA's own writes replace it.
func (ca *CA) Revocations() *Revocations { return ca.snap.Load().revoked }

// List returns the certificates of app ("" for every app), oldest first,
// with their status now.
func (ca *CA) List(app string) []Client {
	s := ca.snap.Load()
	now := ca.now()
	var out []Client
	for _, c := range s.clients {
		if app != "" && c.App != app {
			continue
		}
		c.Status = c.StatusAt(now)
		out = append(out, c)
	}
	return out
}

// Get returns the certificate with id and its status now.
func (ca *CA) Get(id string) (Client, error) {
	if !validID(id) {
		return Client{}, unknownID(id)
	}
	s := ca.snap.Load()
	i, ok := s.byID[id]
	if !ok {
		return Client{}, unknownID(id)
	}
	c := s.clients[i]
	c.Status = c.StatusAt(ca.now())
	return c, nil
}

// Successor returns the ID of the certificate that renews id, or "".
func (ca *CA) Successor(id string) string { return ca.snap.Load().successors[id] }

// Count is how many of an app's certificates are in one status.
type Count struct {
	App    string
	Status Status
	N      int
}

// Counts returns, for every app with certificates, the number in each
// status now (zeros included, so a gauge per app and status can be set
// from it), by app then in the order of Statuses.
func (ca *CA) Counts() []Count {
	now := ca.now()
	per := map[string]*[len(Statuses)]int{}
	var apps []string
	for _, c := range ca.snap.Load().clients {
		n := per[c.App]
		if n == nil {
			n = new([len(Statuses)]int)
			per[c.App] = n
			apps = append(apps, c.App)
		}
		n[slices.Index(Statuses[:], c.StatusAt(now))]++
	}
	slices.Sort(apps)
	out := make([]Count, 0, len(apps)*len(Statuses))
	for _, app := range apps {
		for i, st := range Statuses {
			out = append(out, Count{App: app, Status: st, N: per[app][i]})
		}
	}
	return out
}

// UnknownIDError is the error for an id the state directory does not
// hold.
type UnknownIDError struct{ ID string }

func (e *UnknownIDError) Error() string {
	return fmt.Sprintf("unknown client certificate id %q", e.ID)
}

func unknownID(id string) error { return &UnknownIDError{ID: id} }

// idLen is the length of an ID: 8 random bytes in hex.
const idLen = 16

// validID reports whether id has the form of an ID; anything else never
// reaches a path.
func validID(id string) bool {
	if len(id) != idLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

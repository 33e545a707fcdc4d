package router

import (
	"fmt"

	"github.com/spacerouter/spacerouter/spaceca"
)

// revocationSets are the revoked serials in force: the space CA's own
// (its state_dir) and those of the shared space's clients/ keys, and
// their union, made once per change of either.
type revocationSets struct {
	ca, shared, union *spaceca.Revocations
}

// SetSharedRevocations makes rs (nil: none) the client certificates
// revoked through the shared space's clients/<app>/<id> keys (SPEC.md
// section 14), refused from the next request of every connection on top
// of the space CA's own revocations.
func (r *Router) SetSharedRevocations(rs *spaceca.Revocations) { r.sharedRevoked.Store(rs) }

// withShared returns caRevs with the shared revocations added; the
// union is cached until either set changes.
func (r *Router) withShared(caRevs *spaceca.Revocations) *spaceca.Revocations {
	shared := r.sharedRevoked.Load()
	if shared == nil {
		return caRevs
	}
	if c := r.revUnion.Load(); c != nil && c.ca == caRevs && c.shared == shared {
		return c.union
	}
	u := caRevs.Union(shared)
	r.revUnion.Store(&revocationSets{ca: caRevs, shared: shared, union: u})
	return u
}

// SetSharedClients makes records (by "<app>/<id>", the values of the
// shared space's clients/<app>/<id> keys, SPEC.md section 14; not
// changed afterwards) those the admin API's download falls back to for a
// certificate the space CA's state_dir does not hold: one issued by
// another router.
func (r *Router) SetSharedClients(records map[string]string) { r.sharedClients.Store(&records) }

// sharedClient returns the record of certificate id of app under
// clients/; false when there is none, an error naming the key when it is
// refused.
func (r *Router) sharedClient(app, id string) (spaceca.Record, bool, error) {
	m := r.sharedClients.Load()
	if m == nil {
		return spaceca.Record{}, false, nil
	}
	v, ok := (*m)[app+"/"+id]
	if !ok {
		return spaceca.Record{}, false, nil
	}
	rec, err := spaceca.UnmarshalRecord(v)
	if err == nil && (rec.ID != id || rec.App != app) {
		err = fmt.Errorf("it is the record of certificate %s of app %s", rec.ID, rec.App)
	}
	if err != nil {
		return spaceca.Record{}, true, fmt.Errorf("client certificate %s: its record clients/%s/%s in etcd is refused: %w", id, app, id, err)
	}
	return rec, true, nil
}

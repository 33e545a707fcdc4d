package router

import (
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

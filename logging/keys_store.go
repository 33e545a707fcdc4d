package logging

// Field keys of the shared store (package store, SPEC.md section 14),
// beside the others in keys.go.
const (
	// KeyRevision is an etcd revision.
	KeyRevision = "revision"
	// KeyProblem is why a store key is refused.
	KeyProblem = "problem"
	// KeyRefused is the number of store keys refused.
	KeyRefused = "refused"
	// KeyRouterID is a router's id in the store (store.router_id).
	KeyRouterID = "router_id"
)

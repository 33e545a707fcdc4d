package logging

// Field keys of the ACME certificate manager (package acme, SPEC.md
// section 12.1), beside the others in keys.go.
const (
	// KeyDomain is a domain name an app serves.
	KeyDomain = "domain"
	// KeyState is an ACME certificate's state: waiting, in_progress, ok
	// or failing.
	KeyState = "state"
	// KeyRenewal is true when an ACME order renews a certificate.
	KeyRenewal = "renewal"
	// KeyNotAfter is a certificate's expiry.
	KeyNotAfter = "not_after"
	// KeyIssuer is a certificate's issuer (its common name).
	KeyIssuer = "issuer"
)

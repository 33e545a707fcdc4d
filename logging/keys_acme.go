package logging

// Field keys of the ACME certificate manager (package acme, SPEC.md
// section 12.1), beside the others in keys.go.
const (
	// KeyDomain is a domain name an app serves.
	KeyDomain = "domain"
	// KeyRenewal is true when an ACME order renews a certificate.
	KeyRenewal = "renewal"
	// KeyAdded lists the names a reload added.
	KeyAdded = "added"
	// KeyDropped lists the names a reload dropped.
	KeyDropped = "dropped"
)

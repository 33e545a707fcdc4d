package logging

// Field keys of the certificate lifecycle (SPEC.md section 12), beside the
// others in keys.go.
const (
	// KeyRole is a certificate's role: server, client_ca, space_ca,
	// client (as in spacerouter_certificate_expiry_timestamp_seconds).
	KeyRole = "role"
)

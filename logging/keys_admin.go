package logging

// Field keys of the admin API's audit lines (package admin, SPEC.md
// section 13) and of the certificate lifecycle (section 12), beside the
// others in keys.go.
const (
	// KeySubject is the caller's subject (the ID token's sub).
	KeySubject = "subject"
	// KeyUser is the caller's name as the ID token gives it (email,
	// preferred_username or name), for people reading the log.
	KeyUser = "user"
	// KeyRole is a role: the caller's on the app (admin, owner,
	// collaborator) in audit lines, or a certificate's (server,
	// client_ca, space_ca, client, as in
	// spacerouter_certificate_expiry_timestamp_seconds) in expiry lines.
	KeyRole = "role"
	// KeyAction is what a change did ("maintenance.on", "client.issue").
	KeyAction = "action"
	// KeyCertID is the id of an issued client certificate.
	KeyCertID = "cert_id"
)

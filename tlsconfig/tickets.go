package tlsconfig

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
)

// Tickets seals the session tickets of the Stores of one process and binds
// each ticket to the app, the SNI name and the generation of chains of the
// handshake that issued it (issue 9, SPEC.md 12.3), for TLS 1.2 and TLS
// 1.3 tickets alike.
//
// A ticket carries, in its encrypted and authenticated SessionState.Extra,
// the app's name, the normalized SNI name and the generation's id (a hash
// of the chains served; empty for tls: auto); a ticket presented for
// another app, for another name of the same app, or after the app's
// chains changed (a staged chain took over, a reload served other files)
// is ignored and the handshake goes on in full. The generation is part of
// the binding so that a client resuming after a rotation sees the new
// chain, and a resumed connection is known to carry a chain the app still
// serves (Options.OnServed). The name is part of the binding because a
// server "MUST NOT accept the request to resume the session if the
// server_name extension contains a different name" (RFC 6066 section 3,
// TLS 1.2); TLS 1.3 lets a server skip that check, but clients "SHOULD only
// resume if the SNI value matches the one used in the original session"
// (RFC 8446 section 4.6.1) and this server never tells them otherwise, so
// one rule serves both versions and costs real clients nothing (they key
// their session caches by name). The app is part of it because a domain
// may move to another app on a reload.
//
// The ticket keys are those crypto/tls makes and rotates for a config of
// its own (a new key every 24 hours, each accepted for 7 days), held here
// rather than in any one Store's configs: pass one Tickets to every Store
// of the process (Options.Tickets) and a ticket issued before a reload
// resumes after it. Tickets is safe for concurrent use.
type Tickets struct {
	// sealer never serves a handshake; it only holds the ticket keys
	// for EncryptTicket and DecryptTicket.
	sealer *tls.Config
}

// NewTickets returns a ticket sealer with keys of its own, made on first
// use.
func NewTickets() *Tickets {
	return &Tickets{sealer: &tls.Config{}}
}

// bindingTag starts the SessionState.Extra entry that binds a ticket.
// Other layers may add entries of their own (crypto/tls asks that entries
// be recognizable by a prefix); the version lets a later format coexist.
// Version 1 had no generation: its tickets find no v2 entry and do not
// resume.
const bindingTag = "spacerouter/ticket-binding/v2\x00"

// binding returns the Extra entry for app, the generation id gen and the
// normalized SNI name: the tag, the length of app as a uvarint, app, the
// length of gen as a uvarint, gen, then the name.
func binding(app string, gen []byte, sni string) []byte {
	b := make([]byte, 0, len(bindingTag)+2*binary.MaxVarintLen64+len(app)+len(gen)+len(sni))
	b = append(b, bindingTag...)
	b = binary.AppendUvarint(b, uint64(len(app)))
	b = append(b, app...)
	b = binary.AppendUvarint(b, uint64(len(gen)))
	b = append(b, gen...)
	return append(b, sni...)
}

// boundTo reports whether ss carries a binding entry and every binding
// entry it carries is want.
func boundTo(ss *tls.SessionState, want []byte) bool {
	found := false
	for _, e := range ss.Extra {
		if !bytes.HasPrefix(e, []byte(bindingTag)) {
			continue
		}
		if !bytes.Equal(e, want) {
			return false
		}
		found = true
	}
	return found
}

// wrapFor returns the Config.WrapSession of the configs of app's
// generation gen: it binds the session to app, gen and the handshake's SNI
// name and encrypts it.
func (t *Tickets) wrapFor(app string, gen []byte) func(tls.ConnectionState, *tls.SessionState) ([]byte, error) {
	return func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, binding(app, gen, normalizeSNI(cs.ServerName)))
		return t.sealer.EncryptTicket(cs, ss)
	}
}

// unwrapFor returns the Config.UnwrapSession of the configs of app's
// generation gen: a ticket that does not decrypt, or that is bound to
// another app, generation or SNI name, gives (nil, nil), which makes
// crypto/tls run a full handshake. It never returns an error, which would
// end the connection.
func (t *Tickets) unwrapFor(app string, gen []byte) func([]byte, tls.ConnectionState) (*tls.SessionState, error) {
	return func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := t.sealer.DecryptTicket(identity, cs)
		if err != nil || ss == nil || !boundTo(ss, binding(app, gen, normalizeSNI(cs.ServerName))) {
			return nil, nil
		}
		return ss, nil
	}
}

package router

import "github.com/spacerouter/spacerouter/router/h1"

// The router's Via entries (SPEC.md 4.7): by the client's protocol.
const (
	via11 = "1.1 spacerouter"
	via20 = "2.0 spacerouter"
)

// What appendForwardFields leaves out besides hop-by-hop fields.
const (
	// fieldsRequest: the request fields the router sets or drops itself.
	fieldsRequest = 1 << iota
	// fieldsNoHost: the Host field (the router writes its own).
	fieldsNoHost
)

// skipHostIf returns fieldsNoHost when skip is true.
func skipHostIf(skip bool) int {
	if skip {
		return fieldsNoHost
	}
	return 0
}

// appendForwardFields appends the fields that pass through: not Hop, and
// not one the flags leave out. Via is appended to the last Via field, or
// added. Runs of fields that go out exactly as they came (h1.Field.Line)
// are copied at once.
func appendForwardFields(b []byte, fields []h1.Field, flags int, via string) []byte {
	replaced, noHost := flags&fieldsRequest != 0, flags&fieldsNoHost != 0
	lastVia := -1
	for i := range fields {
		if fields[i].Known == h1.KnownVia {
			lastVia = i
		}
	}
	var run []byte // field lines not appended yet
	for i := range fields {
		f := &fields[i]
		if f.Hop || replaced && (replacedRequestField(f.Known) || f.Known == h1.KnownOther && clientCertField(f.Name)) || noHost && f.Known == h1.KnownHost {
			continue
		}
		if f.Line != nil && i != lastVia {
			// Lines of one head share its buffer: this one follows the run
			// when the run ends where it starts.
			if run != nil && cap(run)-len(run) == cap(f.Line) {
				run = run[:len(run)+len(f.Line)]
			} else {
				b = append(b, run...)
				run = f.Line
			}
			continue
		}
		b = append(b, run...)
		run = nil
		b = append(b, f.Name...)
		b = append(b, ':', ' ')
		b = append(b, f.Value...)
		if i == lastVia {
			b = append(b, ", "...)
			b = append(b, via...)
		}
		b = append(b, '\r', '\n')
	}
	b = append(b, run...)
	if lastVia < 0 {
		b = append(b, "Via: "...)
		b = append(b, via...)
		b = append(b, '\r', '\n')
	}
	return b
}

// replacedRequestField reports the request fields the router sets itself
// (SPEC.md 4.7), and the ones it drops so a client cannot tell the dyno a
// host or scheme of its choosing: Forwarded and X-Forwarded-Host (issue 9;
// the router sets X-Forwarded-Proto and -Port, and Host is what routed
// the request).
func replacedRequestField(k h1.Known) bool {
	switch k {
	case h1.KnownXRequestID, h1.KnownXForwardedFor, h1.KnownXRequestStart, h1.KnownXForwardedPort, h1.KnownXForwardedProto,
		h1.KnownForwarded, h1.KnownXForwardedHost:
		return true
	}
	return false
}

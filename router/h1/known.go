package h1

import "encoding/binary"

// Known identifies the field names the router acts on. A field's name is
// classified once, as it is parsed, so the framing rules, the hop-by-hop
// marking and the router's own fields need no further name compares.
type Known uint8

// The known field names; KnownOther is every other name.
const (
	KnownOther Known = iota
	KnownHost
	KnownContentLength
	KnownTransferEncoding
	KnownConnection
	KnownExpect
	KnownUpgrade
	KnownTE
	KnownTrailer
	KnownKeepAlive
	KnownProxyConnection
	KnownCookie
	KnownSetCookie
	KnownContentType
	KnownVia
	KnownXRequestID
	KnownXForwardedFor
	KnownXForwardedProto
	KnownXForwardedPort
	KnownXRequestStart
	KnownForwarded
	KnownXForwardedHost
)

// knownName classifies a field name, in any case. Names of four bytes or
// more are compared a word at a time: the first and last four or eight
// bytes (and the middle eight of a longer name), letters folded to lower
// case by setting their 0x20 bit, so "Content-Length" costs a few
// compares, not a loop over its bytes.
func knownName(name []byte) Known {
	n := len(name)
	var w [3]uint64
	switch {
	case n > maxKnownLen:
		return KnownOther
	case n >= 8:
		w[0] = binary.LittleEndian.Uint64(name)
		w[1] = binary.LittleEndian.Uint64(name[n-8:])
		if n > 16 {
			w[2] = binary.LittleEndian.Uint64(name[8:])
		}
	case n >= 4:
		w[0] = uint64(binary.LittleEndian.Uint32(name))
		w[1] = uint64(binary.LittleEndian.Uint32(name[n-4:]))
	case n == 2:
		if EqualFold(name, "te") {
			return KnownTE
		}
		return KnownOther
	case n == 3:
		if EqualFold(name, "via") {
			return KnownVia
		}
		return KnownOther
	default:
		return KnownOther
	}
	for i := range knownWords[n] {
		e := &knownWords[n][i]
		if w[0]|e.fold[0] == e.want[0] && w[1]|e.fold[1] == e.want[1] && w[2]|e.fold[2] == e.want[2] {
			return e.known
		}
	}
	return KnownOther
}

// knownNames are the names knownName compares word by word: lower case,
// four bytes or more, letters and '-' only.
var knownNames = [...]struct {
	name  string
	known Known
}{
	{"host", KnownHost},
	{"content-length", KnownContentLength},
	{"transfer-encoding", KnownTransferEncoding},
	{"connection", KnownConnection},
	{"expect", KnownExpect},
	{"upgrade", KnownUpgrade},
	{"trailer", KnownTrailer},
	{"keep-alive", KnownKeepAlive},
	{"proxy-connection", KnownProxyConnection},
	{"cookie", KnownCookie},
	{"set-cookie", KnownSetCookie},
	{"content-type", KnownContentType},
	{"x-request-id", KnownXRequestID},
	{"x-forwarded-for", KnownXForwardedFor},
	{"x-forwarded-proto", KnownXForwardedProto},
	{"x-forwarded-port", KnownXForwardedPort},
	{"x-request-start", KnownXRequestStart},
	{"forwarded", KnownForwarded},
	{"x-forwarded-host", KnownXForwardedHost},
}

// maxKnownLen is the length of the longest known name.
const maxKnownLen = len("transfer-encoding")

// knownWord is one known name as knownName compares it: the words it
// loads from a name of that length, and the 0x20 bits of the letters.
type knownWord struct {
	want, fold [3]uint64
	known      Known
}

// knownWords are the knownNames by length.
var knownWords = makeKnownWords()

func makeKnownWords() (t [maxKnownLen + 1][]knownWord) {
	for _, kn := range knownNames {
		name := []byte(kn.name)
		fold := make([]byte, len(name))
		for i, c := range name {
			if 'a' <= c && c <= 'z' {
				fold[i] = 0x20
			}
		}
		var e knownWord
		e.known = kn.known
		n := len(name)
		if n >= 8 {
			e.want = [3]uint64{binary.LittleEndian.Uint64(name), binary.LittleEndian.Uint64(name[n-8:])}
			e.fold = [3]uint64{binary.LittleEndian.Uint64(fold), binary.LittleEndian.Uint64(fold[n-8:])}
			if n > 16 {
				e.want[2], e.fold[2] = binary.LittleEndian.Uint64(name[8:]), binary.LittleEndian.Uint64(fold[8:])
			}
		} else {
			e.want = [3]uint64{uint64(binary.LittleEndian.Uint32(name)), uint64(binary.LittleEndian.Uint32(name[n-4:]))}
			e.fold = [3]uint64{uint64(binary.LittleEndian.Uint32(fold)), uint64(binary.LittleEndian.Uint32(fold[n-4:]))}
		}
		t[n] = append(t[n], e)
	}
	return t
}

// hopKnown reports the fixed hop-by-hop names other than Connection,
// Upgrade and the framing fields, which callers handle themselves.
func hopKnown(k Known) bool {
	switch k {
	case KnownTE, KnownTrailer, KnownKeepAlive, KnownProxyConnection:
		return true
	}
	return false
}

// KnownOf classifies a field name, in any case, as the parsers do: the
// HTTP/2 side classifies the names it decodes with it.
func KnownOf(name []byte) Known { return knownName(name) }

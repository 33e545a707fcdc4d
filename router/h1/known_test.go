package h1

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// knownNameRef is knownName byte by byte, the way EqualFold compares.
func knownNameRef(name []byte) Known {
	if EqualFold(name, "te") {
		return KnownTE
	}
	if EqualFold(name, "via") {
		return KnownVia
	}
	for _, kn := range knownNames {
		if EqualFold(name, kn.name) {
			return kn.known
		}
	}
	return KnownOther
}

// TestKnownName checks the word-at-a-time compare against EqualFold: every
// known name in random cases, and with each byte replaced by every value.
func TestKnownName(t *testing.T) {
	t.Parallel()
	names := []string{"te", "via", "user-agent", "accept", "x-forwarded-fo", "content-lengths", ""}
	for _, kn := range knownNames {
		names = append(names, kn.name)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for _, name := range names {
		for range 20 {
			b := []byte(name)
			for i, c := range b {
				if 'a' <= c && c <= 'z' && rng.IntN(2) == 0 {
					b[i] = c - 'a' + 'A'
				}
			}
			for i := range b {
				orig := b[i]
				for v := range 256 {
					b[i] = byte(v)
					if got, want := knownName(b), knownNameRef(b); got != want {
						t.Fatalf("knownName(%q) = %d, want %d", b, got, want)
					}
				}
				b[i] = orig
			}
		}
	}
}

// TestValidValue checks the word-at-a-time value check against a byte loop,
// with every byte value at every position of values around a word long.
func TestValidValue(t *testing.T) {
	t.Parallel()
	for n := 1; n <= 20; n++ {
		v := make([]byte, n)
		for i := range v {
			v[i] = 'a' + byte(i)
		}
		for i := range v {
			for c := range 256 {
				v[i] = byte(c)
				if got, want := validValue(v), validBytes(v); got != want {
					t.Fatalf("validValue(%q) = %v, want %v", v, got, want)
				}
			}
			v[i] = 0x80 // high bytes around the checked one must not hide it
		}
	}
}

// TestFieldLine checks Field.Line: set exactly for "Name: Value" CRLF
// lines, equal to them, and adjacent for consecutive fields.
func TestFieldLine(t *testing.T) {
	t.Parallel()
	in := "GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\nX-B:2\r\nX-C:  3\r\nX-D: 4 \r\nX-E: 5\nX-F: \r\nX-G:\t6\r\nX-H: 7\r\n\r\n"
	canonical := map[string]bool{"Host": true, "X-A": true, "X-F": true, "X-H": true}
	lim := testLimits()
	var r Request
	if err := NewReader(strings.NewReader(in), 0).ReadRequest(&r, &lim); err != nil {
		t.Fatalf("sent %q: %v", in, err)
	}
	for i, f := range r.Fields {
		name := string(f.Name)
		if (f.Line != nil) != canonical[name] {
			t.Fatalf("sent %q: field %s has Line %q", in, name, f.Line)
		}
		if f.Line != nil && string(f.Line) != name+": "+string(f.Value)+"\r\n" {
			t.Fatalf("sent %q: field %s has Line %q", in, name, f.Line)
		}
		if i > 0 && f.Line != nil && r.Fields[i-1].Line != nil {
			prev := r.Fields[i-1].Line
			if cap(prev)-len(prev) != cap(f.Line) {
				t.Fatalf("sent %q: lines of %s and %s not adjacent", in, r.Fields[i-1].Name, name)
			}
		}
	}
}

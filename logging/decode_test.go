package logging

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// field is one key=value pair of a decoded router line.
type field struct{ key, val string }

// decodedLine is a router line split by decodeLine.
type decodedLine struct {
	time   string
	source string
	fields []field
}

// get returns the value of key and whether the line has it.
func (d decodedLine) get(key string) (string, bool) {
	for _, f := range d.fields {
		if f.key == key {
			return f.val, true
		}
	}
	return "", false
}

// keys returns the keys of d in order.
func (d decodedLine) keys() []string {
	out := make([]string, len(d.fields))
	for i, f := range d.fields {
		out[i] = f.key
	}
	return out
}

// decodeLine is a small strict logfmt-style decoder for router lines, as a
// log pipeline would read them: "TIME SOURCE: k=v k="quoted" ...\n". Quoted
// values understand \" \\ and \uXXXX (as JSON: the rune, UTF-8 encoded);
// unquoted values are taken literally and may not contain '"'. It rejects
// anything else, a line that is not valid UTF-8 included (SPEC.md section
// 7), so a test passing through it shows the line is well formed.
func decodeLine(s string) (decodedLine, error) {
	var d decodedLine
	if !utf8.ValidString(s) {
		return d, errors.New("line is not valid UTF-8")
	}
	body, ok := strings.CutSuffix(s, "\n")
	if !ok {
		return d, errors.New("line does not end in \\n")
	}
	if strings.ContainsAny(body, "\n\r") {
		return d, errors.New("line contains a line break")
	}
	d.time, body, ok = strings.Cut(body, " ")
	if !ok {
		return d, errors.New("no space after the time")
	}
	d.source, body, ok = strings.Cut(body, ": ")
	if !ok {
		return d, errors.New(`no ": " after the source`)
	}
	for body != "" {
		var f field
		var err error
		f, body, err = decodeField(body)
		if err != nil {
			return d, fmt.Errorf("field %d: %w", len(d.fields), err)
		}
		d.fields = append(d.fields, f)
	}
	return d, nil
}

// decodeField decodes the first key=value of s and returns the rest after
// the separating space.
func decodeField(s string) (field, string, error) {
	var f field
	eq := strings.IndexByte(s, '=')
	if eq <= 0 {
		return f, "", fmt.Errorf("no key= in %q", s)
	}
	f.key, s = s[:eq], s[eq+1:]
	if strings.ContainsAny(f.key, " \"\\") {
		return f, "", fmt.Errorf("bad key %q", f.key)
	}
	var rest string
	if strings.HasPrefix(s, `"`) {
		val, n, err := unquote(s)
		if err != nil {
			return f, "", fmt.Errorf("key %s: %w", f.key, err)
		}
		f.val, rest = val, s[n:]
	} else {
		end := strings.IndexByte(s, ' ')
		if end < 0 {
			end = len(s)
		}
		f.val, rest = s[:end], s[end:]
		if strings.ContainsAny(f.val, `"=`) {
			return f, "", fmt.Errorf("key %s: bad unquoted value %q", f.key, f.val)
		}
	}
	if rest == "" {
		return f, "", nil
	}
	after, ok := strings.CutPrefix(rest, " ")
	if !ok || after == "" {
		return f, "", fmt.Errorf("key %s: want one space between fields, have %q", f.key, rest)
	}
	return f, after, nil
}

// unquote decodes the quoted value at the start of s and returns it with
// the number of bytes it took, quotes included.
func unquote(s string) (string, int, error) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return b.String(), i + 1, nil
		case c < 0x20 || c == 0x7f:
			return "", 0, fmt.Errorf("raw control byte %#x inside quotes", c)
		case c != '\\':
			b.WriteByte(c)
			continue
		}
		if i+1 >= len(s) {
			return "", 0, errors.New("backslash at the end")
		}
		i++
		switch s[i] {
		case '"', '\\':
			b.WriteByte(s[i])
		case 'u':
			if i+4 >= len(s) {
				return "", 0, fmt.Errorf("bad \\u escape at %d", i)
			}
			v, err := strconv.ParseUint(s[i+1:i+5], 16, 16)
			if err != nil {
				return "", 0, fmt.Errorf("bad \\u escape at %d: %w", i, err)
			}
			if utf16.IsSurrogate(rune(v)) {
				return "", 0, fmt.Errorf("surrogate \\u escape at %d", i)
			}
			b.WriteRune(rune(v))
			i += 4
		default:
			return "", 0, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return "", 0, errors.New("unterminated quote")
}

// percentInvalid is what SPEC.md section 7 says a path is written as:
// each byte that is not part of valid UTF-8 (one utf8.DecodeRune step
// returning RuneError of width 1) as %XX in upper case, the rest as it is.
// It is written apart from the appender, with the standard library.
func percentInvalid(p string) string {
	var b strings.Builder
	for len(p) > 0 {
		r, n := utf8.DecodeRuneInString(p)
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "%%%02X", p[0])
		} else {
			b.WriteString(p[:n])
		}
		p = p[n:]
	}
	return b.String()
}

// replaceInvalid is what SPEC.md section 7 says a value other than path
// decodes to: each byte that is not part of valid UTF-8 becomes U+FFFD,
// as ranging over a string sees it.
func replaceInvalid(v string) string {
	return string([]rune(v))
}

// percentDecodeHigh reverses percentInvalid for a path that had no '%' of
// its own: every %XX with XX from 80 up becomes the byte XX again (the
// appender never percent-encodes an ASCII byte).
func percentDecodeHigh(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '%' && i+2 < len(p) {
			if v, err := strconv.ParseUint(p[i+1:i+3], 16, 8); err == nil && v >= 0x80 {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

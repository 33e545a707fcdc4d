package logging

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
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
// values understand \" \\ and \u00NN; unquoted values are taken literally
// and may not contain '"'. It rejects anything else, so a test passing
// through it shows the line is well formed.
func decodeLine(s string) (decodedLine, error) {
	var d decodedLine
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
			if i+4 >= len(s) || s[i+1:i+3] != "00" {
				return "", 0, fmt.Errorf("bad \\u escape at %d", i)
			}
			v, err := strconv.ParseUint(s[i+3:i+5], 16, 8)
			if err != nil {
				return "", 0, fmt.Errorf("bad \\u escape at %d: %w", i, err)
			}
			b.WriteByte(byte(v))
			i += 4
		default:
			return "", 0, fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return "", 0, errors.New("unterminated quote")
}

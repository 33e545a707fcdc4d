package h1

// tokenTable marks the bytes allowed in an RFC 9110 token (tchar).
var tokenTable = makeTokenTable()

func makeTokenTable() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
		t[c-'a'+'A'] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}

// isToken reports whether b is a non-empty RFC 9110 token.
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !tokenTable[c] {
			return false
		}
	}
	return true
}

// lower folds an ASCII letter to lower case.
func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// EqualFold reports whether a equals the lower-case ASCII name, ignoring
// the case of a.
func EqualFold(a []byte, name string) bool {
	if len(a) != len(name) {
		return false
	}
	for i := range a {
		if lower(a[i]) != name[i] {
			return false
		}
	}
	return true
}

// HasPrefixFold reports whether b starts with the lower-case ASCII prefix,
// ignoring the case of b.
func HasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && EqualFold(b[:len(prefix)], prefix)
}

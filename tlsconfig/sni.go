package tlsconfig

import (
	"fmt"
	"strings"
)

// normalizeSNI returns name in the form domains are kept in: ASCII letters
// lower case (as the router folds Host; other bytes are left alone, so no
// Unicode folding can map a strange name onto a domain) and one trailing
// dot dropped (crypto/tls refuses a trailing dot in SNI already; Host may
// have one). It allocates only when there is an upper-case letter.
//
// A name ending in two dots has an empty label and is no domain: it
// normalizes to "", so normalizing twice gives what normalizing once did.
func normalizeSNI(name string) string {
	if strings.HasSuffix(name, "..") {
		return ""
	}
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return lowerASCII(name)
		}
	}
	return name
}

// lowerASCII folds the ASCII upper-case letters of s.
func lowerASCII(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// lookup returns the app whose domain is the normalized name, exact
// domains first, then the longest matching wildcard (SPEC.md section 4.3).
func (s *Store) lookup(name string) *site {
	if st, ok := s.exact[name]; ok {
		return st
	}
	for i := range s.wild {
		w := &s.wild[i]
		if len(name) > len(w.suffix) && strings.HasSuffix(name, w.suffix) {
			return w.site
		}
	}
	return nil
}

// addDomains indexes the app's domains.
func (s *Store) addDomains(st *site, domains []string) error {
	for _, d := range domains {
		d = normalizeSNI(d)
		if suffix, ok := strings.CutPrefix(d, "*"); ok && strings.HasPrefix(suffix, ".") {
			for _, w := range s.wild {
				if w.suffix == suffix {
					return fmt.Errorf("domain %s: %w (also app %s)", d, ErrDuplicateDomain, w.site.name)
				}
			}
			s.wild = append(s.wild, wildDomain{suffix: suffix, site: st})
			continue
		}
		if other, dup := s.exact[d]; dup {
			return fmt.Errorf("domain %s: %w (also app %s)", d, ErrDuplicateDomain, other.name)
		}
		s.exact[d] = st
	}
	return nil
}

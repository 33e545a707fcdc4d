package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// oneOf refuses a value that is not one of allowed, listing them.
func (d *decoder) oneOf(n *yaml.Node, key, what, value string, allowed []string) {
	for _, a := range allowed {
		if value == a {
			return
		}
	}
	d.problem(n, key, "bad %s %q: want %s", what, value, orList(allowed))
}

// orList writes a, b or c.
func orList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}

// isToken reports whether s is one non-empty word of printable characters
// without spaces, as the router line's source token must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

// addrProblem checks a host:port address with a numeric port of at least
// minPort; the host may be empty (all interfaces), an IP or a host name.
// It returns "" when addr is good.
func addrProblem(addr string, minPort int) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Sprintf("bad address %q: want host:port such as 127.0.0.1:8080", addr)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || int(p) < minPort {
		return fmt.Sprintf("bad port %q in %q: want a number from %d to 65535", port, addr, minPort)
	}
	if host == "" {
		return ""
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return ""
	}
	if msg := hostNameProblem(strings.ToLower(host), true); msg != "" {
		return fmt.Sprintf("bad host %q in %q: %s", host, addr, msg)
	}
	return ""
}

// anyPort reports whether addr asks for any free port (port 0), which
// several listeners may do at once.
func anyPort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && strings.Trim(port, "0") == ""
}

// domainProblem checks an app domain: lower case, a DNS name, no trailing
// dot, no port, a wildcard only as a leading "*." before at least two
// labels. It returns "" when s is good.
func domainProblem(s string) string {
	switch lower := strings.ToLower(s); {
	case s == "":
		return "empty domain: want a host name such as shop.example.com"
	case s != lower:
		return fmt.Sprintf("domain %q is not lower case: write %q", s, lower)
	case strings.HasSuffix(s, "."):
		return fmt.Sprintf("domain %q ends with a dot: write %q", s, strings.TrimRight(s, "."))
	case strings.Contains(s, ":"):
		host, _, _ := strings.Cut(s, ":")
		return fmt.Sprintf("domain %q has a port: write the host name only, %q", s, host)
	}
	name := s
	if rest, ok := strings.CutPrefix(s, "*."); ok {
		if !strings.Contains(rest, ".") {
			return fmt.Sprintf("wildcard domain %q: want \"*.\" followed by at least two labels, such as \"*.example.com\"", s)
		}
		name = rest
	}
	if strings.Contains(name, "*") {
		return fmt.Sprintf("domain %q: a wildcard is allowed only as a leading \"*.\", such as \"*.example.com\"", s)
	}
	if len(s) > 253 {
		return fmt.Sprintf("domain %q is longer than 253 characters", s)
	}
	if msg := hostNameProblem(name, false); msg != "" {
		return fmt.Sprintf("bad domain %q: %s", s, msg)
	}
	return ""
}

// hostNameProblem checks a lower-case DNS name: at most 253 characters,
// labels of 1 to 63 characters of a-z, 0-9 and - (and _ when underscore,
// as container names have), not starting or ending with -.
func hostNameProblem(name string, underscore bool) string {
	if len(name) > 253 {
		return "longer than 253 characters"
	}
	for label := range strings.SplitSeq(name, ".") {
		if msg := labelProblem(label, underscore); msg != "" {
			return msg
		}
	}
	return ""
}

// labelProblem checks one label of a DNS name.
func labelProblem(label string, underscore bool) string {
	switch {
	case label == "":
		return "empty label: want labels separated by single dots"
	case len(label) > 63:
		return fmt.Sprintf("label %q is longer than 63 characters", label)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Sprintf("label %q starts or ends with -", label)
	}
	for _, r := range label {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || underscore && r == '_'
		if !ok && underscore {
			return fmt.Sprintf("label %q has %q: want a-z, 0-9, - and _", label, r)
		}
		if !ok {
			return fmt.Sprintf("label %q has %q: want a-z, 0-9 and -", label, r)
		}
	}
	return ""
}

// urlProblem checks an error or maintenance page URL: absolute, http or
// https.
func urlProblem(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Sprintf("bad URL %q: want an absolute http:// or https:// URL", s)
	}
	return ""
}

// resolverProblem checks HEROKU_EXTRA_RESOLVER: IP or IP:port (an IPv6
// address with a port in brackets).
func resolverProblem(s string) string {
	if _, err := netip.ParseAddr(s); err == nil {
		return ""
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Port() != 0 {
		return ""
	}
	return fmt.Sprintf("bad resolver %q: want IP or IP:port, such as 10.0.0.2, 10.0.0.2:53 or [fd00::2]:53", s)
}

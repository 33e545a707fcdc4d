package tlsconfig

import (
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Feature names that choose a TLS profile (SPEC.md section 3).
const (
	featureSalesforce = "spaces-tls-salesforce"
	featureModern     = "spaces-tls-modern"
	featureDefault    = "" // chosen by the absence of a profile feature
	featureStrict     = "spaces-strict-tls"
	featureLegacy     = "spaces-tls-legacy"
)

// ErrRetiredProfile is returned by ProfileFor (and New) for the feature
// spaces-tls-legacy, retired in April 2023 (SPEC.md section 3).
var ErrRetiredProfile = errors.New("retired TLS profile")

// ErrUnknownSuite is returned when a profile names a cipher suite that
// crypto/tls does not implement for the profile's versions.
var ErrUnknownSuite = errors.New("unknown cipher suite")

// profileSpec is one row of SPEC.md section 5.
type profileSpec struct {
	name       string   // short name, as in Profile.Names
	feature    string   // the app feature that selects it
	versions   []uint16 // protocol versions, ascending
	suites     []string // TLS 1.2-and-older suites in SPEC.md's short form
	deprecated bool     // accepted with a warning
}

// profiles is the table of SPEC.md section 5, in table order. The suite
// names are resolved when a profile is used (resolveSuites), not at init.
var profiles = [...]profileSpec{
	{
		name: "salesforce", feature: featureSalesforce,
		versions: []uint16{tls.VersionTLS12, tls.VersionTLS13},
		suites: []string{
			"ECDHE_RSA_AES_256_GCM_SHA384", "ECDHE_RSA_AES_128_GCM_SHA256", "ECDHE_RSA_AES_128_CBC_SHA256",
			"RSA_AES_256_GCM_SHA384", "RSA_AES_128_GCM_SHA256", "RSA_AES_128_CBC_SHA256",
			"RSA_AES_256_CBC_SHA", "RSA_AES_128_CBC_SHA",
		},
	},
	{
		name: "modern", feature: featureModern,
		versions: []uint16{tls.VersionTLS12, tls.VersionTLS13},
		suites: []string{
			"ECDHE_ECDSA_CHACHA20_POLY1305", "ECDHE_RSA_CHACHA20_POLY1305",
			"ECDHE_ECDSA_AES_128_GCM_SHA256", "ECDHE_RSA_AES_128_GCM_SHA256",
			"ECDHE_ECDSA_AES_256_GCM_SHA384", "ECDHE_RSA_AES_256_GCM_SHA384",
			"ECDHE_ECDSA_AES_128_CBC_SHA256",
		},
	},
	{
		name: "default", feature: featureDefault,
		versions: []uint16{tls.VersionTLS12, tls.VersionTLS13},
		suites: []string{
			"ECDHE_ECDSA_CHACHA20_POLY1305", "ECDHE_RSA_CHACHA20_POLY1305",
			"ECDHE_ECDSA_AES_128_GCM_SHA256", "ECDHE_RSA_AES_128_GCM_SHA256",
			"ECDHE_ECDSA_AES_256_GCM_SHA384", "ECDHE_RSA_AES_256_GCM_SHA384",
			"ECDHE_ECDSA_AES_128_CBC_SHA256", "ECDHE_RSA_AES_128_CBC_SHA256",
			"RSA_AES_128_GCM_SHA256", "RSA_AES_128_CBC_SHA256", "RSA_AES_256_GCM_SHA384",
			"ECDHE_RSA_AES_128_CBC_SHA", "ECDHE_RSA_AES_256_CBC_SHA",
		},
	},
	{
		name: "strict", feature: featureStrict, deprecated: true,
		versions: []uint16{tls.VersionTLS11, tls.VersionTLS12},
		suites: []string{
			"ECDHE_ECDSA_CHACHA20_POLY1305", "ECDHE_RSA_CHACHA20_POLY1305",
			"ECDHE_ECDSA_AES_128_GCM_SHA256", "ECDHE_RSA_AES_128_GCM_SHA256",
			"ECDHE_ECDSA_AES_256_GCM_SHA384", "ECDHE_RSA_AES_256_GCM_SHA384",
			"ECDHE_ECDSA_AES_128_CBC_SHA256", "ECDHE_RSA_AES_128_CBC_SHA", "ECDHE_RSA_AES_256_CBC_SHA",
		},
	},
}

// defaultProfile indexes the profile of an app whose features name none.
const defaultProfile = 2

// Profile is the TLS profile of one app: one profile of SPEC.md section 5,
// or the union of several.
type Profile struct {
	// Names are the short names of the profiles united, in SPEC.md table
	// order ("salesforce", "modern", "default", "strict").
	Names []string
	// Versions are the protocol versions listed, ascending.
	Versions []uint16
	// MinVersion and MaxVersion bound Versions; crypto/tls serves the whole
	// range, so a union with a gap is served as min..max.
	MinVersion, MaxVersion uint16
	// Suites are the TLS 1.2-and-older cipher suites; order carries no
	// meaning (crypto/tls ignores it). TLS 1.3 suites are fixed by Go.
	Suites []uint16
	// HTTP2 is false when Suites lack the suite HTTP/2 requires (ECDHE with
	// AES_128_GCM, RFC 9113 section 9.2.2); such a profile never offers h2.
	HTTP2 bool
}

// ProfileFor returns the profile for an app's feature list: the union of
// the profiles its TLS features name (versions and suites united), or the
// default profile when it names none. Other features are ignored. The
// warnings are for the operational log (spaces-strict-tls is deprecated);
// spaces-tls-legacy is an error wrapping ErrRetiredProfile. An omitted
// features key is the caller's business (config turns it into
// [spaces-tls-salesforce]).
func ProfileFor(features []string) (Profile, []string, error) {
	var picked [len(profiles)]bool
	named := false
	for _, f := range features {
		if f == featureLegacy {
			return Profile{}, nil, fmt.Errorf("feature %s: %w (April 2023): choose %s or %s",
				featureLegacy, ErrRetiredProfile, featureSalesforce, featureModern)
		}
		if i := profileIndex(f); i >= 0 {
			picked[i], named = true, true
		}
	}
	if !named {
		picked[defaultProfile] = true
	}
	var specs []*profileSpec
	var warnings []string
	for i := range profiles {
		if !picked[i] {
			continue
		}
		specs = append(specs, &profiles[i])
		if profiles[i].deprecated {
			warnings = append(warnings, fmt.Sprintf("%s is deprecated; use %s", profiles[i].feature, featureModern))
		}
	}
	p, err := unite(specs)
	return p, warnings, err
}

// profileIndex returns the index in profiles of the profile feature f, or
// -1 when f names no profile.
func profileIndex(f string) int {
	if f == "" {
		return -1
	}
	for i := range profiles {
		if profiles[i].feature == f {
			return i
		}
	}
	return -1
}

// unite builds the union of specs, resolving their suite names.
func unite(specs []*profileSpec) (Profile, error) {
	known := implementedSuites()
	var p Profile
	for _, s := range specs {
		ids, err := resolveSuites(known, s.suites, s.versions)
		if err != nil {
			return Profile{}, fmt.Errorf("TLS profile %s: %w", s.name, err)
		}
		p.Names = append(p.Names, s.name)
		p.Versions = appendNew(p.Versions, s.versions...)
		p.Suites = appendNew(p.Suites, ids...)
	}
	slices.Sort(p.Versions)
	p.MinVersion, p.MaxVersion = p.Versions[0], p.Versions[len(p.Versions)-1]
	p.HTTP2 = slices.ContainsFunc(p.Suites, isHTTP2Required)
	return p, nil
}

// appendNew appends to dst the values of add it does not hold yet.
func appendNew(dst []uint16, add ...uint16) []uint16 {
	for _, v := range add {
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}

// implementedSuites maps the IANA name of every TLS 1.2-and-older suite
// crypto/tls implements to the suite. The insecure list is included because
// SPEC.md's profiles name RSA key exchange and CBC_SHA256 suites, which Go
// files there; they are served only when a profile lists them.
func implementedSuites() map[string]*tls.CipherSuite {
	m := make(map[string]*tls.CipherSuite)
	for _, list := range [][]*tls.CipherSuite{tls.CipherSuites(), tls.InsecureCipherSuites()} {
		for _, s := range list {
			if slices.ContainsFunc(s.SupportedVersions, func(v uint16) bool { return v <= tls.VersionTLS12 }) {
				m[s.Name] = s
			}
		}
	}
	return m
}

// resolveSuites turns SPEC.md short names into suite IDs. A name crypto/tls
// does not know, or a suite usable with none of versions, is an error.
func resolveSuites(known map[string]*tls.CipherSuite, names []string, versions []uint16) ([]uint16, error) {
	ids := make([]uint16, 0, len(names))
	for _, short := range names {
		iana, ok := ianaName(short)
		s := known[iana]
		if !ok || s == nil {
			return nil, fmt.Errorf("suite %s (%s): %w: crypto/tls does not implement it", short, iana, ErrUnknownSuite)
		}
		if !slices.ContainsFunc(versions, func(v uint16) bool { return slices.Contains(s.SupportedVersions, v) }) {
			return nil, fmt.Errorf("suite %s: %w: not usable with the profile's versions", short, ErrUnknownSuite)
		}
		ids = append(ids, s.ID)
	}
	return ids, nil
}

// ianaName maps SPEC.md's short suite name to the IANA name crypto/tls
// uses: ECDHE_RSA_AES_256_GCM_SHA384 → TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
// ECDHE_ECDSA_CHACHA20_POLY1305 → TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256.
func ianaName(short string) (string, bool) {
	for _, kx := range []string{"ECDHE_ECDSA_", "ECDHE_RSA_", "RSA_"} {
		if rest, ok := strings.CutPrefix(short, kx); ok && rest != "" {
			if rest == "CHACHA20_POLY1305" {
				rest += "_SHA256" // the PRF hash, left out by the short form
			}
			return "TLS_" + kx + "WITH_" + rest, true
		}
	}
	return "TLS_" + short, false
}

// isHTTP2Required reports whether id is a suite HTTP/2 requires a server
// to have (ECDHE with AES_128_GCM; RFC 9113 section 9.2.2, SPEC.md
// section 5).
func isHTTP2Required(id uint16) bool {
	return id == tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 || id == tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
}

// http2Allowed reports whether HTTP/2 may run over suite id: an ephemeral
// key exchange and an AEAD, the suites outside RFC 9113 Appendix A (which
// Go's HTTP/2 server refuses with INADEQUATE_SECURITY).
func http2Allowed(id uint16) bool {
	switch id {
	case tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256:
		return true
	}
	return false
}

// ecdsaSigned reports whether suite id authenticates with an ECDSA (or
// Ed25519) certificate rather than an RSA one.
func ecdsaSigned(id uint16) bool {
	return strings.HasPrefix(tls.CipherSuiteName(id), "TLS_ECDHE_ECDSA_")
}

// negotiatedVersion returns the version crypto/tls will pick for a client
// offering versions (in its order of preference) under p, or 0 for none:
// the first one within p's range, as crypto/tls's mutualVersion does.
func (p *Profile) negotiatedVersion(versions []uint16) uint16 {
	for _, v := range versions {
		if p.MinVersion <= v && v <= p.MaxVersion {
			return v
		}
	}
	return 0
}

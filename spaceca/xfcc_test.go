package spaceca

import (
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// rawHash is the Hash of a certificate whose DER is "der".
var rawHash = func() string { s := sha256.Sum256([]byte("der")); return hex.EncodeToString(s[:]) }()

// TestAppendXFCC: golden values in Envoy's format.
func TestAppendXFCC(t *testing.T) {
	t.Parallel()
	mustURL := func(s string) *url.URL {
		u, err := url.Parse(s)
		require.NoError(t, err)
		return u
	}
	cases := []struct {
		name    string
		subject pkix.Name
		uris    []*url.URL
		dns     []string
		want    string // after "Hash=<rawHash>;"
	}{
		{"space certificate", pkix.Name{CommonName: "laptop", OrganizationalUnit: []string{"shop"}, Organization: []string{"my-space"}},
			[]*url.URL{mustURL("spiffe://my-space/apps/shop/clients/0123456789abcdef")}, nil,
			`Subject="CN=laptop,OU=shop,O=my-space";URI=spiffe://my-space/apps/shop/clients/0123456789abcdef`},
		{"no URI keeps the key", pkix.Name{CommonName: "a"}, nil, nil, `Subject="CN=a";URI=`},
		{"DNS names, each its own key", pkix.Name{CommonName: "a"}, nil, []string{"a.example.com", "*.b.example.com"},
			`Subject="CN=a";URI=;DNS=a.example.com;DNS=*.b.example.com`},
		{"first URI only", pkix.Name{}, []*url.URL{mustURL("spiffe://s/a"), mustURL("spiffe://s/b")}, nil, `Subject="";URI=spiffe://s/a`},
		{"URI with ; and = is quoted", pkix.Name{}, []*url.URL{mustURL("https://h/p;v=1?a=b,c")}, nil, `Subject="";URI="https://h/p;v=1?a=b,c"`},
		{"URI with a quote", pkix.Name{}, []*url.URL{mustURL(`https://h/?q="x"\`)}, nil, `Subject="";URI="https://h/?q=%22x%22%5C"`},
		{"comma in a name", pkix.Name{CommonName: "Doe, John"}, nil, nil, `Subject="CN=Doe\, John";URI=`},
		{"quote and backslash", pkix.Name{CommonName: `say "hi" \`}, nil, nil, `Subject="CN=say \22hi\22 \5C";URI=`},
		{"non-ASCII", pkix.Name{CommonName: "café"}, nil, nil, `Subject="CN=caf\C3\A9";URI=`},
		{"control bytes", pkix.Name{CommonName: "a\r\nb\x00\x7f"}, nil, nil, `Subject="CN=a\0D\0Ab\00\7F";URI=`},
		{"RFC 4514 escapes kept", pkix.Name{CommonName: " #a+b<c>;d "}, nil, nil, `Subject="CN=\ #a\+b\<c\>\;d\ ";URI=`},
		{"DNS SAN that is not a host name", pkix.Name{}, nil, []string{"ok.example", "bad\"name", "bad;name", "sp ace", ""},
			`Subject="";URI=;DNS=ok.example`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			leaf := &x509.Certificate{Raw: []byte("der"), Subject: tc.subject, URIs: tc.uris, DNSNames: tc.dns}
			got := string(AppendXFCC([]byte("x"), leaf))
			assert.Equal(t, "xHash="+rawHash+";"+tc.want, got)
		})
	}
}

// TestAppendXFCCIssued: the value for a certificate the space CA issued.
func TestAppendXFCCIssued(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := newCA(t, t.TempDir())
		c, err := ca.Issue("shop", "laptop")
		require.NoError(t, err)
		leaf := certOf(t, ca, c.ID)
		sum := sha256.Sum256(leaf.Raw)
		want := fmt.Sprintf(`Hash=%x;Subject="CN=laptop,OU=shop,O=my-space";URI=spiffe://my-space/apps/shop/clients/%s`, sum, c.ID)
		assert.Equal(t, want, string(AppendXFCC(nil, leaf)))
	})
}

// xfccPair is one key=value of an XFCC element, the value unquoted.
type xfccPair struct{ key, value string }

// parseXFCC parses an XFCC header value by Envoy's description: elements
// separated by ',', pairs by ';', key and value by the first '='; a value
// may be double-quoted, with '\"' standing for '"' inside. Separators
// inside quotes do not count.
func parseXFCC(s string) ([][]xfccPair, error) {
	var elems [][]xfccPair
	var pairs []xfccPair
	for len(s) > 0 {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("no key=value at %q", s)
		}
		key := s[:eq]
		if strings.ContainsAny(key, `,;"`) {
			return nil, fmt.Errorf("bad key %q", key)
		}
		s = s[eq+1:]
		var value string
		if strings.HasPrefix(s, `"`) {
			end := 1
			for ; end < len(s); end++ {
				if s[end] == '"' && s[end-1] != '\\' {
					break
				}
			}
			if end == len(s) {
				return nil, fmt.Errorf("unterminated quote in %q", s)
			}
			value = strings.ReplaceAll(s[1:end], `\"`, `"`)
			s = s[end+1:]
		} else {
			end := strings.IndexAny(s, ",;")
			if end < 0 {
				end = len(s)
			}
			value = s[:end]
			if strings.ContainsAny(value, `="`) {
				return nil, fmt.Errorf("unquoted value %q holds = or \"", value)
			}
			s = s[end:]
		}
		pairs = append(pairs, xfccPair{key, value})
		switch {
		case s == "":
		case s[0] == ';':
			s = s[1:]
		case s[0] == ',':
			elems, pairs = append(elems, pairs), nil
			s = s[1:]
		default:
			return nil, fmt.Errorf("junk after a value: %q", s)
		}
	}
	return append(elems, pairs), nil
}

// parseRFC4514 splits an RFC 4514 string into attribute type and value,
// undoing '\c' and '\XX' escapes. It handles one value per RDN, which is
// what the tests build.
func parseRFC4514(s string) ([]xfccPair, error) {
	var out []xfccPair
	if s == "" {
		return nil, nil
	}
	for {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("no type=value at %q", s)
		}
		typ := s[:eq]
		s = s[eq+1:]
		var value []byte
		for len(s) > 0 && s[0] != ',' && s[0] != '+' {
			if s[0] != '\\' {
				value, s = append(value, s[0]), s[1:]
				continue
			}
			if len(s) >= 3 && isHex(s[1]) && isHex(s[2]) {
				b, _ := hex.DecodeString(s[1:3])
				value, s = append(value, b[0]), s[3:]
				continue
			}
			if len(s) < 2 {
				return nil, fmt.Errorf("dangling backslash")
			}
			value, s = append(value, s[1]), s[2:]
		}
		out = append(out, xfccPair{typ, string(value)})
		if s == "" {
			return out, nil
		}
		s = s[1:]
	}
}

func isHex(b byte) bool { return '0' <= b && b <= '9' || 'a' <= b && b <= 'f' || 'A' <= b && b <= 'F' }

// FuzzXFCC: whatever the names in a certificate, the value is printable
// ASCII and parses back, by Envoy's rules, to the same values.
func FuzzXFCC(f *testing.F) {
	f.Add("laptop", "my-space", "spiffe://my-space/apps/shop/clients/0123456789abcdef", "a.example.com", "b", []byte("der"))
	f.Add(`Doe, John "JD" \`, "a;b=c", `https://h/p;v=1?a="b",c\`, `bad"dns`, "x y", []byte{})
	f.Add("café\r\n\x00", "\xff\xfe", "spiffe://s/é?\x7f", "*.ok", "", []byte{0})
	f.Fuzz(func(t *testing.T, cn, org, rawURI, dns1, dns2 string, raw []byte) {
		leaf := &x509.Certificate{Raw: raw, Subject: pkix.Name{CommonName: cn, Organization: []string{org}}, DNSNames: []string{dns1, dns2}}
		u, uriErr := url.Parse(rawURI)
		if uriErr == nil {
			leaf.URIs = []*url.URL{u}
		}
		out := string(AppendXFCC(nil, leaf))
		for i := 0; i < len(out); i++ {
			if out[i] < 0x20 || out[i] >= 0x7f {
				t.Fatalf("byte %#x at %d is not printable ASCII: %q", out[i], i, out)
			}
		}
		elems, err := parseXFCC(out)
		if err != nil {
			t.Fatalf("%q does not parse: %v", out, err)
		}
		if len(elems) != 1 {
			t.Fatalf("%q: %d elements, want 1", out, len(elems))
		}
		pairs := elems[0]
		if len(pairs) < 3 || pairs[0].key != "Hash" || pairs[1].key != "Subject" || pairs[2].key != "URI" {
			t.Fatalf("%q: keys are not Hash, Subject, URI, DNS...", out)
		}
		sum := sha256.Sum256(raw)
		if pairs[0].value != hex.EncodeToString(sum[:]) {
			t.Fatalf("Hash %q, want the SHA-256 of the DER", pairs[0].value)
		}

		attrs, err := parseRFC4514(pairs[1].value)
		if err != nil {
			t.Fatalf("Subject %q: %v", pairs[1].value, err)
		}
		// pkix writes each invalid UTF-8 byte as U+FFFD.
		var want []xfccPair
		if cn != "" {
			want = append(want, xfccPair{"CN", string([]rune(cn))})
		}
		want = append(want, xfccPair{"O", string([]rune(org))})
		assert.Equal(t, want, attrs, "Subject %q", pairs[1].value)

		gotURI := pairs[2].value
		if uriErr != nil {
			assert.Empty(t, gotURI)
		} else {
			assertPercentEncoded(t, u.String(), gotURI)
		}

		var wantDNS, gotDNS []string
		for _, d := range []string{dns1, dns2} {
			if hostName(d) {
				wantDNS = append(wantDNS, d)
			}
		}
		for _, p := range pairs[3:] {
			if p.key != "DNS" {
				t.Fatalf("%q: key %q after URI", out, p.key)
			}
			gotDNS = append(gotDNS, p.value)
		}
		assert.Equal(t, wantDNS, gotDNS)
	})
}

// assertPercentEncoded checks that got is want with exactly the bytes RFC
// 3986 does not allow in a URI percent-encoded.
func assertPercentEncoded(t *testing.T, want, got string) {
	t.Helper()
	j := 0
	for i := 0; i < len(want); i++ {
		b := want[i]
		if uriByte(b) {
			if j >= len(got) || got[j] != b {
				t.Fatalf("URI %q, want %q with unsafe bytes encoded", got, want)
			}
			j++
			continue
		}
		if enc := fmt.Sprintf("%%%02X", b); !strings.HasPrefix(got[j:], enc) {
			t.Fatalf("URI %q: byte %#x of %q is not written %s", got, b, want, enc)
		}
		j += 3
	}
	if j != len(got) {
		t.Fatalf("URI %q, want %q: extra bytes", got, want)
	}
}

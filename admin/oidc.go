package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// errProviderDown: the identity provider could not be reached, or
// answered 5xx; protected routes answer 503 (SPEC.md section 13).
var errProviderDown = errors.New("the identity provider is unreachable")

// providerError is a failed request to the identity provider: no answer,
// or a 5xx one. The provider's HTTP client returns it, so a failure deep
// inside go-oidc or x/oauth2 can still be told from a bad token.
type providerError struct{ err error }

func (e *providerError) Error() string { return "identity provider: " + e.err.Error() }
func (e *providerError) Unwrap() error { return e.err }
func (e *providerError) Is(target error) bool {
	return target == errProviderDown
}

// markTransport turns transport failures and 5xx answers of the provider
// into *providerError.
type markTransport struct{ base http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t markTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, &providerError{err}
	}
	if resp.StatusCode >= 500 {
		resp.Body.Close()
		return nil, &providerError{fmt.Errorf("%s %s answered %s", req.Method, req.URL.Redacted(), resp.Status)}
	}
	return resp, nil
}

// provider is the OpenID Connect provider, looked up when first needed:
// the router starts while the provider is down, and protected routes
// answer 503 until its discovery document can be read.
type provider struct {
	issuer, clientID, secret, redirect string
	client                             *http.Client
	now                                func() time.Time
	retry                              time.Duration // least time between two failed lookups

	// mu guards the fields below.
	mu       sync.Mutex
	p        *oidc.Provider
	verifier *oidc.IDTokenVerifier
	oauth    *oauth2.Config
	failedAt time.Time // wall clock of the last failed lookup
}

// ctx returns a context that makes go-oidc and x/oauth2 use the
// provider's HTTP client.
func (pv *provider) ctx(parent context.Context) context.Context {
	return oidc.ClientContext(parent, pv.client)
}

// get returns the provider, looking it up if needed. A failure wraps
// errProviderDown.
func (pv *provider) get(ctx context.Context) (*oidc.Provider, *oidc.IDTokenVerifier, *oauth2.Config, error) {
	pv.mu.Lock()
	defer pv.mu.Unlock()
	if pv.p != nil {
		return pv.p, pv.verifier, pv.oauth, nil
	}
	if !pv.failedAt.IsZero() && time.Since(pv.failedAt) < pv.retry {
		return nil, nil, nil, errProviderDown
	}
	// The key set lives as long as the provider: go-oidc keeps the
	// context for its key fetches (only its values, not its deadline).
	p, err := oidc.NewProvider(pv.ctx(context.WithoutCancel(ctx)), pv.issuer)
	if err != nil {
		pv.failedAt = time.Now()
		return nil, nil, nil, fmt.Errorf("%w: discovery at %s: %w", errProviderDown, pv.issuer, err)
	}
	var meta struct {
		Scopes []string `json:"scopes_supported"`
		JWKS   string   `json:"jwks_uri"`
		Algs   []string `json:"id_token_signing_alg_values_supported"`
	}
	_ = p.Claims(&meta) // optional metadata
	scopes := []string{oidc.ScopeOpenID}
	// offline_access asks for a refresh token where the provider wants
	// it asked (Dex, Okta), so sessions can be re-checked without the
	// browser.
	for _, s := range []string{"profile", "email", "groups", oidc.ScopeOfflineAccess} {
		if slices.Contains(meta.Scopes, s) {
			scopes = append(scopes, s)
		}
	}
	pv.p = p
	// The verifier's key set is go-oidc's RemoteKeySet (an unknown kid
	// fetches the keys again), wrapped to tell an unreachable provider
	// from a bad signature: go-oidc keeps only the text of that error.
	keys := &keySet{oidc.NewRemoteKeySet(pv.ctx(context.WithoutCancel(ctx)), meta.JWKS)}
	pv.verifier = oidc.NewVerifier(pv.issuer, keys, &oidc.Config{ClientID: pv.clientID, Now: pv.now, SupportedSigningAlgs: meta.Algs})
	pv.oauth = &oauth2.Config{ClientID: pv.clientID, ClientSecret: pv.secret, RedirectURL: pv.redirect,
		Endpoint: p.Endpoint(), Scopes: scopes}
	return pv.p, pv.verifier, pv.oauth, nil
}

// identity is what an ID token says about a caller.
type identity struct {
	subject string
	name    string // email, preferred_username or name, for the log and the page
	groups  []string
	issued  time.Time
	expires time.Time
	nonce   string
}

// groupsTypeError: the groups claim is not a list of strings.
type groupsTypeError struct{ claim string }

func (e *groupsTypeError) Error() string {
	return fmt.Sprintf("the ID token's claim %q is not a list of strings", e.claim)
}

// verify checks an ID token's signature, issuer, audience and expiry
// (go-oidc; an unknown kid makes it fetch the provider's keys again) and
// reads the caller's identity. A provider that cannot be reached for its
// keys wraps errProviderDown.
func (pv *provider) verify(ctx context.Context, raw, groupsClaim string) (identity, error) {
	_, verifier, _, err := pv.get(ctx)
	if err != nil {
		return identity{}, err
	}
	var keyErr error
	tok, err := verifier.Verify(context.WithValue(pv.ctx(ctx), keyErrKey{}, &keyErr), raw)
	if err != nil {
		if keyErr != nil {
			return identity{}, keyErr
		}
		return identity{}, err
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return identity{}, err
	}
	id := identity{subject: tok.Subject, issued: tok.IssuedAt, expires: tok.Expiry, nonce: tok.Nonce}
	for _, k := range []string{"email", "preferred_username", "name"} {
		var s string
		if json.Unmarshal(claims[k], &s) == nil && s != "" {
			id.name = s
			break
		}
	}
	if g, ok := claims[groupsClaim]; ok && string(g) != "null" {
		if err := json.Unmarshal(g, &id.groups); err != nil {
			return identity{}, &groupsTypeError{groupsClaim}
		}
	}
	return id, nil
}

// keySet is the provider's key set; it notes a failure to reach the
// provider for its keys in the *error the context holds under keyErrKey.
type keySet struct{ remote *oidc.RemoteKeySet }

type keyErrKey struct{}

// VerifySignature implements oidc.KeySet.
func (k *keySet) VerifySignature(ctx context.Context, jwt string) ([]byte, error) {
	payload, err := k.remote.VerifySignature(ctx, jwt)
	if err != nil && errors.Is(err, errProviderDown) {
		if p, ok := ctx.Value(keyErrKey{}).(*error); ok {
			*p = err
		}
	}
	return payload, err
}

package spaceca

import (
	"encoding/json"
	"fmt"
)

// MarshalClient is the value of c under clients/<app>/<id> in a shared
// space (SPEC.md section 14): its meta.json, without the key, so every
// router of the space knows the certificate and whether it is revoked.
func MarshalClient(c Client) (string, error) {
	b, err := json.Marshal(toMeta(&c))
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// UnmarshalClient parses a value of MarshalClient; an error says what is
// wrong with it.
func UnmarshalClient(v string) (Client, error) {
	var m meta
	if err := json.Unmarshal([]byte(v), &m); err != nil {
		return Client{}, err
	}
	if !validID(m.ID) {
		return Client{}, fmt.Errorf("id %q: want 16 lower-case hex digits", m.ID)
	}
	return m.client()
}

// NewRevocations returns the set of the serials revoked among clients
// (nil when none is), at generation gen.
func NewRevocations(gen uint64, clients []Client) *Revocations {
	r := &Revocations{gen: gen, serials: map[string]struct{}{}}
	for _, c := range clients {
		if !c.RevokedAt.IsZero() && c.Serial != nil {
			r.serials[string(c.Serial.Bytes())] = struct{}{}
		}
	}
	if len(r.serials) == 0 {
		return nil
	}
	return r
}

// Union returns the serials revoked in r or o: r or o itself when the
// other is empty, else a new set whose generation is the sum of theirs.
func (r *Revocations) Union(o *Revocations) *Revocations {
	switch {
	case o.Len() == 0:
		return r
	case r.Len() == 0:
		return o
	}
	u := &Revocations{gen: r.gen + o.gen, serials: make(map[string]struct{}, len(r.serials)+len(o.serials))}
	for k := range r.serials {
		u.serials[k] = struct{}{}
	}
	for k := range o.serials {
		u.serials[k] = struct{}{}
	}
	return u
}

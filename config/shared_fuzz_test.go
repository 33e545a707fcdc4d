package config

import (
	"slices"
	"strings"
	"testing"
)

// FuzzBuildShared feeds BuildShared keys and values as an etcd of anyone's
// making could hold them, over a last build: it must not panic, and what
// it serves must hold together (every key either in force or refused,
// a domain held by one app, names unique, refusals in key order).
func FuzzBuildShared(f *testing.F) {
	f.Add("apps/shop", "domains: [shop.example.com]", "apps/blog", "domains: [shop.example.com]", "dynos/shop/web.1", "address: 127.0.0.1:5001")
	f.Add("space", "timeouts: {connect: 1s}", "apps/shop", "{domains: [a.example.com], dynos: []}", "maintenance/shop", "true")
	f.Add("apps/shop", "name: x", "dynos/shop/web 1", "address: x", "clients/shop/1", "{}")
	f.Add("apps/shop", "<<: *a", "space", "acme: {}", "other", "")
	local, err := Parse("space.yaml", []byte(storeFile))
	if err != nil {
		f.Fatal(err)
	}
	prev := BuildShared(local, []KV{
		{Key: "apps/shop", Value: "domains: [shop.example.com, a.example.com]", ModRevision: 1},
		{Key: "apps/blog", Value: "domains: [blog.example.com]", ModRevision: 2},
		{Key: "dynos/shop/web.1", Value: "address: 127.0.0.1:5001", ModRevision: 3},
	}, nil)
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2, k3, v3 string) {
		kvs := []KV{{k1, v1, 10}, {k2, v2, 11}, {k3, v3, 12}}
		if k1 == k2 || k2 == k3 || k1 == k3 {
			return // etcd keys are unique
		}
		s := BuildShared(local, kvs, prev)
		if s.Config == nil {
			t.Fatal("no config")
		}
		refused := map[string]bool{}
		for i, r := range s.Refused {
			refused[r.Key] = true
			if i > 0 && s.Refused[i-1].Key >= r.Key {
				t.Fatalf("refusals out of order: %v", s.Refused)
			}
			if r.Problem == "" {
				t.Fatalf("refusal of %s without a problem", r.Key)
			}
		}
		for _, kv := range kvs {
			_, in := s.inForce[kv.Key]
			ignored := strings.HasPrefix(kv.Key, KeyRouters) || strings.HasPrefix(kv.Key, KeyACME)
			if !in && !refused[kv.Key] && !ignored {
				t.Fatalf("key %q is neither in force nor refused", kv.Key)
			}
		}
		domains := map[string]string{}
		var names []string
		for _, a := range s.Config.Apps {
			names = append(names, a.Name)
			for _, d := range a.Domains {
				if other, ok := domains[d]; ok {
					t.Fatalf("domain %s served by %s and %s", d, other, a.Name)
				}
				domains[d] = a.Name
			}
		}
		if len(slices.Compact(slices.Clone(names))) != len(names) || !slices.IsSorted(names) {
			t.Fatalf("app names %v: want unique, sorted", names)
		}
	})
}

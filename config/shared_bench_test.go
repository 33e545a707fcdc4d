package config

import (
	"fmt"
	"testing"
)

// BenchmarkBuildShared is one build of a space of 200 apps with 5 dynos
// each after one dyno changed: what each applied change costs a router.
func BenchmarkBuildShared(b *testing.B) {
	local, err := Parse("space.yaml", []byte(storeFile))
	if err != nil {
		b.Fatal(err)
	}
	var kvs []KV
	rev := int64(1)
	for i := range 200 {
		kvs = append(kvs, KV{Key: fmt.Sprintf("apps/app-%03d", i), Value: fmt.Sprintf("domains: [app-%03d.example.com]\nfeatures: [spaces-tls-modern]\n", i), ModRevision: rev})
		rev++
		for j := range 5 {
			kvs = append(kvs, KV{Key: fmt.Sprintf("dynos/app-%03d/web.%d", i, j), Value: fmt.Sprintf("{address: \"10.0.%d.%d:5000\", state: up}", i, j), ModRevision: rev})
			rev++
		}
	}
	prev := BuildShared(local, kvs, nil)
	if len(prev.Refused) > 0 {
		b.Fatal(prev.Refused)
	}
	b.ReportAllocs()
	for b.Loop() {
		rev++
		kvs[1] = KV{Key: kvs[1].Key, Value: fmt.Sprintf("{address: \"10.9.9.9:%d\"}", rev%60000+1), ModRevision: rev}
		prev = BuildShared(local, kvs, prev)
	}
}

package router

import (
	"crypto/tls"
	"crypto/x509"
	"testing"
	"time"

	"github.com/spacerouter/spacerouter/spaceca"
)

// BenchmarkMTLSVerifyConnection is what the router does once per TLS
// connection with a client certificate of the space CA (SPEC.md 11.1):
// keep the certificate (its SHA-256 and XFCC value) and verify it against
// the app's trust set. The request path then only rechecks the verdict
// (BenchmarkMTLSRecheck).
//
// Sub-benchmarks: "chain" is what a client sends with spacerouter ca
// download's client.crt (the certificate, then the CA), "leaf" the
// certificate alone.
func BenchmarkMTLSVerifyConnection(b *testing.B) {
	f := newSpaceCAFiles(b, b.TempDir(), "space-ca")
	ca := f.open(b, nil)
	c := issue(b, ca, "shop", "laptop")
	trust := spaceca.NewTrustSet(ca.Anchors()...)
	for _, bc := range []struct {
		name  string
		certs []*x509.Certificate
	}{{"chain", []*x509.Certificate{c.leaf, ca.Certificate()}}, {"leaf", []*x509.Certificate{c.leaf}}} {
		b.Run(bc.name, func(b *testing.B) {
			st := &tls.ConnectionState{PeerCertificates: bc.certs}
			now := time.Now()
			b.ReportAllocs()
			for b.Loop() {
				pc := newPeerCert(st)
				if cause, _, _ := pc.judge(trust, ca.Revocations(), now); cause != "" {
					b.Fatal(cause)
				}
			}
		})
	}
}

// BenchmarkMTLSRecheck is the per-request check of a verified connection:
// revocations and the clock.
func BenchmarkMTLSRecheck(b *testing.B) {
	f := newSpaceCAFiles(b, b.TempDir(), "space-ca")
	ca := f.open(b, nil)
	c := issue(b, ca, "shop", "laptop")
	trust := spaceca.NewTrustSet(ca.Anchors()...)
	pc := newPeerCert(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.leaf, ca.Certificate()}})
	now := time.Now()
	pc.judge(trust, ca.Revocations(), now)
	b.ReportAllocs()
	for b.Loop() {
		if cause, _, verified := pc.judge(trust, ca.Revocations(), now); cause != "" || verified {
			b.Fatal(cause, verified)
		}
	}
}

// Command h2spectarget serves router/h2's Conn on a TLS listener for h2spec
// (https://github.com/summerwind/h2spec, v2.2.1) runs by hand:
//
//	go run ./router/h2/internal/h2spectarget -addr 127.0.0.1:8443 &
//	h2spec -t -k -h 127.0.0.1 -p 8443 -o 5
//
// Each request is answered as the router answers it: the body is read
// first, a malformed head is reset with PROTOCOL_ERROR, an unsupported
// Expect gets 417, a head over a limit 400 (414 for the line), anything
// else 200 with a small body. TestH2Spec in router/h2 runs the same.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"flag"
	"io"
	"log"
	"math/big"
	"net"
	"time"

	"golang.org/x/net/http2"

	"github.com/spacerouter/spacerouter/router/h1"
	"github.com/spacerouter/spacerouter/router/h2"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8443", "listen address")
	flag.Parse()
	cert, err := selfSigned()
	if err != nil {
		log.Fatal(err)
	}
	ln, err := tls.Listen("tcp", *addr, &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2"}})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("serving HTTP/2 on %s", ln.Addr())
	cfg := &h2.Config{IdleTimeout: 30 * time.Second, OnConnError: func(err error) { log.Print(err) }}
	for {
		nc, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		go func() {
			if err := nc.(*tls.Conn).Handshake(); err != nil {
				nc.Close()
				return
			}
			h2.NewConn(nc, cfg, handler{}).Serve()
		}()
	}
}

type handler struct{}

func (handler) ServeStream(s *h2.Stream) {
	defer s.Close()
	switch err := s.HeadErr(); {
	case errors.Is(err, h1.ErrMalformed):
		s.Reset(http2.ErrCodeProtocol)
		return
	case errors.Is(err, h1.ErrUnsupportedExpect):
		s.Send(&h2.Head{Status: 417, ContentLength: 0}, nil, true)
		return
	case errors.Is(err, h1.ErrLineTooLong):
		s.Send(&h2.Head{Status: 414, ContentLength: 0}, nil, true)
		return
	case err != nil:
		s.Send(&h2.Head{Status: 400, ContentLength: 0}, nil, true)
		return
	}
	if _, err := io.Copy(io.Discard, s); err != nil {
		return
	}
	body := []byte("hello from spacerouter h2\n")
	s.Send(&h2.Head{Status: 200, Fields: []h1.Field{{Name: []byte("content-type"), Value: []byte("text/plain")}}, ContentLength: int64(len(body))}, body, true)
}

func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "h2spectarget"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

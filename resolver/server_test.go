package resolver

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
)

// mode is how the test DNS server answers a name.
type mode int

const (
	modeAnswer       mode = iota // the records of the rule
	modeTruncate                 // UDP: TC bit and no records; TCP: the records
	modeServFail                 // SERVFAIL
	modeNXDomain                 // NXDOMAIN
	modeSilent                   // never answers
	modeWrongIDFirst             // UDP: a decoy answer with a wrong ID, then the real one
	modeWrongIDOnly              // UDP: only the answer with a wrong ID
)

// decoy is the address a wrong-ID answer carries.
var decoy = netip.MustParseAddr("192.0.2.66")

// rule says how the test server answers one name.
type rule struct {
	mode  mode
	addrs []netip.Addr  // A and AAAA records
	ttl   uint32        // TTL of every record
	cname string        // when set, the name is an alias of cname, which has addrs
	hold  chan struct{} // when set, answers wait until it is closed
}

// countKey names what dnsServer counts: queries per name, type and
// transport.
type countKey struct {
	name string
	typ  dnsmessage.Type
	tcp  bool
}

// dnsServer is a DNS server over UDP and TCP on one 127.0.0.1 port, built on
// dnsmessage, answering each name by its rule and counting queries. Names
// without a rule get NXDOMAIN.
type dnsServer struct {
	t    testing.TB
	addr string
	pc   net.PacketConn
	ln   net.Listener
	done chan struct{}
	wg   sync.WaitGroup

	// mu guards rules, counts, conns, closed and errs.
	mu     sync.Mutex
	rules  map[string]rule
	counts map[countKey]int
	conns  map[net.Conn]struct{}
	closed bool
	errs   []error
}

// newDNSServer starts a server that stops when the test ends.
func newDNSServer(t testing.TB) *dnsServer {
	pc, ln := listenSamePort(t)
	s := &dnsServer{
		t: t, addr: pc.LocalAddr().String(), pc: pc, ln: ln, done: make(chan struct{}),
		rules: make(map[string]rule), counts: make(map[countKey]int), conns: make(map[net.Conn]struct{}),
	}
	s.wg.Go(s.serveUDP)
	s.wg.Go(s.serveTCP)
	t.Cleanup(s.close)
	return s
}

// listenSamePort listens for UDP on a free port, then for TCP on the same
// one, trying other ports while that one is taken for TCP.
func listenSamePort(t testing.TB) (net.PacketConn, net.Listener) {
	for range 10 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		require.NoError(t, err)
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln
		}
		pc.Close()
	}
	t.Fatal("no 127.0.0.1 port free for both UDP and TCP after 10 tries")
	return nil, nil
}

// set gives name its rule.
func (s *dnsServer) set(name string, ru rule) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules[name] = ru
}

// queries counts the queries for name of type typ, over TCP or UDP.
func (s *dnsServer) queries(name string, typ dnsmessage.Type, tcp bool) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts[countKey{name, typ, tcp}]
}

// total counts every query received.
func (s *dnsServer) total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.counts {
		n += c
	}
	return n
}

// record counts a query and returns the rule for its name.
func (s *dnsServer) record(q dnsmessage.Question, tcp bool) rule {
	name := strings.TrimSuffix(strings.ToLower(q.Name.String()), ".")
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[countKey{name, q.Type, tcp}]++
	ru, ok := s.rules[name]
	if !ok {
		ru.mode = modeNXDomain
	}
	return ru
}

// fail records a server-side error, reported when the test ends.
func (s *dnsServer) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.errs = append(s.errs, err)
}

// hold waits until ru's hold channel is closed; false if the server closed.
func (s *dnsServer) hold(ru rule) bool {
	if ru.hold == nil {
		return true
	}
	select {
	case <-ru.hold:
		return true
	case <-s.done:
		return false
	}
}

func (s *dnsServer) close() {
	close(s.done)
	s.pc.Close()
	s.ln.Close()
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	for _, err := range s.errs {
		s.t.Error(err)
	}
}

func (s *dnsServer) serveUDP() {
	buf := make([]byte, 4096)
	for {
		n, from, err := s.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		req := slices.Clone(buf[:n])
		s.wg.Go(func() { s.answerUDP(req, from) })
	}
}

func (s *dnsServer) answerUDP(req []byte, from net.Addr) {
	q, id, err := parseQuery(req)
	if err != nil {
		s.fail(err)
		return
	}
	ru := s.record(q, false)
	if !s.hold(ru) {
		return
	}
	for _, msg := range s.udpReplies(q, id, ru) {
		if _, err := s.pc.WriteTo(msg, from); err != nil && !errors.Is(err, net.ErrClosed) {
			s.fail(err)
		}
	}
}

// udpReplies are the datagrams sent for one query over UDP.
func (s *dnsServer) udpReplies(q dnsmessage.Question, id uint16, ru rule) [][]byte {
	switch ru.mode {
	case modeSilent:
		return nil
	case modeTruncate:
		return [][]byte{s.reply(q, id, ru, true)}
	case modeWrongIDFirst:
		fake := rule{addrs: []netip.Addr{decoy, netip.IPv6Loopback()}, ttl: ru.ttl}
		return [][]byte{s.reply(q, id^0x8000, fake, false), s.reply(q, id, ru, false)}
	case modeWrongIDOnly:
		return [][]byte{s.reply(q, id^0x8000, ru, false)}
	}
	return [][]byte{s.reply(q, id, ru, false)}
}

func (s *dnsServer) serveTCP() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Go(func() { s.serveConn(c) })
	}
}

// serveConn answers length-prefixed queries on c until it closes. A silent
// name gets no answer; the client gives up.
func (s *dnsServer) serveConn(c net.Conn) {
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	for {
		req, err := readTCPMessage(c)
		if err != nil {
			return
		}
		q, id, err := parseQuery(req)
		if err != nil {
			s.fail(err)
			return
		}
		ru := s.record(q, true)
		if ru.mode == modeSilent || !s.hold(ru) {
			continue
		}
		msg := s.reply(q, id, ru, false)
		out := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
		if _, err := c.Write(append(out, msg...)); err != nil {
			return
		}
	}
}

// parseQuery returns the first question and the ID of a query.
func parseQuery(msg []byte) (dnsmessage.Question, uint16, error) {
	var p dnsmessage.Parser
	h, err := p.Start(msg)
	if err != nil {
		return dnsmessage.Question{}, 0, fmt.Errorf("test server: parsing query: %w", err)
	}
	q, err := p.Question()
	if err != nil {
		return dnsmessage.Question{}, 0, fmt.Errorf("test server: parsing question: %w", err)
	}
	if h.Response || !h.RecursionDesired {
		return q, 0, fmt.Errorf("test server: query %s has response=%v rd=%v, want false, true", q.Name, h.Response, h.RecursionDesired)
	}
	return q, h.ID, nil
}

// reply builds the answer to q by ru; tc sends the TC bit and no records.
func (s *dnsServer) reply(q dnsmessage.Question, id uint16, ru rule, tc bool) []byte {
	h := dnsmessage.Header{ID: id, Response: true, RecursionDesired: true, RecursionAvailable: true, Truncated: tc}
	switch ru.mode {
	case modeServFail:
		h.RCode = dnsmessage.RCodeServerFailure
	case modeNXDomain:
		h.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, h)
	err := errors.Join(b.StartQuestions(), b.Question(q), b.StartAnswers())
	if !tc && h.RCode == dnsmessage.RCodeSuccess {
		err = errors.Join(err, addRecords(&b, q, ru))
	}
	msg, ferr := b.Finish()
	if err = errors.Join(err, ferr); err != nil {
		s.fail(fmt.Errorf("test server: building reply for %s: %w", q.Name, err))
	}
	return msg
}

// addRecords adds ru's records of q's type, after a CNAME when ru has one.
func addRecords(b *dnsmessage.Builder, q dnsmessage.Question, ru rule) error {
	name := q.Name
	hdr := func() dnsmessage.ResourceHeader {
		return dnsmessage.ResourceHeader{Name: name, Class: dnsmessage.ClassINET, TTL: ru.ttl}
	}
	if ru.cname != "" {
		target, err := dnsmessage.NewName(ru.cname + ".")
		if err != nil {
			return err
		}
		if err := b.CNAMEResource(hdr(), dnsmessage.CNAMEResource{CNAME: target}); err != nil {
			return err
		}
		name = target
	}
	for _, a := range ru.addrs {
		var err error
		switch {
		case a.Is4() && q.Type == dnsmessage.TypeA:
			err = b.AResource(hdr(), dnsmessage.AResource{A: a.As4()})
		case a.Is6() && q.Type == dnsmessage.TypeAAAA:
			err = b.AAAAResource(hdr(), dnsmessage.AAAAResource{AAAA: a.As16()})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// goResolver is a pure-Go *net.Resolver that sends every query to s, so a
// test never touches the host's DNS.
func goResolver(s *dnsServer) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, s.addr)
		},
	}
}

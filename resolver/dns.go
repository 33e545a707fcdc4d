package resolver

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// udpBufSize is the read buffer for UDP answers. Without EDNS(0) a server
// sends at most 512 bytes (RFC 1035 section 4.2.1); the slack tolerates
// servers that send more instead of setting TC.
const udpBufSize = 4096

var (
	errExtraBudget = errors.New("extra resolver: no answer within its share of the lookup time")
	errTruncated   = errors.New("answer truncated")
	errMismatch    = errors.New("answer does not match the query")
	errNoRecords   = errors.New("no A or AAAA records")
)

// aLongTimeAgo is a deadline in the past: setting it stops blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// rcodeNames are the usual names of the response codes (RFC 1035 section
// 4.1.1, RFC 6895 section 2.3).
var rcodeNames = map[dnsmessage.RCode]string{
	dnsmessage.RCodeFormatError:    "FORMERR",
	dnsmessage.RCodeServerFailure:  "SERVFAIL",
	dnsmessage.RCodeNameError:      "NXDOMAIN",
	dnsmessage.RCodeNotImplemented: "NOTIMP",
	dnsmessage.RCodeRefused:        "REFUSED",
}

// rcodeError is an answer whose response code is not success.
type rcodeError struct {
	rcode dnsmessage.RCode
}

func (e *rcodeError) Error() string {
	name, ok := rcodeNames[e.rcode]
	if !ok {
		name = e.rcode.String()
	}
	return "server answered " + name
}

// result is the answer to one query: addresses and the smallest TTL of the
// records used, or why there are none.
type result struct {
	addrs []netip.Addr
	ttl   uint32
	err   error
}

// queryExtra asks the extra server for the A and AAAA records of name, in
// parallel, giving it at most half of the time ctx has left (and at most
// maxExtraWait), so the fallback still has time when it is silent.
func (r *Resolver) queryExtra(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	budget := maxExtraWait
	if d, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(d)/2)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, budget, errExtraBudget)
	defer cancel()
	addrs, ttl, err := r.queryBoth(ctx, name)
	if err != nil && errors.Is(context.Cause(ctx), errExtraBudget) {
		err = fmt.Errorf("%w (%v): %w", errExtraBudget, budget, err)
	}
	return addrs, ttl, err
}

// queryBoth sends the A and AAAA queries and merges their answers, IPv4
// first. Records of either type make a success, as in Go's own resolver.
func (r *Resolver) queryBoth(ctx context.Context, name string) ([]netip.Addr, time.Duration, error) {
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	qname, err := dnsmessage.NewName(name)
	if err != nil {
		return nil, 0, fmt.Errorf("building query for %s: %w", name, err)
	}
	var a6 result
	var wg sync.WaitGroup
	wg.Go(func() { a6 = r.query(ctx, qname, dnsmessage.TypeAAAA) })
	a4 := r.query(ctx, qname, dnsmessage.TypeA)
	wg.Wait()
	addrs := append(a4.addrs, a6.addrs...)
	if len(addrs) == 0 {
		return nil, 0, cmp.Or(a4.err, a6.err, errNoRecords)
	}
	ttl := uint32(math.MaxUint32)
	for _, res := range [...]result{a4, a6} {
		if len(res.addrs) > 0 {
			ttl = min(ttl, res.ttl)
		}
	}
	return addrs, clampTTL(ttl), nil
}

// clampTTL turns a record TTL in seconds into a cache lifetime within
// [minTTL, maxTTL].
func clampTTL(ttl uint32) time.Duration {
	return min(max(time.Duration(ttl)*time.Second, minTTL), maxTTL)
}

// query asks one question over UDP, and over TCP when the UDP answer is
// truncated (RFC 1035 section 4.2.1).
func (r *Resolver) query(ctx context.Context, name dnsmessage.Name, typ dnsmessage.Type) result {
	q := dnsmessage.Question{Name: name, Type: typ, Class: dnsmessage.ClassINET}
	res := r.exchangeUDP(ctx, q)
	if errors.Is(res.err, errTruncated) {
		res = r.exchangeTCP(ctx, q)
	}
	if res.err != nil {
		res.err = fmt.Errorf("querying %s for %s %s: %w",
			r.serverStr, name, strings.TrimPrefix(typ.String(), "Type"), res.err)
	}
	return res
}

// exchangeUDP sends q on a connected UDP socket and reads until an answer
// with the query's ID and question arrives or ctx ends. Other datagrams are
// dropped, as stray or spoofed ones (RFC 5452 section 9.1).
func (r *Resolver) exchangeUDP(ctx context.Context, q dnsmessage.Question) result {
	conn, err := r.dialer.DialContext(ctx, "udp", r.serverStr)
	if err != nil {
		return result{err: err}
	}
	defer conn.Close()
	defer bindContext(ctx, conn)()
	id, msg, err := buildQuery(q, 0)
	if err != nil {
		return result{err: err}
	}
	if _, err := conn.Write(msg); err != nil {
		return result{err: err}
	}
	buf := make([]byte, udpBufSize)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return result{err: err}
		}
		var p dnsmessage.Parser
		h, ok := matchAnswer(&p, buf[:n], id, q)
		if !ok {
			continue
		}
		if h.Truncated {
			return result{err: errTruncated}
		}
		return parseAnswers(&p, h, q)
	}
}

// exchangeTCP sends q over TCP, each message after its two-byte length
// (RFC 1035 section 4.2.2).
func (r *Resolver) exchangeTCP(ctx context.Context, q dnsmessage.Question) result {
	conn, err := r.dialer.DialContext(ctx, "tcp", r.serverStr)
	if err != nil {
		return result{err: err}
	}
	defer conn.Close()
	defer bindContext(ctx, conn)()
	id, msg, err := buildQuery(q, 2)
	if err != nil {
		return result{err: err}
	}
	binary.BigEndian.PutUint16(msg, uint16(len(msg)-2))
	if _, err := conn.Write(msg); err != nil {
		return result{err: err}
	}
	answer, err := readTCPMessage(conn)
	if err != nil {
		return result{err: err}
	}
	var p dnsmessage.Parser
	h, ok := matchAnswer(&p, answer, id, q)
	if !ok {
		return result{err: errMismatch}
	}
	return parseAnswers(&p, h, q)
}

// readTCPMessage reads one length-prefixed DNS message.
func readTCPMessage(conn net.Conn) ([]byte, error) {
	var n [2]byte
	if _, err := io.ReadFull(conn, n[:]); err != nil {
		return nil, err
	}
	msg := make([]byte, binary.BigEndian.Uint16(n[:]))
	if _, err := io.ReadFull(conn, msg); err != nil {
		return nil, err
	}
	return msg, nil
}

// bindContext makes conn's I/O end when ctx does. It does not copy ctx's
// deadline to conn: the I/O ends only after ctx is done, so context.Cause
// tells which limit fired. Call the returned function when done.
func bindContext(ctx context.Context, conn net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { conn.SetDeadline(aLongTimeAgo) })
}

// buildQuery packs q with a random ID and recursion desired, after prefix
// zero bytes (room for the TCP length).
func buildQuery(q dnsmessage.Question, prefix int) (uint16, []byte, error) {
	id := uint16(rand.Uint32())
	b := dnsmessage.NewBuilder(make([]byte, prefix, 512), dnsmessage.Header{ID: id, RecursionDesired: true})
	if err := b.StartQuestions(); err != nil {
		return 0, nil, err
	}
	if err := b.Question(q); err != nil {
		return 0, nil, fmt.Errorf("building query: %w", err)
	}
	msg, err := b.Finish()
	return id, msg, err
}

// matchAnswer starts p on msg and reports whether msg answers the query
// with this id and question. On true, p is at the answer section.
func matchAnswer(p *dnsmessage.Parser, msg []byte, id uint16, q dnsmessage.Question) (dnsmessage.Header, bool) {
	h, err := p.Start(msg)
	if err != nil || !h.Response || h.ID != id {
		return h, false
	}
	got, err := p.Question()
	if err != nil || got.Type != q.Type || got.Class != q.Class || !equalName(got.Name, q.Name) {
		return h, false
	}
	return h, p.SkipAllQuestions() == nil
}

// parseAnswers reads the records of the answer section that answer q,
// following a CNAME chain from q's name.
func parseAnswers(p *dnsmessage.Parser, h dnsmessage.Header, q dnsmessage.Question) result {
	if h.RCode != dnsmessage.RCodeSuccess {
		return result{err: &rcodeError{rcode: h.RCode}}
	}
	res := result{ttl: math.MaxUint32}
	target := q.Name
	for {
		rh, err := p.AnswerHeader()
		if errors.Is(err, dnsmessage.ErrSectionDone) {
			break
		}
		if err == nil {
			target, err = res.take(p, rh, target, q.Type)
		}
		if err != nil {
			return result{err: fmt.Errorf("parsing answer: %w", err)}
		}
	}
	if len(res.addrs) == 0 {
		return result{err: errNoRecords}
	}
	return res
}

// take reads the record rh heads when it belongs to the chain that has
// reached target, and returns where the chain is after it.
func (res *result) take(p *dnsmessage.Parser, rh dnsmessage.ResourceHeader, target dnsmessage.Name, typ dnsmessage.Type) (dnsmessage.Name, error) {
	if rh.Class != dnsmessage.ClassINET || !equalName(rh.Name, target) {
		return target, p.SkipAnswer()
	}
	switch {
	case rh.Type == dnsmessage.TypeCNAME:
		c, err := p.CNAMEResource()
		res.ttl = min(res.ttl, rh.TTL)
		return c.CNAME, err
	case rh.Type == typ && typ == dnsmessage.TypeA:
		a, err := p.AResource()
		res.addrs = append(res.addrs, netip.AddrFrom4(a.A))
		res.ttl = min(res.ttl, rh.TTL)
		return target, err
	case rh.Type == typ && typ == dnsmessage.TypeAAAA:
		a, err := p.AAAAResource()
		res.addrs = append(res.addrs, netip.AddrFrom16(a.AAAA).Unmap())
		res.ttl = min(res.ttl, rh.TTL)
		return target, err
	}
	return target, p.SkipAnswer()
}

// equalName compares DNS names case-insensitively (RFC 4343).
func equalName(a, b dnsmessage.Name) bool {
	return a.Length == b.Length && bytes.EqualFold(a.Data[:a.Length], b.Data[:b.Length])
}

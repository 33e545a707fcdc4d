package resolver

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// minDialShare is the least time one address gets when the addresses of a
// name share the dial deadline (as net.Dialer does).
const minDialShare = 2 * time.Second

var errNoSuitableAddress = errors.New("no address of the wanted family")

// DialContext connects to address ("host:port") on network ("tcp",
// "tcp4", "tcp6", "udp"...). It resolves host with LookupHost, then dials
// the addresses in order, IPv4 first, until one connects, splitting ctx's
// deadline among them so a silent first address leaves time for the next.
// It has net.Dialer.DialContext's signature so the router can use it in its
// place; the error is the first address's.
func (r *Resolver) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Errorf("dialing %s: %w", address, err)
	}
	addrs, err := r.LookupHost(ctx, host)
	if err != nil {
		return nil, err
	}
	addrs = forNetwork(network, addrs)
	if len(addrs) == 0 {
		return nil, fmt.Errorf("dialing %s over %s: %w", address, network, errNoSuitableAddress)
	}
	var first error
	for i, a := range addrs {
		conn, err := dialOne(ctx, network, net.JoinHostPort(a.String(), port), len(addrs)-i)
		if err == nil {
			return conn, nil
		}
		first = cmp.Or(first, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

// forNetwork keeps the addresses a network ending in 4 or 6 can use.
func forNetwork(network string, addrs []netip.Addr) []netip.Addr {
	switch {
	case strings.HasSuffix(network, "4"):
		return slices.DeleteFunc(addrs, func(a netip.Addr) bool { return !a.Is4() })
	case strings.HasSuffix(network, "6"):
		return slices.DeleteFunc(addrs, func(a netip.Addr) bool { return !a.Is6() })
	}
	return addrs
}

// dialOne dials addr with its share of ctx's time: the time left divided by
// the addresses left, but at least minDialShare.
func dialOne(ctx context.Context, network, addr string, left int) (net.Conn, error) {
	if d, ok := ctx.Deadline(); ok && left > 1 {
		share := max(time.Until(d)/time.Duration(left), minDialShare)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, share)
		defer cancel()
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

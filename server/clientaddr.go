package server

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/imageservice/imageservice/auth"
)

// TrustedProxies are the reverse proxies (load balancers, ingresses) in
// front of the service whose X-Forwarded-For header is believed: a
// request that one of them sent is counted against the client it names
// (by WRITE_RATE and LIVE_CONNECTIONS_PER_CLIENT), not against the proxy.
// Without them every client behind a proxy shares the proxy's limits.
type TrustedProxies []netip.Prefix

// ParseTrustedProxies parses a comma-separated list of IP addresses and
// CIDR prefixes ("10.0.0.0/8, 192.0.2.7, fd00::/8"); an empty list trusts
// no proxy.
func ParseTrustedProxies(list string) (TrustedProxies, error) {
	var out TrustedProxies
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q is neither an IP address nor a CIDR prefix", item)
		}
		out = append(out, p)
	}
	return out, nil
}

// parsePrefix parses an address or a CIDR prefix. An IPv4-mapped one
// ("::ffff:10.0.0.0/104") becomes its IPv4 prefix, as the addresses it is
// matched with are unmapped.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err == nil && p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// trusts reports whether a is one of the proxies. A link-local peer's
// zone (the interface it was reached on, "fe80::7%eth0") does not count:
// a prefix contains no zoned address.
func (t TrustedProxies) trusts(a netip.Addr) bool {
	a = a.Unmap().WithZone("")
	for _, p := range t {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// clientAddr returns the address of the client that sent r (false when
// the peer's is not an address, as in tests over a pipe): the peer,
// or, when the peer is a trusted proxy, the right-most address of
// X-Forwarded-For that is not a trusted proxy (each proxy appends the
// address it was reached from, so entries left of that one are the
// client's to forge). When every entry is a trusted proxy, the left-most
// is the client; an entry that is not an address stops the walk at the
// last proxy that wrote a good one.
func (t TrustedProxies) clientAddr(r *http.Request) (netip.Addr, bool) {
	peer, ok := hostAddr(r.RemoteAddr)
	if !ok || len(t) == 0 || !t.trusts(peer) {
		return peer, ok
	}
	hops := forwardedFor(r.Header)
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := hostAddr(hops[i])
		if !ok {
			break
		}
		client = a
		if !t.trusts(a) {
			break
		}
	}
	return client, true
}

// forwardedFor returns the entries of every X-Forwarded-For header, in
// order.
func forwardedFor(h http.Header) []string {
	var hops []string
	for _, v := range h.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(v, ",") {
			hops = append(hops, strings.TrimSpace(hop))
		}
	}
	return hops
}

// hostAddr parses an address with or without a port ("192.0.2.1",
// "192.0.2.1:443", "[2001:db8::1]:443", "2001:db8::1").
func hostAddr(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	host, _, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	return a.Unmap(), err == nil
}

// clientKey names the client of a request for the per-client limits: a
// hash of its API key (as the service reads it from the Authorization
// header, so that spacing the header otherwise names the same client),
// or its address.
func (t TrustedProxies) clientKey(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if token, ok := auth.BearerToken(h); ok {
			h = token
		}
		sum := sha256.Sum256([]byte(h))
		return "key:" + hex.EncodeToString(sum[:8])
	}
	a, ok := t.clientAddr(r)
	if !ok {
		return "addr:" + r.RemoteAddr
	}
	return "addr:" + addrKey(a)
}

// addrKey names a client address for the per-client limits: an IPv4
// address whole, an IPv6 address by its /64, the least that one
// subscriber's line is given, so that a client cannot take a fresh
// budget from each of its own addresses.
func addrKey(a netip.Addr) string {
	if !a.Is6() {
		return a.String()
	}
	p, _ := a.WithZone("").Prefix(64) // no error: no zone, 64 bits of 128
	return p.String()
}

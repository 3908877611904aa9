package server

import (
	"net/http"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,fd00::/8, fe80::7, ::ffff:198.18.0.0/111,")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		peer string
		xff  []string
		want string
	}{
		{"203.0.113.5:1234", nil, "203.0.113.5"},
		{"203.0.113.5:1234", []string{"198.51.100.1"}, "203.0.113.5"}, // not a proxy: the header is the client's
		{"10.1.2.3:80", nil, "10.1.2.3"},                              // a proxy that names no one
		{"10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"10.1.2.3:80", []string{"6.6.6.6, 198.51.100.1"}, "198.51.100.1"}, // forged left entry
		{"10.1.2.3:80", []string{"198.51.100.1, 192.0.2.7"}, "198.51.100.1"},
		{"10.1.2.3:80", []string{"198.51.100.1", "10.9.9.9"}, "198.51.100.1"}, // two headers, in order
		{"10.1.2.3:80", []string{"10.4.4.4, 10.5.5.5"}, "10.4.4.4"},           // all proxies: the left-most
		{"10.1.2.3:80", []string{"198.51.100.1, unknown"}, "10.1.2.3"},        // a bad entry stops the walk
		{"10.1.2.3:80", []string{"198.51.100.1:4711"}, "198.51.100.1"},
		{"[fd00::1]:443", []string{"[2001:db8::5]:99"}, "2001:db8::5"},
		{"[::ffff:10.1.2.3]:80", []string{"::ffff:198.51.100.1"}, "198.51.100.1"}, // IPv4-mapped
		{"[fe80::7%eth0]:80", []string{"198.51.100.1"}, "198.51.100.1"},           // a link-local proxy, zoned
		{"[fe80::7%eth0]:80", nil, "fe80::7%eth0"},
		{"198.19.0.1:80", []string{"198.51.100.1"}, "198.51.100.1"}, // a proxy of an IPv4-mapped prefix
	} {
		r := &http.Request{RemoteAddr: c.peer, Header: http.Header{}}
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if a, _ := proxies.clientAddr(r); a.String() != c.want {
			t.Errorf("peer %s, X-Forwarded-For %q: client %s, want %s", c.peer, c.xff, a, c.want)
		}
	}
}

func TestParseTrustedProxiesRefusesGarbage(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0.1:80"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) accepted it", bad)
		}
	}
}

// An IPv6 client is one /64: its other addresses share its limits.
func TestClientKeyOfIPv6IsItsSlash64(t *testing.T) {
	key := func(peer string) string {
		return TrustedProxies(nil).clientKey(&http.Request{RemoteAddr: peer, Header: http.Header{}})
	}
	if a, b := key("[2001:db8:1:2::5]:1"), key("[2001:db8:1:2:ffff::6]:2"); a != b {
		t.Errorf("two addresses of one /64: keys %s and %s", a, b)
	}
	if a, b := key("[2001:db8:1:2::5]:1"), key("[2001:db8:1:3::5]:1"); a == b {
		t.Errorf("two /64s share the key %s", a)
	}
	if a, b := key("192.0.2.1:1"), key("192.0.2.2:1"); a == b {
		t.Errorf("two IPv4 addresses share the key %s", a)
	}
	if a, b := key("[fe80::1%eth0]:1"), key("[fe80::2%eth1]:1"); a != b {
		t.Errorf("two link-local addresses of one /64: keys %s and %s", a, b)
	}
}

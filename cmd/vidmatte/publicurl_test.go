package main

import (
	"net"
	"strings"
	"testing"
)

// A wildcard listen address never ends up in output URLs.
func TestPublicURLFromWildcardListen(t *testing.T) {
	for _, listen := range []string{":0", "0.0.0.0:0", "[::]:0"} {
		ln, err := net.Listen("tcp", listen)
		if err != nil {
			t.Skipf("%s: %v", listen, err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		got := publicURL("", ln.Addr())
		ln.Close()
		if strings.Contains(got, "[::]") || strings.Contains(got, "0.0.0.0") || strings.Contains(got, "//:") {
			t.Fatalf("listen %s: public URL %q", listen, got)
		}
		if !strings.HasPrefix(got, "http://") || !strings.HasSuffix(got, ":"+port) {
			t.Fatalf("listen %s: public URL %q lacks port %s", listen, got, port)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if got := publicURL("", ln.Addr()); got != "http://"+ln.Addr().String() {
		t.Fatalf("loopback listen: %q", got)
	}
	if got := publicURL("https://matte.example", ln.Addr()); got != "https://matte.example" {
		t.Fatalf("configured: %q", got)
	}
}

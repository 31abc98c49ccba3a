// Package fetch downloads what clients name by URL (remote videos, background
// images) and carries outgoing webhook requests, over an HTTP client that
// refuses private and special-purpose addresses at connect time.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"syscall"
	"time"

	"vidmatte"
)

// Options tune a Client.
type Options struct {
	// AllowPrivate allows private, loopback, link-local and other
	// non-public addresses (tests and closed networks).
	AllowPrivate bool
	// Timeout bounds one whole fetch (default 2 minutes).
	Timeout time.Duration
}

// Client downloads remote videos and images, and carries webhooks, over
// an HTTP client whose dialer checks every resolved address at connect
// time: a name that resolves (or re-resolves, DNS rebinding) to a refused
// address cannot be reached, redirects included.
type Client struct {
	opts   Options
	client *http.Client
}

// New returns a client.
func New(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = 2 * time.Minute
	}
	dialer := &net.Dialer{
		Timeout:   10 * time.Second,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			return checkDialAddress(address, opts.AllowPrivate)
		},
	}
	tr := &http.Transport{
		Proxy:                 nil, // a proxy would hide the address checked
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		MaxIdleConns:          16,
		IdleConnTimeout:       60 * time.Second,
	}
	client := &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("too many redirects")
			}
			if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
				return errors.New("redirect to a non-http URL")
			}
			return nil
		},
	}
	return &Client{opts: opts, client: client}
}

// errRefusedAddress marks a dial to a refused address.
var errRefusedAddress = errors.New("address not allowed")

// checkDialAddress refuses loopback, private, link-local, multicast,
// unspecified and other special-purpose addresses unless allowPrivate.
func checkDialAddress(address string, allowPrivate bool) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return fmt.Errorf("%w: %s is not an IP address", errRefusedAddress, host)
	}
	if allowPrivate {
		return nil
	}
	if !publicAddr(ip.Unmap()) {
		return fmt.Errorf("%w: %s", errRefusedAddress, ip)
	}
	return nil
}

// Special-purpose ranges that are never public, beyond what netip knows.
var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // this network
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64 (may embed a private IPv4)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4 (may embed a private IPv4)
	netip.MustParsePrefix("100::/64"),        // discard
}

func publicAddr(ip netip.Addr) bool {
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// Fetch downloads rawURL into a new file in dir named name and returns its
// path and size. More than maxBytes is CodeTooLarge; a refused address is
// CodeInvalid naming field; an unreachable URL or a non-2xx answer is
// CodeUnprocessable; running past the fetch timeout is CodeTimeout.
// Nothing is left behind on error.
func (f *Client) Fetch(ctx context.Context, rawURL, field, dir, name string, maxBytes int64) (string, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, f.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return "", 0, vidmatte.FieldErrorf(field, "not a valid URL")
	}
	req.Header.Set("User-Agent", "vidmatte")
	resp, err := f.client.Do(req)
	if err != nil {
		return "", 0, fetchError(err, field)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return "", 0, &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Field: field,
			Message: fmt.Sprintf("%s: the server answered %d", field, resp.StatusCode)}
	}
	if resp.ContentLength > maxBytes {
		return "", 0, &vidmatte.Error{Code: vidmatte.CodeTooLarge, Field: field,
			Message: fmt.Sprintf("%s: larger than %d bytes", field, maxBytes)}
	}
	path := dir + string(os.PathSeparator) + name
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return "", 0, err
	}
	n, err := io.Copy(out, io.LimitReader(resp.Body, maxBytes+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil && n > maxBytes {
		err = &vidmatte.Error{Code: vidmatte.CodeTooLarge, Field: field,
			Message: fmt.Sprintf("%s: larger than %d bytes", field, maxBytes)}
	}
	if err != nil {
		os.Remove(path)
		var ve *vidmatte.Error
		if errors.As(err, &ve) {
			return "", 0, err
		}
		return "", 0, fetchError(err, field)
	}
	return path, n, nil
}

func fetchError(err error, field string) error {
	if errors.Is(err, errRefusedAddress) {
		return &vidmatte.Error{Code: vidmatte.CodeInvalid, Field: field, Err: err,
			Message: field + ": the address is private, loopback or otherwise not public, and fetching from it is not allowed"}
	}
	if errors.Is(err, context.DeadlineExceeded) || isTimeout(err) {
		return &vidmatte.Error{Code: vidmatte.CodeTimeout, Field: field, Err: err,
			Message: field + ": fetching timed out"}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Field: field, Err: err,
		Message: field + ": could not be fetched"}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// HTTP is the client's address-checked HTTP client, for requests other
// than downloads (webhook deliveries).
func (f *Client) HTTP() *http.Client { return f.client }

// CheckURL refuses anything but an absolute http or https URL without
// credentials, naming field.
func CheckURL(s, field string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return vidmatte.FieldErrorf(field, "must be an absolute http or https URL without credentials")
	}
	return nil
}

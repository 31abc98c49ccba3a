package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"vidmatte"
)

// FetcherOptions tune a Fetcher.
type FetcherOptions struct {
	// AllowPrivate allows private, loopback, link-local and other
	// non-public addresses (tests and closed networks).
	AllowPrivate bool
	// Timeout bounds one whole fetch (default 2 minutes).
	Timeout time.Duration
}

// Fetcher downloads remote videos and images, and delivers webhooks, over
// an HTTP client whose dialer checks every resolved address at connect
// time: a name that resolves (or re-resolves, DNS rebinding) to a refused
// address cannot be reached, redirects included.
type Fetcher struct {
	opts   FetcherOptions
	client *http.Client
}

// NewFetcher returns a fetcher.
func NewFetcher(opts FetcherOptions) *Fetcher {
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
	return &Fetcher{opts: opts, client: client}
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
func (f *Fetcher) Fetch(ctx context.Context, rawURL, field, dir, name string, maxBytes int64) (string, int64, error) {
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

// FetchBackground fetches a background image URL into the data dir's
// backgrounds/ folder and returns the local file. Files are named by the
// URL's hash and reused by later jobs with the same URL. The runner calls
// it for jobs with image backgrounds.
func (s *Server) FetchBackground(ctx context.Context, rawURL string) (string, error) {
	if err := checkHTTPURL(rawURL, "background.image_url"); err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(rawURL))
	u, _ := url.Parse(rawURL)
	name := hex.EncodeToString(sum[:16]) + extensionOf(u.Path)
	final := filepath.Join(s.backgroundDir, name)
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if st, err := os.Stat(final); err == nil && st.Size() > 0 {
		return final, nil
	}
	tmp := "." + newID("bg_") + extensionOf(u.Path)
	p, _, err := s.fetcher.Fetch(ctx, rawURL, "background.image_url", s.backgroundDir, tmp, s.cfg.Limits.MaxFetchBytes)
	if err != nil {
		return "", err
	}
	if err := os.Rename(p, final); err != nil {
		os.Remove(p)
		return "", err
	}
	return final, nil
}

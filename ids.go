package vidmatte

import (
	"crypto/rand"
	"encoding/base32"
	"net/url"
	"strings"
)

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewID returns prefix followed by 20 random lower-case base32 characters
// (100 bits), for names the daemon makes up: request ids, file names.
func NewID(prefix string) string {
	var b [13]byte
	_, _ = rand.Read(b[:])
	return prefix + strings.ToLower(idEncoding.EncodeToString(b[:]))[:20]
}

// URLHost is the lower-cased host (and port) of a URL, "" when it has none:
// what per-host limits count by.
func URLHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Host)
}

// ValidID reports whether s can be an identifier the daemon handed out: 1
// to 64 ASCII letters, digits, '_' or '-'. Anything else names nothing.
func ValidID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

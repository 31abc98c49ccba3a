package store

import (
	"crypto/rand"
	"crypto/sha256"
)

// The prefixes of the identifiers the store hands out.
const (
	prefixKey      = "key_"
	prefixUpload   = "vid_"
	prefixJob      = "job_"
	prefixEvent    = "evt_"
	prefixDelivery = "whd_"
	prefixSecret   = "vmk_"
	prefixWebhook  = "whsec_"
)

const (
	// idChars is the length of the random part of an identifier: 24
	// base62 characters, about 143 bits.
	idChars = 24
	// secretChars is the length of the random part of an API key secret:
	// 40 base62 characters, about 238 bits.
	secretChars = 40
	// prefixLen is how much of a secret is kept in clear to recognise it:
	// "vmk_" and 8 random characters, leaving 32 (190 bits) unknown.
	prefixLen = 12
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// randomString returns n characters drawn uniformly from base62 with
// crypto/rand (bytes ≥ 248 are rejected so no character is favoured).
func randomString(n int) string {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+8)
	for len(out) < n {
		rand.Read(buf) // never returns an error; it crashes the program if the system's source fails
		for _, b := range buf {
			if b >= 248 {
				continue
			}
			out = append(out, base62[b%62])
			if len(out) == n {
				break
			}
		}
	}
	return string(out)
}

// newID returns a fresh identifier with the prefix, e.g. "job_…".
func newID(prefix string) string { return prefix + randomString(idChars) }

// newSecret returns a fresh API key secret: "vmk_" and 40 characters.
func newSecret() string { return prefixSecret + randomString(secretChars) }

// hashSecret is what is stored of a secret: its SHA-256.
func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

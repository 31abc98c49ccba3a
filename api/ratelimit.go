package api

import (
	"fmt"
	"math"
	"net/http"
	"sync"
	"time"
)

// The rate-limit headers follow draft-ietf-httpapi-ratelimit-headers-09
// (structured fields): on every authenticated response
//
//	RateLimit-Policy: "per-key";q=<burst>;w=<burst/rate seconds>
//	RateLimit: "per-key";r=<requests left now>;t=<seconds until the bucket is full>
//
// and on a 429 also Retry-After: <seconds until one request is allowed>.
// The limit is a token bucket per key: rate tokens a second, burst at most.
const ratePolicyName = "per-key"

// limiter is a token bucket per key.
type limiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	sweep   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst int, now func() time.Time) *limiter {
	return &limiter{rate: rate, burst: float64(burst), now: now, buckets: map[string]*bucket{}}
}

// take spends one token of key's bucket. It returns whether the request may
// go on, the whole tokens left, the seconds until the bucket is full again
// and, when refused, the seconds until one token is back.
func (l *limiter) take(key string) (ok bool, remaining int, full, retry time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.sweep) > time.Minute {
		// Forget buckets that have been full for a while.
		for k, b := range l.buckets {
			if now.Sub(b.last) > time.Duration(float64(time.Second)*l.burst/l.rate)+time.Minute {
				delete(l.buckets, k)
			}
		}
		l.sweep = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(l.burst, b.tokens+el*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		ok = true
	} else {
		retry = time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
	}
	full = time.Duration((l.burst - b.tokens) / l.rate * float64(time.Second))
	return ok, int(b.tokens), full, retry
}

// rateLimit takes a token for the key and sets the headers; false means
// the request is refused (the caller answers 429).
func (s *Server) rateLimit(w http.ResponseWriter, keyID string) bool {
	ok, remaining, full, retry := s.limiter.take(keyID)
	h := w.Header()
	window := int(math.Ceil(s.limiter.burst / s.limiter.rate))
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", ratePolicyName, int(s.limiter.burst), window))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", ratePolicyName, remaining, ceilSeconds(full)))
	if !ok {
		h.Set("Retry-After", itoa(max(1, ceilSeconds(retry))))
	}
	return ok
}

func ceilSeconds(d time.Duration) int {
	return int(math.Ceil(d.Seconds()))
}

// Package vidmatte holds the domain of the video background-removal engine:
// jobs and their statuses, uploads, output formats and backgrounds, and the
// one error vocabulary every layer speaks. It imports no adapter: codec,
// models, store, engine and api all depend on it, never the other way.
package vidmatte

import (
	"errors"
	"fmt"
	"strings"
)

// Code is one word of the error vocabulary. The api package maps each code
// to an HTTP status in exactly one table; nothing else knows about HTTP.
type Code string

// The error vocabulary. The values are the codes of the public contract.
const (
	CodeInvalid             Code = "invalid_request"
	CodeUnauthenticated     Code = "invalid_api_key"
	CodeInsufficientCredits Code = "insufficient_credits"
	CodeNotFound            Code = "not_found"
	CodeMethodNotAllowed    Code = "method_not_allowed"
	CodeConflict            Code = "conflict"
	CodeTooLarge            Code = "payload_too_large"
	CodeUnsupportedMedia    Code = "unsupported_media_type"
	CodeUnprocessable       Code = "unprocessable"
	CodeRateLimited         Code = "rate_limited"
	CodeInternal            Code = "internal_error"
	CodeUnavailable         Code = "unavailable"
	CodeTimeout             Code = "timeout"
	CodeCanceled            Code = "canceled"
)

// Error is an error that carries a code of the vocabulary and a message fit
// for the client. Field names the request field at fault, when there is one.
// Err, when set, is the underlying cause; it is logged, never shown.
type Error struct {
	Code    Code
	Message string
	Field   string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldErrorf returns an invalid-request error naming the field at fault.
func FieldErrorf(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Wrap returns an *Error with the code and message that keeps err as its
// cause. A nil err gives nil.
func Wrap(err error, code Code, message string) error {
	if err == nil {
		return nil
	}
	return &Error{Code: code, Message: message, Err: err}
}

// ErrorCode returns the code of the first *Error in err's chain, or
// CodeInternal when there is none. A nil error has no code ("").
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of err: the message of the
// first *Error in its chain, or a generic one for anything else, so that
// internals never reach a client.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != CodeInternal {
		return e.Message
	}
	return "internal error"
}

// SafeText keeps a client-sent string printable and short before
// it is echoed in an error message.
func SafeText(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 200 {
			b.WriteString("…")
			break
		}
		if r < 0x20 || r == 0x7f {
			b.WriteRune('?')
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

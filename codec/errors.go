package codec

import (
	"errors"
	"fmt"

	"vidmatte"
)

// The ways an input can be unusable. Every failure to open or read an input
// is a *vidmatte.Error whose Err is one of these, so both
// errors.Is(err, codec.ErrX) and vidmatte.ErrorCode(err) work, and
// vidmatte.ErrorMessage(err) says specifically what is wrong.
//
// ErrNotMedia, ErrNoVideo and ErrUnsupportedCodec carry
// vidmatte.CodeUnsupportedMedia; ErrEmpty, ErrTruncated, ErrCorrupt and
// ErrDimensions carry vidmatte.CodeUnprocessable, as do ErrNoDuration and
// the background image errors ErrNotImage and ErrImageTooLarge.
var (
	// ErrEmpty is a file of zero bytes.
	ErrEmpty = errors.New("codec: empty file")
	// ErrNotMedia is a file FFmpeg does not recognise as a video container
	// (text, a still image, a playlist, …).
	ErrNotMedia = errors.New("codec: not a video file")
	// ErrNoVideo is a media file without a video stream (audio only, …).
	ErrNoVideo = errors.New("codec: no video stream")
	// ErrUnsupportedCodec is a video stream no available decoder reads.
	ErrUnsupportedCodec = errors.New("codec: unsupported video codec")
	// ErrTruncated is a file cut short: its container declares more data
	// than the file holds.
	ErrTruncated = errors.New("codec: truncated file")
	// ErrCorrupt is a recognised container whose contents cannot be read.
	ErrCorrupt = errors.New("codec: corrupt file")
	// ErrDimensions is a picture size that is zero or beyond the limits.
	ErrDimensions = errors.New("codec: unacceptable picture size")
	// ErrNoDuration is a video whose container declares no duration and
	// whose packets give none either (no timestamps, no frame rate).
	ErrNoDuration = errors.New("codec: unknown duration")
	// ErrNotImage is a background that is not a PNG, JPEG or WebP image
	// (a playlist, a video, text, …).
	ErrNotImage = errors.New("codec: not an accepted image")
	// ErrImageTooLarge is a background image of more pixels than allowed.
	ErrImageTooLarge = errors.New("codec: image too large")
)

// codeOf is the vocabulary code each sentinel carries.
func codeOf(sentinel error) vidmatte.Code {
	switch sentinel {
	case ErrNotMedia, ErrNoVideo, ErrUnsupportedCodec:
		return vidmatte.CodeUnsupportedMedia
	}
	return vidmatte.CodeUnprocessable
}

// inputErr returns the typed error for sentinel with a specific message.
func inputErr(sentinel error, format string, args ...any) error {
	return &vidmatte.Error{Code: codeOf(sentinel), Message: fmt.Sprintf(format, args...), Err: sentinel}
}

// causeErr is an error that is both a sentinel (for errors.Is) and keeps the
// FFmpeg error that caused it, for the logs.
type causeErr struct {
	sentinel error
	cause    error
}

func (e *causeErr) Error() string   { return e.sentinel.Error() + ": " + e.cause.Error() }
func (e *causeErr) Unwrap() []error { return []error{e.sentinel, e.cause} }

// inputErrCause is inputErr keeping the underlying cause in the chain.
func inputErrCause(sentinel, cause error, format string, args ...any) error {
	return &vidmatte.Error{Code: codeOf(sentinel), Message: fmt.Sprintf(format, args...), Err: &causeErr{sentinel, cause}}
}

// internalErr wraps an unexpected FFmpeg failure: the detail is for logs.
func internalErr(what string, err error) error {
	return &vidmatte.Error{Code: vidmatte.CodeInternal, Message: "codec: " + what, Err: err}
}

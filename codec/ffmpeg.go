package codec

/*
#cgo pkg-config: libavcodec libavformat libavfilter libavutil libswscale
#include <stdlib.h>
#include "ffmpeg.h"
*/
import "C"

import (
	"context"
	"errors"
	"strings"
	"sync"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// go-astiav v0.16.0 wraps each FFmpeg object in a struct whose first field
// is the C pointer, and exposes that pointer only for frames. The helpers
// below read it for the few calls the binding lacks (stream disposition,
// codec and muxer queries); TestBindingLayout checks the assumption against
// the binding's own accessors, so a binding upgrade that breaks it fails
// loudly instead of corrupting memory.

func cFormatContext(fc *astiav.FormatContext) *C.AVFormatContext {
	return *(**C.AVFormatContext)(unsafe.Pointer(fc))
}

func cStream(s *astiav.Stream) *C.AVStream {
	return *(**C.AVStream)(unsafe.Pointer(s))
}

func cCodecContext(cc *astiav.CodecContext) *C.AVCodecContext {
	return *(**C.AVCodecContext)(unsafe.Pointer(cc))
}

func cPacket(p *astiav.Packet) *C.AVPacket {
	return *(**C.AVPacket)(unsafe.Pointer(p))
}

func cFrame(f *astiav.Frame) *C.AVFrame {
	return (*C.AVFrame)(f.UnsafePointer())
}

func init() {
	// FFmpeg writes its own diagnostics to stderr; keep only errors there.
	astiav.SetLogLevel(astiav.LogLevelError)
}

// avErr turns a negative FFmpeg return code into an astiav.Error.
func avErr(ret C.int) error {
	if ret >= 0 {
		return nil
	}
	return astiav.Error(int(ret))
}

// isAgain reports whether err is FFmpeg's EAGAIN.
func isAgain(err error) bool { return errors.Is(err, astiav.ErrEagain) }

// isEOF reports whether err is FFmpeg's end of stream.
func isEOF(err error) bool { return errors.Is(err, astiav.ErrEof) }

func colorRangeName(r astiav.ColorRange) string {
	return C.GoString(C.vm_color_range_name(C.int(r)))
}

func colorSpaceName(s astiav.ColorSpace) string {
	return C.GoString(C.vm_color_space_name(C.int(s)))
}

// muxerCanStore reports whether the named muxer can carry codec id.
func muxerCanStore(muxer string, id astiav.CodecID) bool {
	cm := C.CString(muxer)
	defer C.free(unsafe.Pointer(cm))
	return C.vm_query_codec(cm, C.int(id)) == 1
}

// probeFormat names the container FFmpeg recognises in head (the first
// bytes of a file) by content alone, with the prober's score (0..100).
func probeFormat(head []byte) (string, int) {
	if len(head) == 0 {
		return "", 0
	}
	var score C.int
	empty := C.CString("")
	defer C.free(unsafe.Pointer(empty))
	name := C.vm_probe_format((*C.uint8_t)(unsafe.Pointer(&head[0])), C.int(len(head)), empty, &score)
	if name == nil {
		return "", int(score)
	}
	return C.GoString(name), int(score)
}

// isAttachedPic reports whether s is cover art rather than a video track.
func isAttachedPic(s *astiav.Stream) bool {
	return C.vm_stream_is_attached_pic(cStream(s)) != 0
}

// isRGBFormat reports whether pixels of format f are RGB (or a palette).
func isRGBFormat(f astiav.PixelFormat) bool { return C.vm_pix_fmt_is_rgb(C.int(f)) != 0 }

// isFullRangeFormat reports whether f is one of the JPEG-range YUV formats.
func isFullRangeFormat(f astiav.PixelFormat) bool {
	switch f {
	case astiav.PixelFormatYuvj420P, astiav.PixelFormatYuvj422P, astiav.PixelFormatYuvj444P,
		astiav.PixelFormatYuvj440P, astiav.PixelFormatYuvj411P:
		return true
	}
	return false
}

// cInt64 lets tests (which cannot use cgo) name C int64 fields.
type cInt64 = C.int64_t

// interrupter stops the I/O of one demuxer when a context ends: FFmpeg's
// next read (or its stream-info loop) on the bound format context returns
// AVERROR_EXIT, and the caller reports the context's error.
type interrupter struct {
	mu   sync.Mutex
	flag *C.int // C memory, read by FFmpeg's threads; nil once released
	stop func() bool
}

// bindContext makes ctx interrupt fc, which must not be opened yet. It
// returns nil for a context that never ends. release it after closing fc.
func bindContext(ctx context.Context, fc *astiav.FormatContext) (*interrupter, error) {
	if ctx.Done() == nil {
		return nil, nil
	}
	it := &interrupter{flag: C.vm_interrupt_new()}
	if it.flag == nil {
		return nil, errors.New("out of memory")
	}
	C.vm_interrupt_bind(cFormatContext(fc), it.flag)
	if ctx.Err() != nil {
		C.vm_interrupt_raise(it.flag)
	}
	it.stop = context.AfterFunc(ctx, func() {
		it.mu.Lock()
		defer it.mu.Unlock()
		if it.flag != nil {
			C.vm_interrupt_raise(it.flag)
			if interruptHook != nil {
				interruptHook()
			}
		}
	})
	return it, nil
}

// interruptHook, when a test sets it, runs each time a context's end has
// raised an interrupter's flag (on the goroutine that raised it).
var interruptHook func()

// release frees the flag. Safe on nil and twice.
func (it *interrupter) release() {
	if it == nil {
		return
	}
	it.stop()
	it.mu.Lock()
	defer it.mu.Unlock()
	if it.flag != nil {
		C.vm_interrupt_free(it.flag)
		it.flag = nil
	}
}

// matchFormat reports whether the FFmpeg demuxer name (a comma-separated
// list of names, such as "mov,mp4,m4a,3gp,3g2,mj2") names one of allowed.
func matchFormat(name string, allowed []string) bool {
	for _, n := range strings.Split(name, ",") {
		for _, a := range allowed {
			if n == a {
				return true
			}
		}
	}
	return false
}

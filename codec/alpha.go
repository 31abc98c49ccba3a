package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// AlphaStride is the row length in bytes of the alpha planes of frames w
// pixels wide: w rounded up to 64, the alignment FFmpeg gives its own
// planes (and the encoders' SIMD expects).
func AlphaStride(w int) int { return (w + 63) &^ 63 }

// AlphaPool hands out alpha planes (a byte a pixel, rows of AlphaStride
// bytes) for frames of one size, in C memory that the encoders reference
// directly: a plane attached to a frame (Frame.AttachAlpha) goes to the
// encoder with the frame's Y, U and V, without a copy, and comes back to
// the pool when libavcodec drops its last reference to it. It is safe for
// concurrent use.
type AlphaPool struct {
	p            *C.VMAlphaPool
	w, h, stride int
}

// NewAlphaPool returns a pool of planes for w×h frames.
func NewAlphaPool(w, h int) (*AlphaPool, error) {
	if w <= 0 || h <= 0 {
		return nil, internalErr("creating an alpha pool", fmt.Errorf("frame size %dx%d", w, h))
	}
	stride := AlphaStride(w)
	// Padding past the last row, as FFmpeg's own planes have: SIMD code
	// may read a little beyond a row's end.
	p := C.vm_alpha_pool_new(C.size_t(stride*h + 64))
	if p == nil {
		return nil, internalErr("creating an alpha pool", errors.New("out of memory"))
	}
	return &AlphaPool{p: p, w: w, h: h, stride: stride}, nil
}

// Get returns a plane of the pool, owned by the caller. Its contents are
// whatever the plane held last.
func (p *AlphaPool) Get() (*Alpha, error) {
	if p.p == nil {
		return nil, internalErr("taking an alpha plane", errors.New("the pool is closed"))
	}
	var blk *C.VMAlphaBlock
	ref := C.vm_alpha_get(p.p, &blk)
	if ref == nil {
		return nil, internalErr("taking an alpha plane", errors.New("out of memory"))
	}
	return &Alpha{ref: ref, blk: blk, w: p.w, h: p.h, stride: p.stride}, nil
}

// Close gives the pool up. Planes still out stay valid; their memory is
// freed as each comes back. Safe to call twice.
func (p *AlphaPool) Close() {
	if p.p != nil {
		C.vm_alpha_pool_close(p.p)
		p.p = nil
	}
}

// Alpha is one plane of an AlphaPool, in the hands of one owner: whoever
// Get gave it to, until it calls Release or attaches it to a frame
// (Frame.AttachAlpha), which takes it over. The handle is spent then:
// Plane and Release panic on a spent handle, so a plane used after it was
// given away fails loudly.
type Alpha struct {
	ref          *C.AVBufferRef // nil once spent
	blk          *C.VMAlphaBlock
	w, h, stride int
	spent        string // what spent it
}

// Plane returns the plane's bytes (Height rows of Stride bytes, each row's
// first Width bytes in use) and the stride, to read and write until the
// handle is spent.
func (a *Alpha) Plane() ([]byte, int) {
	a.check("used")
	return unsafe.Slice((*byte)(unsafe.Pointer(a.blk.data)), a.stride*a.h), a.stride
}

// Width and Height are the plane's size in pixels.
func (a *Alpha) Width() int  { return a.w }
func (a *Alpha) Height() int { return a.h }

// Release gives the plane back to its pool.
func (a *Alpha) Release() {
	a.check("released")
	C.vm_buffer_unref(&a.ref)
	a.ref, a.blk, a.spent = nil, nil, "released"
}

func (a *Alpha) check(what string) {
	if a.ref == nil {
		panic(fmt.Sprintf("codec: an alpha plane %s after it was %s", what, a.spent))
	}
}

// GuardAlphaPlanes turns the guard on passed alpha planes on or off,
// process-wide. With it on, a plane written to an encoder is read-only
// until libavcodec drops it, so a write from Go to a plane it has passed
// on faults at once (a panic with debug.SetPanicOnFault, else a crash
// with the writer's stack) instead of changing a picture being encoded.
// It costs two mprotect calls a frame; tests turn it on.
func GuardAlphaPlanes(on bool) {
	v := C.int(0)
	if on {
		v = 1
	}
	C.vm_alpha_set_guard(v)
}

// LiveAlphaPlanes is the number of alpha planes out of their pools
// (held by Go or referenced by FFmpeg), process-wide. Tests use it to
// find leaks.
func LiveAlphaPlanes() int64 { return int64(C.vm_alpha_live_planes()) }

// MappedAlphaPlanes is the number of alpha planes' memory blocks mapped,
// process-wide: those out and those waiting in open pools. A closed pool
// unmaps each of its blocks as it comes back.
func MappedAlphaPlanes() int64 { return int64(C.vm_alpha_mapped_blocks()) }

package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// Frame is a decoded picture in C memory, always yuv420p (8-bit), in
// display orientation (rotation already applied), with its timestamp; it
// becomes yuva420p when an alpha plane is attached to it (AttachAlpha).
//
// Ownership: the Decoder hands each Frame to its caller, who owns it until
// it calls Release; the planes stay valid until then, even after the
// Decoder is closed. Other packages (the Encoder) take references of their
// own and never keep the caller's Frame.
type Frame struct {
	av     atomic.Pointer[astiav.Frame]
	width  int
	height int
	pts    int64
	tb     Rational
	start  int64
	data   [3]unsafe.Pointer
	stride [3]int
	// The attached alpha plane (AttachAlpha), nil when there is none.
	alpha       *C.VMAlphaBlock
	alphaStride int
}

var liveFrames atomic.Int64

// LiveFrames is the number of frames handed out and not yet released,
// process-wide. Tests use it to find leaks.
func LiveFrames() int64 { return liveFrames.Load() }

// shells recycles AVFrame structs (their buffers are FFmpeg's own,
// reference-counted pools). A bounded channel rather than a sync.Pool: a
// shell dropped by the garbage collector would leak its C memory.
var shells = make(chan *astiav.Frame, 256)

func getShell() *astiav.Frame {
	select {
	case f := <-shells:
		return f
	default:
		return astiav.AllocFrame()
	}
}

func putShell(f *astiav.Frame) {
	f.Unref()
	select {
	case shells <- f:
	default:
		f.Free()
	}
}

// newFrame wraps av (a yuv420p frame with positive line sizes) and counts
// it as live. The Frame takes av over.
func newFrame(av *astiav.Frame, tb Rational, start int64) *Frame {
	f := &Frame{width: av.Width(), height: av.Height(), pts: av.Pts(), tb: tb, start: start}
	f.av.Store(av)
	f.loadPlanes(av)
	liveFrames.Add(1)
	return f
}

func (f *Frame) loadPlanes(av *astiav.Frame) {
	c := cFrame(av)
	for i := 0; i < 3; i++ {
		f.data[i] = unsafe.Pointer(c.data[i])
		f.stride[i] = int(c.linesize[i])
	}
}

// Width is the picture width in pixels.
func (f *Frame) Width() int { return f.width }

// Height is the picture height in pixels.
func (f *Frame) Height() int { return f.height }

// PTS is the presentation timestamp in the decoder's TimeBase().
func (f *Frame) PTS() int64 { return f.pts }

// Time is the presentation time from the start of the stream.
func (f *Frame) Time() time.Duration { return ticksToDuration(f.pts-f.start, f.tb) }

// Plane returns plane i (0 = Y, 1 = U, 2 = V) and its stride. data spans
// stride*rows bytes of C memory (rows is Height for Y and (Height+1)/2 for
// U and V; each row holds Width or (Width+1)/2 samples) and is valid until
// Release. Writing through it is safe only after MakeWritable. A released
// frame or a bad index gives nil.
func (f *Frame) Plane(i int) (data []byte, stride int) {
	if i < 0 || i > 2 || f.av.Load() == nil {
		return nil, 0
	}
	rows := f.height
	if i > 0 {
		rows = (f.height + 1) / 2
	}
	return unsafe.Slice((*byte)(f.data[i]), f.stride[i]*rows), f.stride[i]
}

// MakeWritable copies the planes if they are shared with anyone else (the
// decoder's reference frames, an encoder), so that writes through Plane
// are safe. Call Plane again afterwards: the planes may have moved. It is
// refused once an alpha plane is attached.
func (f *Frame) MakeWritable() error {
	av := f.av.Load()
	if av == nil {
		return internalErr("making a frame writable", errors.New("the frame was released"))
	}
	if f.alpha != nil {
		return internalErr("making a frame writable", errors.New("an alpha plane is attached"))
	}
	if err := avErr(C.av_frame_make_writable(cFrame(av))); err != nil {
		return internalErr("making a frame writable", err)
	}
	f.loadPlanes(av)
	return nil
}

// OwnChroma gives the frame U and V planes of its own, for a caller that
// overwrites every sample of both (each row's (Width+1)/2 samples): where
// they are shared with anyone else, they move to a new buffer whose
// contents are undefined; the Y plane stays as it is, shared or not, and
// must not be written. Nothing is copied (MakeWritable copies the whole
// picture). Call Plane again afterwards: the planes may have moved. It is
// refused once an alpha plane is attached.
func (f *Frame) OwnChroma() error {
	av := f.av.Load()
	if av == nil {
		return internalErr("replacing a frame's chroma", errors.New("the frame was released"))
	}
	if f.alpha != nil {
		return internalErr("replacing a frame's chroma", errors.New("an alpha plane is attached"))
	}
	if err := avErr(C.vm_frame_own_chroma(cFrame(av))); err != nil {
		return internalErr("replacing a frame's chroma", err)
	}
	f.loadPlanes(av)
	return nil
}

// Ref returns a new reference to the frame's planes (no copy), owned by
// the caller until it calls Release, like the frames the Decoder hands
// out. Writing to either frame's planes needs MakeWritable or OwnChroma.
// An attached alpha plane is shared too.
func (f *Frame) Ref() (*Frame, error) {
	av := f.av.Load()
	if av == nil {
		return nil, internalErr("referencing a frame", errors.New("the frame was released"))
	}
	r := getShell()
	if err := r.Ref(av); err != nil {
		putShell(r)
		return nil, internalErr("referencing a frame", err)
	}
	n := newFrame(r, f.tb, f.start)
	n.alpha, n.alphaStride = f.alpha, f.alphaStride
	return n, nil
}

// AttachAlpha makes a the frame's alpha plane, without a copy: the frame
// becomes yuva420p and takes a over (a is spent). The plane stays the
// frame's to write, through Alpha, until the frame is written to an
// Encoder (WriteFrame with a nil alpha), which references it: from then on
// it is FFmpeg's to read and no one may write it again (Alpha gives nil;
// with GuardAlphaPlanes a write faults). Releasing the frame drops the
// frame's reference. The plane must be of the frame's size, and the frame
// must have none yet.
func (f *Frame) AttachAlpha(a *Alpha) error {
	av := f.av.Load()
	if av == nil {
		return internalErr("attaching an alpha plane", errors.New("the frame was released"))
	}
	a.check("attached")
	if f.alpha != nil {
		return internalErr("attaching an alpha plane", errors.New("the frame has one already"))
	}
	if a.w != f.width || a.h != f.height {
		return internalErr("attaching an alpha plane", fmt.Errorf("plane of %dx%d for a frame of %dx%d", a.w, a.h, f.width, f.height))
	}
	if err := avErr(C.vm_frame_set_alpha(cFrame(av), a.ref, C.int(a.stride))); err != nil {
		return internalErr("attaching an alpha plane", err)
	}
	f.alpha, f.alphaStride = a.blk, a.stride
	a.ref, a.blk, a.spent = nil, nil, "attached to a frame"
	return nil
}

// Alpha returns the attached alpha plane (Height rows of the stride, each
// row's first Width bytes in use) and its stride, to write until the frame
// is written to an encoder; nil when the frame has none, was released, or
// was passed on.
func (f *Frame) Alpha() ([]byte, int) {
	if f.alpha == nil || f.alpha.passed != 0 || f.av.Load() == nil {
		return nil, 0
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(f.alpha.data)), f.alphaStride*f.height), f.alphaStride
}

// HasAlpha reports whether an alpha plane is attached.
func (f *Frame) HasAlpha() bool { return f.alpha != nil }

// passAlpha marks the attached alpha plane as handed to FFmpeg (read-only
// from now on, and sealed when the guard is on). The frame still holds
// its reference.
func (f *Frame) passAlpha() error {
	return avErr(C.vm_alpha_seal(f.alpha))
}

// Release gives the frame back to its pool. It is safe after the Decoder
// is closed; a second call does nothing.
func (f *Frame) Release() {
	av := f.av.Swap(nil)
	if av == nil {
		return
	}
	f.alpha = nil
	putShell(av)
	liveFrames.Add(-1)
}

// avFrame is the underlying frame, nil once released.
func (f *Frame) avFrame() *astiav.Frame { return f.av.Load() }

// colorSpace is the frame's YUV matrix as FFmpeg tagged it.
func (f *Frame) colorSpace() astiav.ColorSpace {
	if av := f.av.Load(); av != nil {
		return astiav.ColorSpace(cFrame(av).colorspace)
	}
	return astiav.ColorSpaceUnspecified
}

// fullRange reports whether the frame's YUV uses the full 0..255 range.
func (f *Frame) fullRange() bool {
	if av := f.av.Load(); av != nil {
		return av.ColorRange() == astiav.ColorRangeJpeg
	}
	return false
}

// isHD reports whether a picture of this size is treated as HD (BT.709)
// when it does not say which matrix it uses.
func isHD(w, h int) bool { return w >= 1280 || h >= 720 }

// BT709 reports whether the frame's YUV uses the BT.709 matrix (else
// BT.601), as the decoder and the encoders read it: what the frame is
// tagged with, else BT.709 for HD sizes.
func (f *Frame) BT709() bool { return f.usesBT709() }

// FullRange reports whether the frame's YUV uses the full 0..255 range
// (else the video range, Y 16..235 and U, V 16..240).
func (f *Frame) FullRange() bool { return f.fullRange() }

// usesBT709 decides the matrix of the frame's YUV: what it is tagged with,
// else BT.709 for HD sizes and BT.601 for smaller ones.
func (f *Frame) usesBT709() bool {
	switch f.colorSpace() {
	case astiav.ColorSpaceBt709:
		return true
	case astiav.ColorSpaceBt470Bg, astiav.ColorSpaceSmpte170M, astiav.ColorSpaceFcc, astiav.ColorSpaceSmpte240M:
		return false
	}
	return isHD(f.width, f.height)
}

package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// RGBLayout is how an RGBScaler lays out the pixels it writes.
type RGBLayout int

const (
	// RGBPlanar: the R plane, then G, then B (a model's NCHW input).
	RGBPlanar RGBLayout = iota
	// RGBPacked: R, G and B of each pixel in turn (a model's NHWC input).
	RGBPacked
)

// RGBScaler turns frames into RGB bytes (planar or packed, 3*dstW*dstH
// bytes, no padding) at a fixed size with bilinear filtering. It reads the
// YUV with the BT.709 matrix when the frame is tagged BT.709, or is
// untagged and HD (1280 wide or 720 high or more), and BT.601 otherwise,
// honouring the frame's colour range. One per goroutine.
type RGBScaler struct {
	sws              *C.struct_SwsContext
	srcW, srcH       int
	dstW, dstH       int
	dstFmt           astiav.PixelFormat
	elem             int // bytes per sample
	bt709, fullRange bool
	configured       bool
}

// NewRGBScaler prepares a scaler from srcW x srcH frames to dstW x dstH
// planar RGB.
func NewRGBScaler(srcW, srcH, dstW, dstH int) (*RGBScaler, error) {
	return NewRGBScalerLayout(srcW, srcH, dstW, dstH, RGBPlanar)
}

// NewRGBScalerLayout prepares a scaler from srcW x srcH frames to dstW x
// dstH RGB laid out as l.
func NewRGBScalerLayout(srcW, srcH, dstW, dstH int, l RGBLayout) (*RGBScaler, error) {
	switch l {
	case RGBPlanar:
		return newRGBScaler(srcW, srcH, dstW, dstH, astiav.PixelFormatGbrp, 1)
	case RGBPacked:
		return newRGBScaler(srcW, srcH, dstW, dstH, astiav.PixelFormatRgb24, 1)
	}
	return nil, internalErr("creating an RGB scaler", fmt.Errorf("unknown layout %d", l))
}

// newRGBScaler makes a scaler to dstFmt: gbrp or gbrpf32le (planar, elem
// bytes a sample) or rgb24 (packed).
func newRGBScaler(srcW, srcH, dstW, dstH int, dstFmt astiav.PixelFormat, elem int) (*RGBScaler, error) {
	if srcW <= 0 || srcH <= 0 || dstW <= 0 || dstH <= 0 {
		return nil, internalErr("creating an RGB scaler", fmt.Errorf("bad sizes %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	sws := C.vm_sws_new(C.int(srcW), C.int(srcH), C.int(astiav.PixelFormatYuv420P),
		C.int(dstW), C.int(dstH), C.int(dstFmt), C.SWS_BILINEAR|C.SWS_ACCURATE_RND)
	if sws == nil {
		return nil, internalErr("creating an RGB scaler", fmt.Errorf("swscale refused %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	return &RGBScaler{sws: sws, srcW: srcW, srcH: srcH, dstW: dstW, dstH: dstH, dstFmt: dstFmt, elem: elem}, nil
}

// Scale writes f as RGB into dst, which must hold 3*dstW*dstH bytes (a
// model's input slot, for one).
func (s *RGBScaler) Scale(f *Frame, dst []byte) error {
	if len(dst) != 3*s.dstW*s.dstH*s.elem {
		return internalErr("scaling to RGB", fmt.Errorf("destination holds %d bytes, want %d", len(dst), 3*s.dstW*s.dstH*s.elem))
	}
	return s.scale(f, unsafe.Pointer(&dst[0]))
}

// scale writes f into the 3*dstW*dstH samples at base.
func (s *RGBScaler) scale(f *Frame, base unsafe.Pointer) error {
	if s.sws == nil {
		return internalErr("scaling to RGB", errors.New("the scaler is closed"))
	}
	av := f.avFrame()
	if av == nil {
		return internalErr("scaling to RGB", errors.New("the frame was released"))
	}
	if f.Width() != s.srcW || f.Height() != s.srcH {
		return internalErr("scaling to RGB", fmt.Errorf("frame is %dx%d, the scaler expects %dx%d", f.Width(), f.Height(), s.srcW, s.srcH))
	}
	bt709, full := f.usesBT709(), f.fullRange()
	if !s.configured || bt709 != s.bt709 || full != s.fullRange {
		cs := C.int(C.SWS_CS_ITU601)
		if bt709 {
			cs = C.SWS_CS_ITU709
		}
		fr := C.int(0)
		if full {
			fr = 1
		}
		if ret := C.vm_sws_set_yuv_to_rgb(s.sws, cs, fr); ret < 0 {
			return internalErr("scaling to RGB", errors.New("swscale refused the colour matrix"))
		}
		s.bt709, s.fullRange, s.configured = bt709, full, true
	}
	var ret C.int
	if s.dstFmt == astiav.PixelFormatRgb24 {
		ret = C.vm_sws_frame_to_packed(s.sws, cFrame(av), (*C.uint8_t)(base), C.int(3*s.dstW))
	} else {
		plane := s.dstW * s.dstH * s.elem
		r := (*C.uint8_t)(base)
		g := (*C.uint8_t)(unsafe.Add(base, plane))
		b := (*C.uint8_t)(unsafe.Add(base, 2*plane))
		ret = C.vm_sws_frame_to_gbr(s.sws, cFrame(av), r, g, b, C.int(s.dstW*s.elem))
	}
	if ret < 0 {
		return internalErr("scaling to RGB", avErr(ret))
	}
	return nil
}

// Close frees the scaler. Safe to call twice.
func (s *RGBScaler) Close() {
	if s.sws != nil {
		C.sws_freeContext(s.sws)
		s.sws = nil
	}
}

// GrayScaler resizes 8-bit single-channel planes (an alpha matte)
// bilinearly, e.g. from a model's 1024x1024 output up to 1920x1080. One per
// goroutine.
type GrayScaler struct {
	sws        *C.struct_SwsContext
	srcW, srcH int
	dstW, dstH int
}

// NewGrayScaler prepares a scaler from srcW x srcH to dstW x dstH planes.
func NewGrayScaler(srcW, srcH, dstW, dstH int) (*GrayScaler, error) {
	return newGrayScaler(srcW, srcH, astiav.PixelFormatGray8, dstW, dstH)
}

// newGrayScaler makes a scaler from planes of srcFmt (gray8, or grayf32le:
// 0..1 floats, for measurements) to gray8.
func newGrayScaler(srcW, srcH int, srcFmt astiav.PixelFormat, dstW, dstH int) (*GrayScaler, error) {
	if srcW <= 0 || srcH <= 0 || dstW <= 0 || dstH <= 0 {
		return nil, internalErr("creating a gray scaler", fmt.Errorf("bad sizes %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	sws := C.vm_sws_new(C.int(srcW), C.int(srcH), C.int(srcFmt),
		C.int(dstW), C.int(dstH), C.int(astiav.PixelFormatGray8), C.SWS_BILINEAR|C.SWS_ACCURATE_RND)
	if sws == nil {
		return nil, internalErr("creating a gray scaler", fmt.Errorf("swscale refused %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	return &GrayScaler{sws: sws, srcW: srcW, srcH: srcH, dstW: dstW, dstH: dstH}, nil
}

// scaleFrom resizes the srcW*srcH samples of elem bytes at src into dst
// (rows of dstStride).
func (s *GrayScaler) scaleFrom(src unsafe.Pointer, elem int, dst []byte, dstStride int) error {
	if s.sws == nil {
		return internalErr("scaling a plane", errors.New("the scaler is closed"))
	}
	ret := C.vm_sws_gray(s.sws, (*C.uint8_t)(src), C.int(s.srcW*elem), C.int(s.srcH),
		(*C.uint8_t)(unsafe.Pointer(&dst[0])), C.int(dstStride))
	if ret < 0 {
		return internalErr("scaling a plane", avErr(ret))
	}
	return nil
}

// Scale resizes src (srcW*srcH bytes, tightly packed) into dst (dstW*dstH
// bytes).
func (s *GrayScaler) Scale(src []byte, dst []byte) error {
	if len(dst) != s.dstW*s.dstH {
		return internalErr("scaling a plane", fmt.Errorf("destination of %d bytes, want %d", len(dst), s.dstW*s.dstH))
	}
	return s.ScaleInto(src, dst, s.dstW)
}

// ScaleInto resizes src (srcW*srcH bytes, tightly packed) into dst, dstH
// rows of dstStride bytes (an alpha plane of an AlphaPool).
func (s *GrayScaler) ScaleInto(src []byte, dst []byte, dstStride int) error {
	if len(src) != s.srcW*s.srcH || dstStride < s.dstW || len(dst) < (s.dstH-1)*dstStride+s.dstW {
		return internalErr("scaling a plane", fmt.Errorf("planes of %d and %d bytes (stride %d), want %d and %dx%d", len(src), len(dst), dstStride, s.srcW*s.srcH, s.dstW, s.dstH))
	}
	return s.scaleFrom(unsafe.Pointer(&src[0]), 1, dst, dstStride)
}

// Close frees the scaler. Safe to call twice.
func (s *GrayScaler) Close() {
	if s.sws != nil {
		C.sws_freeContext(s.sws)
		s.sws = nil
	}
}

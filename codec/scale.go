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

// RGBScaler turns frames into planar RGB bytes (the R plane, then G, then
// B; each dstW*dstH bytes, no padding) at a fixed size with bilinear
// filtering. It reads the YUV with the BT.709 matrix when the frame is
// tagged BT.709, or is untagged and HD (1280 wide or 720 high or more), and
// BT.601 otherwise, honouring the frame's colour range. One per goroutine.
type RGBScaler struct {
	sws              *C.struct_SwsContext
	srcW, srcH       int
	dstW, dstH       int
	bt709, fullRange bool
	configured       bool
}

// NewRGBScaler prepares a scaler from srcW x srcH frames to dstW x dstH RGB.
func NewRGBScaler(srcW, srcH, dstW, dstH int) (*RGBScaler, error) {
	if srcW <= 0 || srcH <= 0 || dstW <= 0 || dstH <= 0 {
		return nil, internalErr("creating an RGB scaler", fmt.Errorf("bad sizes %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	sws := C.vm_sws_new(C.int(srcW), C.int(srcH), C.int(astiav.PixelFormatYuv420P),
		C.int(dstW), C.int(dstH), C.int(astiav.PixelFormatGbrp), C.SWS_BILINEAR|C.SWS_ACCURATE_RND)
	if sws == nil {
		return nil, internalErr("creating an RGB scaler", fmt.Errorf("swscale refused %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	return &RGBScaler{sws: sws, srcW: srcW, srcH: srcH, dstW: dstW, dstH: dstH}, nil
}

// Scale writes f as planar RGB into dst, which must hold 3*dstW*dstH bytes.
func (s *RGBScaler) Scale(f *Frame, dst []byte) error {
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
	n := s.dstW * s.dstH
	if len(dst) != 3*n {
		return internalErr("scaling to RGB", fmt.Errorf("destination holds %d bytes, want %d", len(dst), 3*n))
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
	base := unsafe.Pointer(&dst[0])
	r := (*C.uint8_t)(base)
	g := (*C.uint8_t)(unsafe.Add(base, n))
	b := (*C.uint8_t)(unsafe.Add(base, 2*n))
	if ret := C.vm_sws_frame_to_gbr(s.sws, cFrame(av), r, g, b, C.int(s.dstW)); ret < 0 {
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
	if srcW <= 0 || srcH <= 0 || dstW <= 0 || dstH <= 0 {
		return nil, internalErr("creating a gray scaler", fmt.Errorf("bad sizes %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	sws := C.vm_sws_new(C.int(srcW), C.int(srcH), C.int(astiav.PixelFormatGray8),
		C.int(dstW), C.int(dstH), C.int(astiav.PixelFormatGray8), C.SWS_BILINEAR|C.SWS_ACCURATE_RND)
	if sws == nil {
		return nil, internalErr("creating a gray scaler", fmt.Errorf("swscale refused %dx%d -> %dx%d", srcW, srcH, dstW, dstH))
	}
	return &GrayScaler{sws: sws, srcW: srcW, srcH: srcH, dstW: dstW, dstH: dstH}, nil
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
	if s.sws == nil {
		return internalErr("scaling a plane", errors.New("the scaler is closed"))
	}
	if len(src) != s.srcW*s.srcH || dstStride < s.dstW || len(dst) < (s.dstH-1)*dstStride+s.dstW {
		return internalErr("scaling a plane", fmt.Errorf("planes of %d and %d bytes (stride %d), want %d and %dx%d", len(src), len(dst), dstStride, s.srcW*s.srcH, s.dstW, s.dstH))
	}
	ret := C.vm_sws_gray(s.sws, (*C.uint8_t)(unsafe.Pointer(&src[0])), C.int(s.srcW), C.int(s.srcH),
		(*C.uint8_t)(unsafe.Pointer(&dst[0])), C.int(dstStride))
	if ret < 0 {
		return internalErr("scaling a plane", avErr(ret))
	}
	return nil
}

// Close frees the scaler. Safe to call twice.
func (s *GrayScaler) Close() {
	if s.sws != nil {
		C.sws_freeContext(s.sws)
		s.sws = nil
	}
}

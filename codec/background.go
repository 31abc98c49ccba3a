package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"

	"github.com/asticode/go-astiav"

	"vidmatte"
)

// makeBackground builds the constant background picture the graph takes on
// its second input (a colour or an image covering the canvas), or nil when
// the graph takes none. It is yuv420p in the frames' matrix and range.
func (e *Encoder) makeBackground() (*astiav.Frame, error) {
	l := &e.lay
	if !l.needsBackgroundInput() {
		return nil, nil
	}
	switch l.bg.Type {
	case vidmatte.BackgroundColor:
		c := l.bg.Color
		y, u, v := rgbToYUV(c[0], c[1], c[2], e.bt709, e.fullRange)
		f := astiav.AllocFrame()
		ret := C.vm_frame_fill_yuva(cFrame(f), C.int(l.canvasW), C.int(l.canvasH), C.int(astiav.PixelFormatYuv420P),
			C.uint8_t(y), C.uint8_t(u), C.uint8_t(v), 255)
		if ret < 0 {
			f.Free()
			return nil, internalErr("painting the background", avErr(ret))
		}
		return f, nil
	case vidmatte.BackgroundImage:
		return coverCanvas(e.bgPicture, l.canvasW, l.canvasH, e.bt709, e.fullRange, e.set.Threads)
	}
	return nil, nil
}

// loadBackgroundImage decodes the background image, as NewEncoder checks
// it before any frame arrives.
func loadBackgroundImage(path string) (*astiav.Frame, error) {
	pic, err := decodeFirstPicture(path)
	if err != nil {
		return nil, &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Message: "the background image cannot be read", Err: err}
	}
	return pic, nil
}

// rgbToYUV converts an RGB colour (components 0..1) to 8-bit Y, Cb, Cr with
// the BT.709 or BT.601 matrix, in the limited or full range.
func rgbToYUV(r, g, b float64, bt709, fullRange bool) (y, u, v uint8) {
	kr, kb := 0.299, 0.114
	if bt709 {
		kr, kb = 0.2126, 0.0722
	}
	luma := kr*r + (1-kr-kb)*g + kb*b
	cb := (b - luma) / (2 * (1 - kb))
	cr := (r - luma) / (2 * (1 - kr))
	clamp := func(x float64) uint8 { return uint8(math.Max(0, math.Min(255, math.Round(x)))) }
	if fullRange {
		return clamp(255 * luma), clamp(128 + 255*cb), clamp(128 + 255*cr)
	}
	return clamp(16 + 219*luma), clamp(128 + 224*cb), clamp(128 + 224*cr)
}

// coverCanvas scales a decoded picture to cover w x h (keeping its aspect
// ratio, cropping the overflow around the centre), as yuv420p in the given
// matrix and range. pic is left as it was.
func coverCanvas(src *astiav.Frame, w, h int, bt709, fullRange bool, threads int) (*astiav.Frame, error) {
	fail := func(err error) (*astiav.Frame, error) {
		return nil, &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Message: "the background image cannot be used", Err: err}
	}
	pic := src.Clone()
	if pic == nil {
		return fail(errors.New("out of memory"))
	}
	defer pic.Free()
	matrix, rng := "bt601", "tv"
	if bt709 {
		matrix = "bt709"
	}
	if fullRange {
		rng = "pc"
	}
	desc := fmt.Sprintf("[in]format=gbrp,scale=w=%d:h=%d:force_original_aspect_ratio=increase:out_color_matrix=%s:out_range=%s:flags=bicubic+accurate_rnd,crop=w=%d:h=%d,format=yuv420p[out]",
		w, h, matrix, rng, w, h)
	g, err := newVideoGraph(desc, []graphInput{{label: "in", width: pic.Width(), height: pic.Height(), format: pic.PixelFormat(), tb: Rational{1, 25}}}, threads)
	if err != nil {
		return fail(err)
	}
	defer g.free()
	pic.SetPts(0)
	if err := g.push(0, pic); err != nil {
		return fail(err)
	}
	if err := g.push(0, nil); err != nil {
		return fail(err)
	}
	out := astiav.AllocFrame()
	if err := g.pull(out); err != nil {
		out.Free()
		return fail(err)
	}
	return out, nil
}

// decodeFirstPicture decodes the first video frame of a file (an image).
func decodeFirstPicture(path string) (*astiav.Frame, error) {
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, errors.New("out of memory")
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	_ = opts.Set("protocol_whitelist", "file", 0)
	// A file name is a name, never an image2 sequence pattern.
	_ = opts.Set("pattern_type", "none", 0)
	if err := fc.OpenInput("file:"+path, nil, opts); err != nil {
		fc.Free()
		return nil, err
	}
	defer func() {
		fc.CloseInput()
		fc.Free()
	}()
	if err := fc.FindStreamInfo(nil); err != nil {
		return nil, err
	}
	var st *astiav.Stream
	for _, s := range fc.Streams() {
		if s.CodecParameters().MediaType() == astiav.MediaTypeVideo {
			st = s
			break
		}
	}
	if st == nil {
		return nil, errors.New("no picture in the file")
	}
	codec := astiav.FindDecoder(st.CodecParameters().CodecID())
	if codec == nil {
		return nil, fmt.Errorf("no decoder for %s", st.CodecParameters().CodecID().Name())
	}
	cc := astiav.AllocCodecContext(codec)
	defer cc.Free()
	if err := st.CodecParameters().ToCodecContext(cc); err != nil {
		return nil, err
	}
	if err := cc.Open(codec, nil); err != nil {
		return nil, err
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	frame := astiav.AllocFrame()
	flushed := false
	for {
		err := cc.ReceiveFrame(frame)
		if err == nil {
			return frame, nil
		}
		if !isAgain(err) {
			frame.Free()
			return nil, err
		}
		if flushed {
			frame.Free()
			return nil, errors.New("no picture could be decoded")
		}
		if err := fc.ReadFrame(pkt); err != nil {
			flushed = true
			_ = cc.SendPacket(nil)
			continue
		}
		if pkt.StreamIndex() == st.Index() {
			_ = cc.SendPacket(pkt)
		}
		pkt.Unref()
	}
}

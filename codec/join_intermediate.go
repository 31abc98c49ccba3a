package codec

/*
#include <stdlib.h>
#include "ffmpeg.h"

static int vm_stream_set_meta(AVStream *st, const char *k, const char *v) {
	return av_dict_set(&st->metadata, k, v, 0);
}
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"os"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// Intermediate writes frames with their alpha without loss (FFV1,
// yuva420p, in NUT, which keeps the frames' time base exactly): the part
// of an output whose own encoding cannot be cut into joinable pieces. Its
// timestamps start at zero at its first frame, like an Encoder's. It has
// the Encoder's ownership rules and its Close/Abort contract.
type Intermediate struct {
	path      string
	w, h      int
	tb, rate  Rational
	mux       *astiav.FormatContext
	pb        *astiav.IOContext
	cc        *astiav.CodecContext
	st        *astiav.Stream
	pkt       *astiav.Packet
	pool      *C.AVBufferPool
	linesize  int
	started   bool
	origin    int64
	lastPTS   int64
	bt709     bool
	fullRange bool
	err       error
	done      bool
}

// NewIntermediate creates an intermediate part at path for frames of
// w×h whose PTS are in time base tb.
func NewIntermediate(path string, w, h int, tb, rate Rational) (*Intermediate, error) {
	if w <= 0 || h <= 0 || !tb.Valid() {
		return nil, internalErr("creating an intermediate", fmt.Errorf("%dx%d, time base %v", w, h, tb))
	}
	m := &Intermediate{path: path, w: w, h: h, tb: tb, rate: rate}
	fc, err := astiav.AllocOutputFormatContext(nil, "nut", path)
	if err != nil {
		return nil, internalErr("creating the intermediate muxer", err)
	}
	m.mux = fc
	pb, err := astiav.OpenIOContext("file:"+path, astiav.NewIOContextFlags(astiav.IOContextFlagWrite))
	if err != nil {
		m.Abort()
		return nil, internalErr("creating the intermediate file", err)
	}
	m.pb = pb
	fc.SetPb(pb)
	m.pkt = astiav.AllocPacket()
	m.linesize = AlphaStride(w)
	m.pool = newEncoderAlphaPool(w, h)
	if m.pool == nil {
		m.Abort()
		return nil, internalErr("allocating alpha planes", errors.New("out of memory"))
	}
	return m, nil
}

func (m *Intermediate) start(f *Frame) error {
	m.bt709, m.fullRange = f.usesBT709(), f.fullRange()
	m.origin = f.PTS()
	codec := astiav.FindEncoderByName("ffv1")
	if codec == nil {
		return internalErr("finding the ffv1 encoder", errors.New("FFmpeg has none"))
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return internalErr("allocating the ffv1 encoder", errors.New("out of memory"))
	}
	m.cc = cc
	cc.SetWidth(m.w)
	cc.SetHeight(m.h)
	cc.SetPixelFormat(astiav.PixelFormatYuva420P)
	cc.SetTimeBase(m.tb.av())
	cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	if m.rate.Valid() {
		cc.SetFramerate(m.rate.av())
	}
	cc.SetThreadCount(0)
	cc.SetThreadType(astiav.ThreadTypeSlice)
	if m.mux.OutputFormat().Flags().Has(astiav.IOFormatFlagGlobalheader) {
		cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	}
	prim, trc, space := C.int(astiav.ColorPrimariesSmpte170M), C.int(astiav.ColorTransferCharacteristicSmpte170M), C.int(astiav.ColorSpaceSmpte170M)
	if m.bt709 {
		prim, trc, space = C.int(astiav.ColorPrimariesBt709), C.int(astiav.ColorTransferCharacteristicBt709), C.int(astiav.ColorSpaceBt709)
	}
	rng := C.int(astiav.ColorRangeMpeg)
	if m.fullRange {
		rng = C.int(astiav.ColorRangeJpeg)
	}
	C.vm_cc_set_color(cCodecContext(cc), prim, trc, space, rng)
	d := astiav.NewDictionary()
	defer d.Free()
	_ = d.Set("slices", "4", 0)
	if err := cc.Open(codec, d); err != nil {
		return internalErr("opening the ffv1 encoder", err)
	}
	m.st = m.mux.NewStream(nil)
	if m.st == nil {
		return internalErr("adding the intermediate stream", errors.New("out of memory"))
	}
	if err := m.st.CodecParameters().FromCodecContext(cc); err != nil {
		return internalErr("describing the intermediate stream", err)
	}
	m.st.SetTimeBase(cc.TimeBase())
	// The frames' colour description travels in the stream's metadata
	// (FFV1 keeps none): the join's encoder takes it from the first frame.
	k, v := C.CString(colorKey), C.CString(colorTag(m.bt709, m.fullRange))
	ret := C.vm_stream_set_meta(cStream(m.st), k, v)
	C.free(unsafe.Pointer(k))
	C.free(unsafe.Pointer(v))
	if ret < 0 {
		return internalErr("describing the intermediate stream", avErr(ret))
	}
	if err := m.mux.WriteHeader(nil); err != nil {
		return internalErr("writing the intermediate header", err)
	}
	m.started = true
	return nil
}

// colorKey names the intermediate stream's colour description.
const colorKey = "vidmatte_color"

func colorTag(bt709, full bool) string {
	s := "bt601"
	if bt709 {
		s = "bt709"
	}
	if full {
		return s + "/pc"
	}
	return s + "/tv"
}

// WriteFrame writes f with its alpha, as Encoder.WriteFrame takes it (w*h
// bytes, or nil for the plane attached to f); it keeps neither.
func (m *Intermediate) WriteFrame(f *Frame, alpha []byte) error {
	if m.err != nil {
		return m.err
	}
	if m.done {
		return internalErr("writing a frame", errors.New("the intermediate is closed"))
	}
	av := f.avFrame()
	if av == nil {
		return internalErr("writing a frame", errors.New("the frame was released"))
	}
	if f.Width() != m.w || f.Height() != m.h {
		return internalErr("writing a frame", fmt.Errorf("frame %dx%d, want %dx%d", f.Width(), f.Height(), m.w, m.h))
	}
	if err := checkAlphaArg(f, alpha, m.w*m.h); err != nil {
		return err
	}
	if m.started && f.PTS() <= m.lastPTS {
		return internalErr("writing a frame", fmt.Errorf("PTS %d after %d: frames must come in presentation order", f.PTS(), m.lastPTS))
	}
	if !m.started {
		if err := m.start(f); err != nil {
			m.err = err
			return err
		}
	}
	m.lastPTS = f.PTS()
	yuva, err := withAlpha(f, av, alpha, m.pool, m.linesize)
	if err != nil {
		m.err = err
		return err
	}
	defer putShell(yuva)
	yuva.SetPts(f.PTS() - m.origin)
	if err := m.cc.SendFrame(yuva); err != nil {
		m.err = internalErr("encoding an intermediate frame", err)
		return m.err
	}
	if err := m.receive(); err != nil {
		m.err = err
		return err
	}
	return nil
}

func (m *Intermediate) receive() error {
	for {
		err := m.cc.ReceivePacket(m.pkt)
		if err != nil {
			if isAgain(err) || isEOF(err) {
				return nil
			}
			return internalErr("encoding an intermediate frame", err)
		}
		m.pkt.SetStreamIndex(m.st.Index())
		m.pkt.RescaleTs(m.cc.TimeBase(), m.st.TimeBase())
		if err := m.mux.WriteInterleavedFrame(m.pkt); err != nil {
			m.pkt.Unref()
			return internalErr("writing the intermediate", err)
		}
	}
}

// Close completes the file; on failure it is removed. With no frame
// written it fails like the Encoder's.
func (m *Intermediate) Close() error {
	if m.done {
		return m.err
	}
	if m.err == nil && !m.started {
		m.err = internalErr("finishing an intermediate", errors.New("no video frames were written"))
	}
	if m.err == nil {
		if err := m.cc.SendFrame(nil); err != nil && !isEOF(err) {
			m.err = internalErr("flushing the ffv1 encoder", err)
		} else if err := m.receive(); err != nil {
			m.err = err
		} else if err := m.mux.WriteTrailer(); err != nil {
			m.err = internalErr("writing the intermediate trailer", err)
		} else {
			err := m.pb.Close()
			m.pb = nil
			if err != nil {
				m.err = internalErr("closing the intermediate", err)
			}
		}
	}
	if m.err != nil {
		err := m.err
		m.Abort()
		return err
	}
	m.release()
	m.done = true
	return nil
}

// Abort removes the partial file; safe twice.
func (m *Intermediate) Abort() {
	if m.done && m.err == nil {
		return
	}
	m.release()
	os.Remove(m.path)
	m.done = true
	if m.err == nil {
		m.err = internalErr("writing a frame", errors.New("the intermediate was aborted"))
	}
}

func (m *Intermediate) release() {
	if m.cc != nil {
		m.cc.Free()
		m.cc = nil
	}
	if m.pb != nil {
		_ = m.pb.Close()
		m.pb = nil
	}
	if m.mux != nil {
		m.mux.Free()
		m.mux = nil
	}
	if m.pkt != nil {
		m.pkt.Free()
		m.pkt = nil
	}
	if m.pool != nil {
		C.vm_buffer_pool_free(m.pool)
		m.pool = nil
	}
}

// joinIntermediates decodes the intermediate parts in order and encodes
// their frames once into the output, as one continuous run would have.
func joinIntermediates(ctx context.Context, path string, o JoinOptions) (frames int64, err error) {
	eo := o.Encoder
	eo.AudioFrom = ""
	eo.TimeBase = o.TimeBase
	enc, err := NewEncoder(path, eo)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			enc.Abort()
		}
	}()
	alpha := make([]byte, eo.Width*eo.Height)
	for i := 0; i < o.Parts; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := decodeIntermediate(o, i, func(f *Frame, av *astiav.Frame) error {
			c := cFrame(av)
			src := unsafe.Slice((*byte)(unsafe.Pointer(c.data[3])), int(c.linesize[3])*eo.Height)
			for y := 0; y < eo.Height; y++ {
				copy(alpha[y*eo.Width:(y+1)*eo.Width], src[y*int(c.linesize[3]):])
			}
			return enc.WriteFrame(f, alpha)
		})
		frames += n
		if err != nil {
			return 0, err
		}
	}
	if err := enc.Close(); err != nil {
		return 0, err
	}
	return frames, nil
}

// decodeIntermediate calls fn for every frame of part i, shifted to its
// place in the output (PTS in o.TimeBase).
func decodeIntermediate(o JoinOptions, i int, fn func(f *Frame, av *astiav.Frame) error) (int64, error) {
	return readPart(o, i, func(fc *astiav.FormatContext, ist *astiav.Stream) (int64, error) {
		return decodePart(fc, ist, o, i, fn)
	})
}

// decodePart is decodeIntermediate on the opened part.
func decodePart(fc *astiav.FormatContext, ist *astiav.Stream, o JoinOptions, i int, fn func(f *Frame, av *astiav.Frame) error) (int64, error) {
	codec := astiav.FindDecoder(ist.CodecParameters().CodecID())
	if codec == nil {
		return 0, internalErr("decoding an intermediate", errors.New("no decoder"))
	}
	cc := astiav.AllocCodecContext(codec)
	if cc == nil {
		return 0, internalErr("decoding an intermediate", errors.New("out of memory"))
	}
	defer cc.Free()
	if err := ist.CodecParameters().ToCodecContext(cc); err != nil {
		return 0, internalErr("decoding an intermediate", err)
	}
	cc.SetThreadCount(0)
	if err := cc.Open(codec, nil); err != nil {
		return 0, internalErr("decoding an intermediate", err)
	}
	space, rng := astiav.ColorSpaceSmpte170M, astiav.ColorRangeMpeg
	if md := ist.Metadata(); md != nil {
		if e := md.Get(colorKey, nil, 0); e != nil {
			switch e.Value() {
			case colorTag(true, false):
				space = astiav.ColorSpaceBt709
			case colorTag(true, true):
				space, rng = astiav.ColorSpaceBt709, astiav.ColorRangeJpeg
			case colorTag(false, true):
				rng = astiav.ColorRangeJpeg
			}
		}
	}
	itb := ist.TimeBase()
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	var n int64
	drain := func() error {
		for {
			av := getShell()
			err := cc.ReceiveFrame(av)
			if err != nil {
				putShell(av)
				if isAgain(err) || isEOF(err) {
					return nil
				}
				return internalErr("decoding an intermediate", err)
			}
			if av.PixelFormat() != astiav.PixelFormatYuva420P {
				putShell(av)
				return internalErr("decoding an intermediate", fmt.Errorf("pixel format %s", av.PixelFormat()))
			}
			pts := int64(C.vm_frame_best_effort_pts(cFrame(av)))
			av.SetPts(astiav.RescaleQ(pts, itb, o.TimeBase.av()) + o.Offsets[i])
			C.vm_set_colorspace(cFrame(av), C.int(space), C.int(rng))
			f := newFrame(av, o.TimeBase, 0)
			err = fn(f, av)
			f.Release()
			n++
			if err != nil {
				return err
			}
		}
	}
	for {
		if err := fc.ReadFrame(pkt); err != nil {
			if !isEOF(err) {
				return n, internalErr("reading an intermediate", err)
			}
			break
		}
		if pkt.StreamIndex() != ist.Index() {
			pkt.Unref()
			continue
		}
		err := cc.SendPacket(pkt)
		pkt.Unref()
		if err != nil {
			return n, internalErr("decoding an intermediate", err)
		}
		if err := drain(); err != nil {
			return n, err
		}
	}
	if err := cc.SendPacket(nil); err != nil && !isEOF(err) {
		return n, internalErr("decoding an intermediate", err)
	}
	return n, drain()
}

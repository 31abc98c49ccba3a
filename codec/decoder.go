package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asticode/go-astiav"
)

// DecoderOptions tune a Decoder. The zero value is sane.
type DecoderOptions struct {
	// Threads is the number of decoding threads; 0 = one per core.
	Threads int
	// MaxWidth and MaxHeight bound the display size (after rotation);
	// 0 = DefaultMaxWidth / DefaultMaxHeight. A larger input is
	// ErrDimensions.
	MaxWidth, MaxHeight int
}

// maxDecodeErrors is how many packets in a row may fail to decode before
// the stream is given up as corrupt.
const maxDecodeErrors = 250

// Decoder reads the video stream of a file and hands out its frames, in
// presentation order, as yuv420p in display orientation. It is not safe for
// concurrent use.
//
// Damage in the middle of a stream is skipped: packets that do not decode
// are dropped and decoding goes on. At the end, Next returns io.EOF, or:
//   - an error wrapping ErrTruncated when the container's structure declares
//     more data than the file holds (a file cut short, even mid-frame): the
//     frames before the cut have been returned;
//   - an error wrapping ErrCorrupt when the demuxer fails before the end,
//     when no frame at all could be decoded, or after maxDecodeErrors
//     packets in a row fail to decode.
//
// Where FFmpeg cannot tell a cut file from a complete one (containers with
// no declared sizes, such as MPEG-TS), a cut file simply ends with io.EOF.
type Decoder struct {
	in   *input
	info *Info
	idx  int
	cc   *astiav.CodecContext
	pkt  *astiav.Packet
	tb   Rational
	// start is the stream's first timestamp: Frame.Time counts from it.
	start int64

	// norm converts, rotates or resizes decoded frames that are not
	// already yuv420p upright at the first frame's size; nil until needed.
	norm    *videoGraph
	normKey string
	// normFormat is the pixel format the normaliser was built for.
	normFormat astiav.PixelFormat
	// normFlushed is set once the normaliser has been told the stream
	// ended.
	normFlushed bool
	// rgbMatrix is the matrix RGB sources are converted with.
	rgbMatrix astiav.ColorSpace

	sentEOF   bool
	decEOF    bool
	readErr   error
	badInARow int
	decoded   int64
	lastPTS   int64
	lastEnd   int64
	havePTS   bool
	// declared is the video stream's duration as the container gives it
	// (time base units), 0 when unknown.
	declared int64
	done     error
}

// OpenDecoder opens path and prepares its video stream for decoding.
// Failures are the typed errors of this package.
func OpenDecoder(path string, opts DecoderOptions) (*Decoder, error) {
	if opts.MaxWidth <= 0 {
		opts.MaxWidth = DefaultMaxWidth
	}
	if opts.MaxHeight <= 0 {
		opts.MaxHeight = DefaultMaxHeight
	}
	in, err := openInput(context.Background(), path)
	if err != nil {
		return nil, err
	}
	info, err := in.describe(opts.MaxWidth, opts.MaxHeight)
	if err != nil {
		in.close()
		return nil, err
	}
	if err := in.complete(context.Background(), info); err != nil {
		in.close()
		return nil, err
	}
	d := &Decoder{in: in, info: info, idx: in.video.Index(), tb: info.TimeBase}
	if s := in.video.StartTime(); s != astiav.NoPtsValue {
		d.start = s
	}
	d.declared = declaredDuration(in.video)
	d.rgbMatrix = astiav.ColorSpaceSmpte170M
	if isHD(info.Width, info.Height) {
		d.rgbMatrix = astiav.ColorSpaceBt709
	}
	cp := in.video.CodecParameters()
	codec := astiav.FindDecoder(cp.CodecID())
	d.cc = astiav.AllocCodecContext(codec)
	if d.cc == nil {
		d.Close()
		return nil, internalErr("allocating a decoder", errors.New("out of memory"))
	}
	if err := cp.ToCodecContext(d.cc); err != nil {
		d.Close()
		return nil, internalErr("configuring the decoder", err)
	}
	d.cc.SetThreadCount(opts.Threads)
	d.cc.SetThreadType(astiav.ThreadTypeFrame | astiav.ThreadTypeSlice)
	d.cc.SetTimeBase(in.video.TimeBase())
	C.vm_set_pkt_timebase(cCodecContext(d.cc), C.int(d.tb.Num), C.int(d.tb.Den))
	if err := d.cc.Open(codec, nil); err != nil {
		d.Close()
		return nil, inputErrCause(ErrUnsupportedCodec, err, "the %s video cannot be decoded", info.VideoCodec)
	}
	d.pkt = astiav.AllocPacket()
	return d, nil
}

// Info describes the file being decoded.
func (d *Decoder) Info() *Info { return d.info }

// TimeBase is the unit of Frame.PTS.
func (d *Decoder) TimeBase() Rational { return d.tb }

// Next returns the next frame. The caller owns it until it calls Release.
// At the end of the stream it returns io.EOF or one of the errors listed on
// Decoder; after that every call returns the same error. A done ctx stops
// it with ctx.Err().
func (d *Decoder) Next(ctx context.Context) (*Frame, error) {
	for {
		if d.done != nil {
			return nil, d.done
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if d.cc == nil {
			return nil, internalErr("reading a closed decoder", errors.New("closed"))
		}
		if f, err := d.pullNormalised(); f != nil || err != nil {
			if err != nil {
				d.done = internalErr("converting a frame", err)
				return nil, d.done
			}
			return f, nil
		}
		if d.decEOF {
			if d.norm != nil && !d.normFlushed {
				d.normFlushed = true
				if err := d.norm.push(0, nil); err != nil {
					d.done = internalErr("flushing the frame converter", err)
				}
				continue
			}
			d.done = d.endError()
			return nil, d.done
		}
		av := getShell()
		err := d.cc.ReceiveFrame(av)
		switch {
		case err == nil:
			d.badInARow = 0
			f, err := d.deliver(av)
			if err != nil {
				d.done = internalErr("converting a frame", err)
				return nil, d.done
			}
			if f != nil {
				return f, nil
			}
		case isAgain(err):
			putShell(av)
			if err := d.feed(); err != nil {
				d.done = err
				return nil, err
			}
		case isEOF(err):
			putShell(av)
			d.decEOF = true
		default:
			putShell(av)
			if err := d.decodeFailed(err); err != nil {
				d.done = err
				return nil, err
			}
		}
	}
}

// feed reads packets until one of the video stream has been sent to the
// decoder, or signals the end of the stream to the decoder.
func (d *Decoder) feed() error {
	if d.sentEOF {
		// The decoder has all input; EAGAIN now would be a decoder bug.
		d.decEOF = true
		return nil
	}
	for {
		if err := d.in.fc.ReadFrame(d.pkt); err != nil {
			if !isEOF(err) {
				d.readErr = err
			}
			d.sentEOF = true
			if err := d.cc.SendPacket(nil); err != nil && !isEOF(err) {
				d.decEOF = true
			}
			return nil
		}
		if d.pkt.StreamIndex() != d.idx {
			d.pkt.Unref()
			continue
		}
		err := d.cc.SendPacket(d.pkt)
		d.pkt.Unref()
		if err != nil && !isAgain(err) {
			return d.decodeFailed(err)
		}
		return nil
	}
}

// decodeFailed counts a packet or frame that failed to decode; too many in
// a row is ErrCorrupt.
func (d *Decoder) decodeFailed(err error) error {
	d.badInARow++
	if d.badInARow >= maxDecodeErrors {
		return inputErrCause(ErrCorrupt, err, "the video is damaged: %d packets in a row failed to decode after %d good frames", d.badInARow, d.decoded)
	}
	return nil
}

// endError is what Next returns once every frame has been delivered.
func (d *Decoder) endError() error {
	name := d.info.Container
	switch {
	case d.in.cutShort:
		return inputErr(ErrTruncated, "the file is cut short: its %s container declares more data than the file holds (%d frames could be read)", name, d.decoded)
	case d.decoded == 0:
		if d.readErr != nil {
			return inputErrCause(ErrCorrupt, d.readErr, "the video is damaged: no frame could be decoded")
		}
		return inputErr(ErrCorrupt, "the video is damaged: no frame could be decoded")
	case d.readErr != nil:
		return inputErrCause(ErrCorrupt, d.readErr, "the file is damaged: reading stopped after %d frames", d.decoded)
	}
	if d.declared > 0 {
		reached := d.lastEnd - d.start
		slack := max(3*d.frameStep(), d.declared/10)
		if reached+slack < d.declared {
			return inputErr(ErrCorrupt, "the file is damaged: decoding stopped at %v of its %v", ticksToDuration(reached, d.tb).Round(time.Millisecond), ticksToDuration(d.declared, d.tb).Round(time.Millisecond))
		}
	}
	return io.EOF
}

// deliver stamps a decoded frame and returns it, directly when it already
// is yuv420p, upright and of the stream's size, else through the
// normaliser (which may hold it back; then it returns nil).
func (d *Decoder) deliver(av *astiav.Frame) (*Frame, error) {
	pts := int64(C.vm_frame_best_effort_pts(cFrame(av)))
	if pts == astiav.NoPtsValue {
		if d.havePTS {
			step := int64(C.vm_frame_duration(cFrame(av)))
			if step <= 0 {
				step = d.frameStep()
			}
			pts = d.lastPTS + step
		} else {
			pts = d.start
		}
	}
	if d.havePTS && pts <= d.lastPTS {
		// Timestamps must grow for encoders; nudge repeated ones.
		pts = d.lastPTS + 1
	}
	d.lastPTS, d.havePTS = pts, true
	step := int64(C.vm_frame_duration(cFrame(av)))
	if step <= 0 {
		step = d.frameStep()
	}
	d.lastEnd = pts + step
	av.SetPts(pts)
	d.decoded++
	if av.PixelFormat() == astiav.PixelFormatYuvj420P {
		av.SetPixelFormat(astiav.PixelFormatYuv420P)
		av.SetColorRange(astiav.ColorRangeJpeg)
	}
	if av.PixelFormat() == astiav.PixelFormatYuv420P && d.info.Rotation == 0 &&
		av.Width() == d.info.CodedWidth && av.Height() == d.info.CodedHeight {
		if err := avErr(C.vm_frame_ensure_positive(cFrame(av))); err != nil {
			putShell(av)
			return nil, err
		}
		return newFrame(av, d.tb, d.start), nil
	}
	if err := d.normalise(av); err != nil {
		putShell(av)
		return nil, err
	}
	putShell(av)
	return d.pullNormalised()
}

// frameStep is one frame's duration in the time base, for frames without
// timestamps.
func (d *Decoder) frameStep() int64 {
	if fr := d.info.FrameRate; fr.Valid() && d.tb.Valid() {
		if s := int64(float64(d.tb.Den) / (float64(d.tb.Num) * fr.Float64())); s > 0 {
			return s
		}
	}
	return 1
}

// normalise sends av through the filter graph that makes it yuv420p,
// upright and of the first frame's size, rebuilding the graph when the
// decoded format or size changes.
func (d *Decoder) normalise(av *astiav.Frame) error {
	key := fmt.Sprintf("%dx%d/%d/%d", av.Width(), av.Height(), av.PixelFormat(), av.ColorRange())
	if d.norm == nil || key != d.normKey {
		// Every filter of the chain is one frame in, one frame out, and
		// each output is taken at once: the old graph holds nothing.
		d.norm.free()
		d.norm = nil
		g, err := newVideoGraph(d.normDesc(av), []graphInput{{label: "in", width: av.Width(), height: av.Height(), format: av.PixelFormat(), tb: d.tb}}, 0)
		if err != nil {
			return err
		}
		d.norm, d.normKey, d.normFormat = g, key, av.PixelFormat()
	}
	return d.norm.push(0, av)
}

// normDesc is the filter chain for a frame like av.
func (d *Decoder) normDesc(av *astiav.Frame) string {
	chain := ""
	add := func(f string) {
		if chain != "" {
			chain += ","
		}
		chain += f
	}
	w, h := d.info.CodedWidth, d.info.CodedHeight
	pf := av.PixelFormat()
	switch {
	case isRGBFormat(pf):
		m := "bt601"
		if d.rgbMatrix == astiav.ColorSpaceBt709 {
			m = "bt709"
		}
		add(fmt.Sprintf("scale=w=%d:h=%d:out_color_matrix=%s:out_range=tv:flags=bilinear", w, h, m))
	case pf != astiav.PixelFormatYuv420P || av.Width() != w || av.Height() != h:
		rng := "tv"
		if av.ColorRange() == astiav.ColorRangeJpeg || isFullRangeFormat(pf) {
			rng = "pc"
		}
		add(fmt.Sprintf("scale=w=%d:h=%d:in_range=%s:out_range=%s:flags=bilinear", w, h, rng, rng))
	}
	add("format=yuv420p")
	switch d.info.Rotation {
	case 90:
		add("transpose=clock")
	case 180:
		add("vflip,hflip")
	case 270:
		add("transpose=cclock")
	}
	return chain
}

// pullNormalised returns the next converted frame, nil when the
// normaliser holds none.
func (d *Decoder) pullNormalised() (*Frame, error) {
	if d.norm == nil {
		return nil, nil
	}
	out := getShell()
	err := d.norm.pull(out)
	if err != nil {
		putShell(out)
		if isAgain(err) || isEOF(err) {
			return nil, nil
		}
		return nil, err
	}
	if isRGBFormat(d.normFormat) {
		C.vm_set_colorspace(cFrame(out), C.int(d.rgbMatrix), C.int(astiav.ColorRangeMpeg))
	}
	if err := avErr(C.vm_frame_ensure_positive(cFrame(out))); err != nil {
		putShell(out)
		return nil, err
	}
	return newFrame(out, d.tb, d.start), nil
}

// Close frees the decoder. Frames handed out stay valid until released.
// Safe to call twice.
func (d *Decoder) Close() error {
	d.norm.free()
	d.norm = nil
	if d.pkt != nil {
		d.pkt.Free()
		d.pkt = nil
	}
	if d.cc != nil {
		d.cc.Free()
		d.cc = nil
	}
	d.in.close()
	return nil
}

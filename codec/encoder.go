package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"

	"vidmatte"
)

// EncoderOptions say what an Encoder writes.
type EncoderOptions struct {
	Format vidmatte.OutputFormat
	// Width and Height are those of the frames that will be written.
	Width, Height int
	// TimeBase is the unit of the frames' PTS (the decoder's).
	TimeBase Rational
	// FrameRate is the nominal rate, for containers that need one and for
	// the last frame's duration.
	FrameRate Rational
	// AudioFrom is a media file whose audio is carried over ("" = no
	// audio); usually the input. Its clock is taken to be the frames' one:
	// audio before the first frame written is dropped.
	AudioFrom string
	// Background is what the foreground is composited over; transparent
	// keeps the alpha (and is an error for mp4, which has none).
	Background vidmatte.Background
	// Composition optionally places the foreground on a canvas.
	Composition *vidmatte.Composition
	// MaxBackgroundPixels is the largest background image (width ×
	// height) accepted; 0 means DefaultMaxBackgroundPixels.
	MaxBackgroundPixels int
	// Settings tune the encoders; the zero value gives the defaults.
	Settings EncoderSettings
}

// EncoderSettings tune the encoders. Every field is optional; zero means
// the default given.
type EncoderSettings struct {
	// Threads for encoders and filters; 0 = all cores (never FFmpeg's
	// default of one).
	Threads int
	// VP9 (webm): constant quality 30, cpu-used 8, deadline "realtime",
	// with row multithreading (and, at the realtime deadline, no
	// lookahead).
	VP9CRF, VP9CPUUsed int
	VP9Deadline        string
	// H.264 (mp4, mask): preset "veryfast", CRF 20 for mp4 and 12 for the
	// mask (edges of a matte suffer from coarse quantisation), unless set.
	X264Preset string
	X264CRF    int
	// ProResProfile: 4 = 4444 (default), 5 = 4444 XQ.
	ProResProfile int
	// GIF: up to 256 colours per frame (one is the transparent index) and
	// the "sierra2_4a" error-diffusion dither; other paletteuse dithers:
	// "bayer", "floyd_steinberg", "sierra2", "heckbert", "none".
	GIFMaxColors int
	GIFDither    string
	// WebP: quality 75 (0..100), lossy unless WebPLossless.
	WebPQuality  int
	WebPLossless bool
	// BlurSigma is the strength of the blur background in canvas pixels;
	// default 2% of the canvas' larger side.
	BlurSigma float64
	// AudioBitrate in bits per second: default 128k for AAC, 96k for Opus.
	AudioBitrate int
}

func (s EncoderSettings) withDefaults(f vidmatte.OutputFormat) EncoderSettings {
	if s.VP9CRF == 0 {
		s.VP9CRF = 30
	}
	if s.VP9CPUUsed == 0 {
		s.VP9CPUUsed = 8
	}
	if s.VP9Deadline == "" {
		s.VP9Deadline = "realtime"
	}
	if s.X264Preset == "" {
		s.X264Preset = "veryfast"
	}
	if s.X264CRF == 0 {
		s.X264CRF = 20
		if f == vidmatte.FormatMask {
			s.X264CRF = 12
		}
	}
	if s.ProResProfile == 0 {
		s.ProResProfile = 4
	}
	if s.GIFMaxColors == 0 {
		s.GIFMaxColors = 256
	}
	if s.GIFDither == "" {
		s.GIFDither = "sierra2_4a"
	}
	if s.WebPQuality == 0 {
		s.WebPQuality = 75
	}
	return s
}

// Encoder writes frames and their alpha mattes into an output file of one
// of the formats. It is not safe for concurrent use.
//
// Ownership: WriteFrame takes references of its own (the YUV planes and
// an attached alpha plane are shared with the caller's frame, an alpha
// given as bytes is copied), so the caller may release its frame and reuse
// its alpha bytes as soon as it returns; an attached alpha plane must not
// be written again. The Encoder frees everything in Close or Abort.
type Encoder struct {
	path string
	opts EncoderOptions
	set  EncoderSettings
	lay  layout

	mux    *astiav.FormatContext
	pb     *astiav.IOContext
	zip    *pngZip
	venc   *astiav.CodecContext
	alpha  *alphaEncoder // a transparent WebM's alpha encoder
	vcodec *astiav.Codec
	vst    *astiav.Stream
	graph  *videoGraph
	bg     *astiav.Frame // constant background or canvas, nil when none
	// bgPicture is the decoded background image, before scaling.
	bgPicture *astiav.Frame
	audio     *audioTrack

	alphaPool     *C.AVBufferPool
	alphaLinesize int
	// maskChroma is the neutral chroma every mask picture references
	// (the mask format only; made with the first picture).
	maskChroma   *C.AVBufferRef
	maskLinesize int
	pkt          *astiav.Packet

	started bool
	// origin is the first frame's PTS: the output starts there.
	origin  int64
	lastPTS int64
	// pending is the last frame given, held back until the next one tells
	// its duration.
	pending   *astiav.Frame
	lastDur   int64
	durations map[int64]int64
	frames    int64
	bt709     bool
	fullRange bool
	err       error
	closed    bool
	created   bool
}

// NewEncoder validates the options, opens what the output needs (the audio
// source, a background image) and creates the output file. The encoders
// themselves start with the first frame, whose colour description they
// take.
func NewEncoder(path string, opts EncoderOptions) (*Encoder, error) {
	if !opts.Format.Valid() {
		return nil, vidmatte.FieldErrorf("output_format", "unknown format %q", opts.Format)
	}
	if opts.Width <= 0 || opts.Height <= 0 {
		return nil, internalErr("creating an encoder", fmt.Errorf("frame size %dx%d", opts.Width, opts.Height))
	}
	if !opts.TimeBase.Valid() {
		return nil, internalErr("creating an encoder", fmt.Errorf("time base %v", opts.TimeBase))
	}
	if err := vidmatte.CheckFormatBackground(opts.Format, opts.Background); err != nil {
		return nil, err
	}
	lay, err := planLayout(opts)
	if err != nil {
		return nil, err
	}
	e := &Encoder{path: path, opts: opts, set: opts.Settings.withDefaults(opts.Format), lay: lay, durations: map[int64]int64{}}
	if err := e.prepare(); err != nil {
		e.Abort()
		return nil, err
	}
	return e, nil
}

// muxerName is FFmpeg's muxer for each format (png_sequence has none).
func muxerName(f vidmatte.OutputFormat) string {
	switch f {
	case vidmatte.FormatWebM:
		return "webm"
	case vidmatte.FormatMOV:
		return "mov"
	case vidmatte.FormatMP4, vidmatte.FormatMask:
		return "mp4"
	case vidmatte.FormatWebP:
		return "webp"
	case vidmatte.FormatGIF:
		return "gif"
	}
	return ""
}

// hasAudio reports whether a format can carry sound.
func hasAudio(f vidmatte.OutputFormat) bool {
	switch f {
	case vidmatte.FormatWebM, vidmatte.FormatMOV, vidmatte.FormatMP4, vidmatte.FormatMask:
		return true
	}
	return false
}

// prepare creates the output file and everything that does not depend on
// the first frame.
func (e *Encoder) prepare() error {
	e.pkt = astiav.AllocPacket()
	if e.opts.Format == vidmatte.FormatPNGSequence {
		z, err := newPNGZip(e.path)
		if err != nil {
			return internalErr("creating the output file", err)
		}
		e.zip, e.created = z, true
	} else {
		fc, err := astiav.AllocOutputFormatContext(nil, muxerName(e.opts.Format), e.path)
		if err != nil {
			return internalErr("creating the "+muxerName(e.opts.Format)+" muxer", err)
		}
		e.mux = fc
		pb, err := astiav.OpenIOContext("file:"+e.path, astiav.NewIOContextFlags(astiav.IOContextFlagWrite))
		if err != nil {
			return internalErr("creating the output file", err)
		}
		e.pb, e.created = pb, true
		fc.SetPb(pb)
	}
	e.vcodec = astiav.FindEncoderByName(e.lay.encoder)
	if e.vcodec == nil {
		return internalErr("finding the video encoder", fmt.Errorf("FFmpeg has no %s encoder", e.lay.encoder))
	}
	if e.opts.AudioFrom != "" && hasAudio(e.opts.Format) {
		a, err := openAudio(e.opts.AudioFrom, e.opts.Format, e.mux, e.set)
		if err != nil {
			return err
		}
		e.audio = a
	}
	if e.lay.needsBackgroundInput() && e.lay.bg.Type == vidmatte.BackgroundImage {
		pic, err := loadBackgroundImage(e.lay.bg.ImagePath, e.opts.MaxBackgroundPixels)
		if err != nil {
			return err
		}
		e.bgPicture = pic
	}
	w, h := e.opts.Width, e.opts.Height
	e.alphaLinesize = AlphaStride(w)
	e.alphaPool = newEncoderAlphaPool(w, h)
	if e.alphaPool == nil {
		return internalErr("allocating alpha planes", errors.New("out of memory"))
	}
	return nil
}

// start opens the video encoder and the filter graph and writes the
// header, with the colour description of the first frame.
func (e *Encoder) start(f *Frame) error {
	e.bt709, e.fullRange = f.usesBT709(), f.fullRange()
	e.origin = f.PTS()
	lay := &e.lay
	if lay.needsGraph() {
		bg, err := e.makeBackground()
		if err != nil {
			return err
		}
		e.bg = bg
		inputs := []graphInput{{label: "in", width: e.opts.Width, height: e.opts.Height, format: astiav.PixelFormatYuva420P, tb: e.opts.TimeBase}}
		if bg != nil {
			inputs = append(inputs, graphInput{label: "bg", width: bg.Width(), height: bg.Height(), format: bg.PixelFormat(), tb: e.opts.TimeBase})
		}
		g, err := newVideoGraph(lay.graphDesc(e.set, e.bt709, e.fullRange), inputs, e.set.Threads)
		if err != nil {
			return internalErr("building the output filter graph", err)
		}
		e.graph = g
	}
	if err := e.openVideoEncoder(); err != nil {
		return err
	}
	if e.mux != nil {
		e.vst = e.mux.NewStream(nil)
		if e.vst == nil {
			return internalErr("adding the video stream", errors.New("out of memory"))
		}
		if err := e.vst.CodecParameters().FromCodecContext(e.venc); err != nil {
			return internalErr("describing the video stream", err)
		}
		if e.alpha != nil {
			// The stream is yuva420p, its alpha in BlockAdditionals: the
			// muxer marks it (AlphaMode) as it does libvpx-vp9's own.
			e.vst.CodecParameters().SetPixelFormat(astiav.PixelFormatYuva420P)
		}
		e.vst.SetTimeBase(e.venc.TimeBase())
		if fr := e.opts.FrameRate; fr.Valid() {
			e.vst.SetAvgFrameRate(fr.av())
		}
		if e.audio != nil {
			if err := e.audio.addStream(e.mux); err != nil {
				return err
			}
			e.audio.setOrigin(e.origin, e.opts.TimeBase)
		}
		d := astiav.NewDictionary()
		defer d.Free()
		switch e.opts.Format {
		case vidmatte.FormatMP4, vidmatte.FormatMask, vidmatte.FormatMOV:
			_ = d.Set("movflags", "+faststart", 0)
		case vidmatte.FormatWebP, vidmatte.FormatGIF:
			_ = d.Set("loop", "0", 0)
		}
		if err := e.mux.WriteHeader(d); err != nil {
			return internalErr("writing the "+muxerName(e.opts.Format)+" header", err)
		}
	}
	e.started = true
	return nil
}

// openVideoEncoder configures and opens the format's video encoder and, for
// a transparent WebM, the alpha's (alphaEncoder).
func (e *Encoder) openVideoEncoder() error {
	cc, err := e.openCodec(e.lay.codecFormat())
	if err != nil {
		return err
	}
	e.venc = cc
	if e.lay.alphaStream {
		a, err := e.openCodec(astiav.PixelFormatYuv420P)
		if err != nil {
			return err
		}
		if e.alpha, err = startAlphaEncoder(a, e.lay.outW, e.lay.outH); err != nil {
			return err
		}
	}
	return nil
}

// openCodec configures and opens an encoder of the format's codec for
// pictures of format, with the output's size, timing, colour description
// and settings.
func (e *Encoder) openCodec(format astiav.PixelFormat) (*astiav.CodecContext, error) {
	cc := astiav.AllocCodecContext(e.vcodec)
	if cc == nil {
		return nil, internalErr("allocating the video encoder", errors.New("out of memory"))
	}
	lay := &e.lay
	cc.SetWidth(lay.outW)
	cc.SetHeight(lay.outH)
	cc.SetPixelFormat(format)
	cc.SetTimeBase(e.opts.TimeBase.av())
	cc.SetSampleAspectRatio(astiav.NewRational(1, 1))
	if fr := e.opts.FrameRate; fr.Valid() {
		cc.SetFramerate(fr.av())
	}
	threads := e.set.Threads
	if threads == 0 && e.lay.encoder == "libvpx-vp9" {
		// libvpx reads 0 as one thread, not as "one per core".
		threads = runtime.NumCPU()
	}
	cc.SetThreadCount(threads)
	cc.SetThreadType(astiav.ThreadTypeFrame | astiav.ThreadTypeSlice)
	if e.mux != nil && e.mux.OutputFormat().Flags().Has(astiav.IOFormatFlagGlobalheader) {
		cc.SetFlags(cc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	}
	prim, trc, space := C.int(astiav.ColorPrimariesSmpte170M), C.int(astiav.ColorTransferCharacteristicSmpte170M), C.int(astiav.ColorSpaceSmpte170M)
	if e.bt709 {
		prim, trc, space = C.int(astiav.ColorPrimariesBt709), C.int(astiav.ColorTransferCharacteristicBt709), C.int(astiav.ColorSpaceBt709)
	}
	rng := C.int(astiav.ColorRangeMpeg)
	if e.fullRange || e.opts.Format == vidmatte.FormatMask {
		rng = C.int(astiav.ColorRangeJpeg)
	}
	switch e.opts.Format {
	case vidmatte.FormatGIF, vidmatte.FormatPNGSequence:
		prim, trc, space, rng = C.int(astiav.ColorPrimariesUnspecified), C.int(astiav.ColorTransferCharacteristicUnspecified), C.int(astiav.ColorSpaceRgb), C.int(astiav.ColorRangeJpeg)
	}
	C.vm_cc_set_color(cCodecContext(cc), prim, trc, space, rng)
	if e.opts.Format == vidmatte.FormatWebM {
		cc.SetBitRate(0)
	}
	d := astiav.NewDictionary()
	defer d.Free()
	for k, v := range lay.encoderOptions(e.set) {
		_ = d.Set(k, v, 0)
	}
	if err := cc.Open(e.vcodec, d); err != nil {
		cc.Free()
		return nil, internalErr("opening the "+e.lay.encoder+" encoder", err)
	}
	return cc, nil
}

// WriteFrame encodes one frame with its alpha plane (0 = transparent, 255
// = opaque): either alpha, tightly packed (Width*Height bytes), which is
// copied, or, with alpha nil, the plane attached to the frame
// (Frame.AttachAlpha), which the encoder references as it does the Y, U
// and V: no copy, and the plane is FFmpeg's to read from then on (see
// AttachAlpha). It does not take ownership of f or alpha. Frames must come
// in presentation order, with growing PTS; the PTS are kept, so a variable
// frame rate stays in sync with the audio. After an error the Encoder only
// accepts Abort (or Close, which then aborts).
func (e *Encoder) WriteFrame(f *Frame, alpha []byte) error {
	if e.err != nil {
		return e.err
	}
	if e.closed {
		return internalErr("writing a frame", errors.New("the encoder is closed"))
	}
	av := f.avFrame()
	if av == nil {
		return internalErr("writing a frame", errors.New("the frame was released"))
	}
	if f.Width() != e.opts.Width || f.Height() != e.opts.Height {
		return internalErr("writing a frame", fmt.Errorf("frame is %dx%d, the encoder expects %dx%d", f.Width(), f.Height(), e.opts.Width, e.opts.Height))
	}
	if err := checkAlphaArg(f, alpha, e.opts.Width*e.opts.Height); err != nil {
		return err
	}
	if e.started && f.PTS() <= e.lastPTS {
		return internalErr("writing a frame", fmt.Errorf("PTS %d after %d: frames must come in presentation order", f.PTS(), e.lastPTS))
	}
	if !e.started {
		if err := e.start(f); err != nil {
			e.err = err
			return err
		}
	}
	e.lastPTS = f.PTS()
	if d := int64(C.vm_frame_duration(cFrame(av))); d > 0 {
		e.lastDur = d
	}
	yuva, err := withAlpha(f, av, alpha, e.alphaPool, e.alphaLinesize)
	if err != nil {
		e.err = err
		return e.err
	}
	space, rng := astiav.ColorSpaceSmpte170M, astiav.ColorRangeMpeg
	if e.bt709 {
		space = astiav.ColorSpaceBt709
	}
	if e.fullRange {
		rng = astiav.ColorRangeJpeg
	}
	C.vm_set_colorspace(cFrame(yuva), C.int(space), C.int(rng))
	yuva.SetPts(f.PTS() - e.origin)
	if err := e.hold(yuva); err != nil {
		e.err = err
		return err
	}
	return nil
}

// newEncoderAlphaPool is the pool of the buffers alpha given as bytes is
// copied into (rows of AlphaStride), for frames of w×h; nil when out of
// memory. Free it with freeEncoderAlphaPool.
func newEncoderAlphaPool(w, h int) *C.AVBufferPool {
	return C.vm_buffer_pool_new(C.int(AlphaStride(w)*h + 64))
}

func freeEncoderAlphaPool(p *C.AVBufferPool) { C.vm_buffer_pool_free(p) }

// checkAlphaArg checks that a frame comes with its alpha one way, bytes
// (n of them) or an attached plane, and not both.
func checkAlphaArg(f *Frame, alpha []byte, n int) error {
	switch {
	case alpha == nil && !f.HasAlpha():
		return internalErr("writing a frame", errors.New("no alpha: give one or attach it to the frame"))
	case alpha != nil && f.HasAlpha():
		return internalErr("writing a frame", errors.New("alpha given for a frame that has its own plane attached"))
	case alpha != nil && len(alpha) != n:
		return internalErr("writing a frame", fmt.Errorf("alpha holds %d bytes, want %d", len(alpha), n))
	}
	return nil
}

// withAlpha returns a yuva420p frame (a shell) of f's planes and its
// alpha: new references to all of them when the plane is attached to f
// (marked passed: FFmpeg's to read from now on), else f's Y, U, V and a
// copy of alpha in a buffer of pool.
func withAlpha(f *Frame, av *astiav.Frame, alpha []byte, pool *C.AVBufferPool, linesize int) (*astiav.Frame, error) {
	yuva := getShell()
	if alpha == nil {
		if err := yuva.Ref(av); err != nil {
			putShell(yuva)
			return nil, internalErr("referencing the frame", err)
		}
		if err := f.passAlpha(); err != nil {
			putShell(yuva)
			return nil, internalErr("sealing the alpha plane", err)
		}
		return yuva, nil
	}
	ret := C.vm_frame_attach_alpha(cFrame(yuva), cFrame(av), pool, C.int(linesize),
		(*C.uint8_t)(unsafe.Pointer(&alpha[0])), C.int(f.Width()))
	if ret < 0 {
		putShell(yuva)
		return nil, internalErr("attaching the alpha plane", avErr(ret))
	}
	return yuva, nil
}

// hold keeps next back and submits the frame held before it, now that its
// duration is known.
func (e *Encoder) hold(next *astiav.Frame) error {
	prev := e.pending
	e.pending = next
	if prev == nil {
		return nil
	}
	e.recordDuration(prev.Pts(), next.Pts()-prev.Pts())
	return e.submit(prev)
}

// recordDuration notes how long the frame at pts lasts, for its packet.
// Formats whose packets carry no per-frame timing (the animated WebP comes
// out as one packet, the zip has no clock) keep nothing.
func (e *Encoder) recordDuration(pts, d int64) {
	if e.opts.Format == vidmatte.FormatWebP || e.opts.Format == vidmatte.FormatPNGSequence {
		return
	}
	e.durations[pts] = d
}

// submit sends a yuva420p frame (PTS relative to the first frame) through
// the graph, if any, to the encoder, carrying the audio up to its time.
// It takes prev over.
func (e *Encoder) submit(yuva *astiav.Frame) error {
	defer putShell(yuva)
	if e.audio != nil {
		until := ticksToDuration(yuva.Pts(), e.opts.TimeBase) + audioLead
		if err := e.audio.pump(until, e.writePacket); err != nil {
			return err
		}
	}
	if e.graph == nil {
		return e.encode(yuva)
	}
	if e.bg != nil {
		e.bg.SetPts(yuva.Pts())
		if err := e.graph.pushRef(1, e.bg); err != nil {
			return internalErr("compositing", err)
		}
	}
	if err := e.graph.push(0, yuva); err != nil {
		return internalErr("compositing", err)
	}
	return e.drainGraph()
}

// drainGraph encodes every frame the graph has ready.
func (e *Encoder) drainGraph() error {
	for {
		out := getShell()
		err := e.graph.pull(out)
		if err != nil {
			putShell(out)
			if isAgain(err) || isEOF(err) {
				return nil
			}
			return internalErr("compositing", err)
		}
		err = e.encode(out)
		putShell(out)
		if err != nil {
			return err
		}
	}
}

// encode sends one frame of the final layout to the encoder (turning it
// into a mask picture first for the mask format) and writes the packets
// that come out. It does not take f over.
func (e *Encoder) encode(f *astiav.Frame) error {
	if e.opts.Format == vidmatte.FormatMask {
		if e.maskChroma == nil {
			e.maskLinesize = ((e.lay.outW+1)/2 + 63) &^ 63
			e.maskChroma = C.vm_neutral_chroma(C.int(e.lay.outH), C.int(e.maskLinesize))
			if e.maskChroma == nil {
				return internalErr("building the mask picture", errors.New("out of memory"))
			}
		}
		// The picture's luma is the alpha plane itself, its chroma the
		// shared neutral planes: nothing is allocated or copied.
		m := getShell()
		defer putShell(m)
		if ret := C.vm_frame_mask_ref(cFrame(m), cFrame(f), C.int(e.lay.outW), C.int(e.lay.outH), e.maskChroma, C.int(e.maskLinesize)); ret < 0 {
			return internalErr("building the mask picture", avErr(ret))
		}
		f = m
	}
	if e.alpha != nil {
		// The alpha goes to its own encoder, the Y, U and V to this one.
		if err := e.alpha.send(f); err != nil {
			return err
		}
		pic := getShell()
		defer putShell(pic)
		if ret := C.vm_frame_picture_ref(cFrame(pic), cFrame(f)); ret < 0 {
			return internalErr("referencing the picture", avErr(ret))
		}
		f = pic
	}
	e.frames++
	if err := e.venc.SendFrame(f); err != nil {
		return internalErr("encoding a frame", err)
	}
	return e.receivePackets()
}

// receivePackets writes every packet the video encoder has ready.
func (e *Encoder) receivePackets() error {
	for {
		err := e.venc.ReceivePacket(e.pkt)
		if err != nil {
			if isAgain(err) || isEOF(err) {
				return nil
			}
			return internalErr("encoding a frame", err)
		}
		if e.pkt.Duration() <= 0 {
			if d, ok := e.durations[e.pkt.Pts()]; ok {
				e.pkt.SetDuration(d)
			}
		}
		delete(e.durations, e.pkt.Pts())
		if e.alpha != nil {
			if err := e.alpha.attach(e.pkt); err != nil {
				e.pkt.Unref()
				return err
			}
		}
		if e.zip != nil {
			err = e.zip.add(e.pkt.Data())
			e.pkt.Unref()
			if err != nil {
				return internalErr("writing a PNG into the zip", err)
			}
			continue
		}
		if err := e.writePacket(e.pkt, e.vst, e.venc.TimeBase()); err != nil {
			return err
		}
	}
}

// writePacket gives a packet in time base from to the muxer for stream st,
// converting its timestamps to the stream's time base as the muxer set it
// when writing the header. The muxer takes the packet's data.
func (e *Encoder) writePacket(p *astiav.Packet, st *astiav.Stream, from astiav.Rational) error {
	p.SetStreamIndex(st.Index())
	p.RescaleTs(from, st.TimeBase())
	if err := e.mux.WriteInterleavedFrame(p); err != nil {
		p.Unref()
		return internalErr("writing to the "+muxerName(e.opts.Format)+" file", err)
	}
	return nil
}

// audioLead is how far the audio is carried ahead of the video.
const audioLead = 200 * time.Millisecond

// Close flushes the encoders, carries the rest of the audio and writes the
// trailer: the file is complete. On failure the partial output is removed.
// Without any frame written there is no video to write: Close removes the
// file and says so.
func (e *Encoder) Close() error {
	if e.closed {
		return e.err
	}
	if e.err != nil {
		err := e.err
		e.Abort()
		return err
	}
	if !e.started {
		e.Abort()
		e.err = vidmatte.Errorf(vidmatte.CodeUnprocessable, "no video frames were written")
		return e.err
	}
	if err := e.finish(); err != nil {
		e.err = err
		e.Abort()
		return err
	}
	e.release()
	e.closed = true
	return nil
}

// finish drains everything and completes the file.
func (e *Encoder) finish() error {
	if p := e.pending; p != nil {
		e.pending = nil
		d := e.lastDur
		if d <= 0 {
			d = e.nominalStep()
		}
		e.recordDuration(p.Pts(), d)
		if err := e.submit(p); err != nil {
			return err
		}
	}
	if e.graph != nil {
		for i := range e.graph.srcs {
			if err := e.graph.push(i, nil); err != nil {
				return internalErr("flushing the filter graph", err)
			}
		}
		if err := e.drainGraph(); err != nil {
			return err
		}
	}
	if e.alpha != nil {
		if err := e.alpha.flush(); err != nil {
			return err
		}
	}
	if err := e.venc.SendFrame(nil); err != nil && !isEOF(err) {
		return internalErr("flushing the video encoder", err)
	}
	if err := e.receivePackets(); err != nil {
		return err
	}
	if e.alpha != nil {
		if err := e.alpha.finish(); err != nil {
			return err
		}
	}
	if e.audio != nil {
		if err := e.audio.finish(e.writePacket); err != nil {
			return err
		}
	}
	if e.zip != nil {
		if err := e.zip.close(); err != nil {
			return internalErr("finishing the zip", err)
		}
		return nil
	}
	if err := e.mux.WriteTrailer(); err != nil {
		return internalErr("writing the "+muxerName(e.opts.Format)+" trailer", err)
	}
	if err := e.pb.Close(); err != nil {
		e.pb = nil
		return internalErr("closing the output file", err)
	}
	e.pb = nil
	return nil
}

// nominalStep is one frame at the nominal rate, in the frames' time base.
func (e *Encoder) nominalStep() int64 {
	tb, fr := e.opts.TimeBase, e.opts.FrameRate
	if fr.Valid() {
		if s := int64(float64(tb.Den)/(float64(tb.Num)*fr.Float64()) + 0.5); s > 0 {
			return s
		}
	}
	return 1
}

// Abort stops encoding and removes the partial output. It is safe after a
// failed WriteFrame, instead of Close, and twice.
func (e *Encoder) Abort() {
	if e.closed && e.err == nil {
		return
	}
	e.release()
	if e.created {
		_ = os.Remove(e.path)
		e.created = false
	}
	e.closed = true
	if e.err == nil {
		e.err = internalErr("writing a frame", errors.New("the encoder was aborted"))
	}
}

// release frees every C object the Encoder holds and gives the memory
// back.
func (e *Encoder) release() {
	if e.pending != nil {
		putShell(e.pending)
		e.pending = nil
	}
	e.graph.free()
	e.graph = nil
	if e.bg != nil {
		e.bg.Free()
		e.bg = nil
	}
	if e.bgPicture != nil {
		e.bgPicture.Free()
		e.bgPicture = nil
	}
	if e.alpha != nil {
		e.alpha.close()
		e.alpha = nil
	}
	if e.venc != nil {
		e.venc.Free()
		e.venc = nil
	}
	if e.audio != nil {
		e.audio.close()
		e.audio = nil
	}
	if e.zip != nil {
		e.zip.abort()
		e.zip = nil
	}
	if e.pb != nil {
		_ = e.pb.Close()
		e.pb = nil
	}
	if e.mux != nil {
		e.mux.Free()
		e.mux = nil
	}
	if e.pkt != nil {
		e.pkt.Free()
		e.pkt = nil
	}
	if e.alphaPool != nil {
		C.vm_buffer_pool_free(e.alphaPool)
		e.alphaPool = nil
	}
	if e.maskChroma != nil {
		C.vm_buffer_unref(&e.maskChroma)
	}
	// What the codecs freed goes back to the system, not to an arena's
	// free list (see vm_release_free_memory).
	C.vm_release_free_memory()
}

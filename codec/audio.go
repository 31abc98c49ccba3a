package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/asticode/go-astiav"

	"vidmatte"
)

// audioTrack carries the audio of a media file into an output: packets are
// copied when the output container takes the codec as it is, else decoded,
// resampled through an audio filter graph and encoded (Opus for WebM, AAC
// otherwise). Timestamps are shifted by the same origin as the video, so
// the two stay in sync.
type audioTrack struct {
	fc   *astiav.FormatContext
	in   *astiav.Stream
	inTB astiav.Rational
	copy bool
	out  *astiav.Stream

	dec *astiav.CodecContext
	// decoder is dec, or a test's wrapper of it that makes faults happen.
	decoder audioDecoder
	// badInARow counts the decoding failures since the last good frame.
	badInARow int
	enc       *astiav.CodecContext
	graph     *videoGraph
	frame     *astiav.Frame
	pkt       *astiav.Packet
	opkt      *astiav.Packet

	// origin is the first video frame's time in the input's time base:
	// output time zero.
	origin int64
	// held says pkt holds a packet read beyond the last pump's limit.
	held     bool
	readDone bool
}

// openAudio opens the audio of path for an output of format f whose muxer
// is ofc. It returns nil without error when path has no audio stream.
func openAudio(path string, f vidmatte.OutputFormat, ofc *astiav.FormatContext, s EncoderSettings) (*audioTrack, error) {
	fail := func(err error) error {
		return &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Message: "the audio of the input cannot be read", Err: err}
	}
	// The same demuxers as for the video: chosen before any header is
	// read, local files only.
	ifmt, _, err := chooseInputFormat(path)
	if err != nil {
		return nil, err
	}
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, fail(errors.New("out of memory"))
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	_ = opts.Set("protocol_whitelist", "file", 0)
	_ = opts.Set("format_whitelist", strings.Join(InputFormats, ","), 0)
	if err := fc.OpenInput("file:"+path, ifmt, opts); err != nil {
		fc.Free()
		return nil, fail(err)
	}
	a := &audioTrack{fc: fc}
	if err := fc.FindStreamInfo(nil); err != nil {
		a.close()
		return nil, fail(err)
	}
	for _, st := range fc.Streams() {
		cp := st.CodecParameters()
		if cp.MediaType() == astiav.MediaTypeAudio && cp.SampleRate() > 0 && cp.ChannelLayout().NbChannels() > 0 {
			a.in = st
			break
		}
	}
	if a.in == nil {
		a.close()
		return nil, nil
	}
	a.inTB = a.in.TimeBase()
	a.pkt = astiav.AllocPacket()
	a.opkt = astiav.AllocPacket()
	id := a.in.CodecParameters().CodecID()
	switch f {
	case vidmatte.FormatWebM:
		a.copy = id == astiav.CodecIDOpus || id == astiav.CodecIDVorbis
	case vidmatte.FormatMOV:
		a.copy = movAudio(id)
	default:
		a.copy = id == astiav.CodecIDAac
	}
	if a.copy {
		return a, nil
	}
	if err := a.openTranscoder(f, ofc, s); err != nil {
		a.close()
		return nil, err
	}
	return a, nil
}

// movAudio reports whether QuickTime files carry audio of codec id as it
// is (FFmpeg's mov muxer takes more, some only as experimental).
func movAudio(id astiav.CodecID) bool {
	switch id {
	case astiav.CodecIDAac, astiav.CodecIDMp3, astiav.CodecIDAlac, astiav.CodecIDAc3,
		astiav.CodecIDPcmS16Le, astiav.CodecIDPcmS16Be, astiav.CodecIDPcmS24Le, astiav.CodecIDPcmS24Be,
		astiav.CodecIDPcmS32Le, astiav.CodecIDPcmS32Be, astiav.CodecIDPcmF32Le, astiav.CodecIDPcmF32Be:
		return muxerCanStore("mov", id)
	}
	return false
}

// aacRates are the sample rates FFmpeg's AAC encoder takes.
var aacRates = []int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// openTranscoder opens the decoder and the Opus or AAC encoder.
func (a *audioTrack) openTranscoder(f vidmatte.OutputFormat, ofc *astiav.FormatContext, s EncoderSettings) error {
	cp := a.in.CodecParameters()
	dcodec := astiav.FindDecoder(cp.CodecID())
	if dcodec == nil {
		return &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Message: fmt.Sprintf("the audio codec %q is not supported", cp.CodecID().Name()), Err: ErrUnsupportedCodec}
	}
	a.dec = astiav.AllocCodecContext(dcodec)
	if err := cp.ToCodecContext(a.dec); err != nil {
		return internalErr("configuring the audio decoder", err)
	}
	C.vm_set_pkt_timebase(cCodecContext(a.dec), C.int(a.inTB.Num()), C.int(a.inTB.Den()))
	if err := a.dec.Open(dcodec, nil); err != nil {
		return &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Message: "the audio of the input cannot be decoded", Err: err}
	}
	a.decoder = a.dec

	name, rate, bitrate := "aac", cp.SampleRate(), 128000
	if f == vidmatte.FormatWebM {
		name, rate, bitrate = "libopus", 48000, 96000
	} else if !containsInt(aacRates, rate) {
		rate = 48000
	}
	if s.AudioBitrate > 0 {
		bitrate = s.AudioBitrate
	}
	ecodec := astiav.FindEncoderByName(name)
	if ecodec == nil {
		return internalErr("finding the audio encoder", fmt.Errorf("FFmpeg has no %s encoder", name))
	}
	a.enc = astiav.AllocCodecContext(ecodec)
	layout := astiav.ChannelLayoutStereo
	if cp.ChannelLayout().NbChannels() == 1 {
		layout = astiav.ChannelLayoutMono
		bitrate = bitrate * 2 / 3
	}
	sampleFmt := ecodec.SampleFormats()[0]
	for _, sf := range ecodec.SampleFormats() {
		if sf == astiav.SampleFormatFlt || sf == astiav.SampleFormatFltp {
			sampleFmt = sf
			break
		}
	}
	a.enc.SetSampleRate(rate)
	a.enc.SetChannelLayout(layout)
	a.enc.SetSampleFormat(sampleFmt)
	a.enc.SetBitRate(int64(bitrate))
	a.enc.SetTimeBase(astiav.NewRational(1, rate))
	a.enc.SetThreadCount(s.Threads)
	if ofc.OutputFormat().Flags().Has(astiav.IOFormatFlagGlobalheader) {
		a.enc.SetFlags(a.enc.Flags().Add(astiav.CodecContextFlagGlobalHeader))
	}
	if err := a.enc.Open(ecodec, nil); err != nil {
		return internalErr("opening the "+name+" encoder", err)
	}
	a.frame = astiav.AllocFrame()
	return nil
}

func containsInt(list []int, v int) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// addStream adds the audio stream to the muxer, before its header.
func (a *audioTrack) addStream(ofc *astiav.FormatContext) error {
	a.out = ofc.NewStream(nil)
	if a.out == nil {
		return internalErr("adding the audio stream", errors.New("out of memory"))
	}
	if a.copy {
		if err := a.in.CodecParameters().Copy(a.out.CodecParameters()); err != nil {
			return internalErr("describing the audio stream", err)
		}
		a.out.CodecParameters().SetCodecTag(0)
		a.out.SetTimeBase(a.inTB)
		return nil
	}
	if err := a.out.CodecParameters().FromCodecContext(a.enc); err != nil {
		return internalErr("describing the audio stream", err)
	}
	a.out.SetTimeBase(a.enc.TimeBase())
	return nil
}

// setOrigin sets output time zero: the first video frame's PTS pts in the
// video time base tb.
func (a *audioTrack) setOrigin(pts int64, tb Rational) {
	a.origin = astiav.RescaleQ(pts, tb.av(), a.inTB)
}

// audioDecoder is the part of a decoder's codec context the audio path
// drives.
type audioDecoder interface {
	SendPacket(p *astiav.Packet) error
	ReceiveFrame(f *astiav.Frame) error
}

// maxAudioErrors is how many audio packets or frames in a row may fail to
// decode (each skipped) before the audio is given up as damaged.
const maxAudioErrors = 16

type packetWriter func(p *astiav.Packet, st *astiav.Stream, from astiav.Rational) error

// pump carries the audio up to time until (from the output's start).
func (a *audioTrack) pump(until time.Duration, write packetWriter) error {
	for !a.readDone {
		if !a.held {
			if err := a.fc.ReadFrame(a.pkt); err != nil {
				// The end, or damage: either way the audio stops here.
				a.readDone = true
				break
			}
			if a.pkt.StreamIndex() != a.in.Index() {
				a.pkt.Unref()
				continue
			}
			a.held = true
		}
		ts := a.pkt.Pts()
		if ts == astiav.NoPtsValue {
			ts = a.pkt.Dts()
		}
		if ts != astiav.NoPtsValue && ticksToDuration(ts-a.origin, fromAV(a.inTB)) > until {
			return nil
		}
		a.held = false
		if err := a.process(write); err != nil {
			return err
		}
	}
	return nil
}

// process carries the packet in a.pkt over, and unreferences it.
func (a *audioTrack) process(write packetWriter) error {
	p := a.pkt
	if a.copy {
		if p.Pts() != astiav.NoPtsValue {
			if p.Pts()+p.Duration() <= a.origin {
				p.Unref()
				return nil
			}
			p.SetPts(p.Pts() - a.origin)
		}
		if p.Dts() != astiav.NoPtsValue {
			p.SetDts(p.Dts() - a.origin)
		}
		return write(p, a.out, a.inTB)
	}
	err := a.decoder.SendPacket(p)
	if isAgain(err) {
		// The decoder has output waiting: take it, then give the packet
		// again (it was not consumed).
		if err := a.receiveFrames(write); err != nil {
			p.Unref()
			return err
		}
		err = a.decoder.SendPacket(p)
	}
	p.Unref()
	if isAgain(err) {
		return internalErr("decoding the audio", fmt.Errorf("the decoder takes no packet even with its output read: %w", err))
	}
	if err != nil {
		// A damaged audio packet is skipped, unless the damage persists.
		return a.decodeFailed(err)
	}
	return a.receiveFrames(write)
}

// decodeFailed counts a decoding failure; too many in a row are an error.
func (a *audioTrack) decodeFailed(err error) error {
	a.badInARow++
	if a.badInARow >= maxAudioErrors {
		return &vidmatte.Error{Code: vidmatte.CodeUnprocessable,
			Message: fmt.Sprintf("the audio of the input is damaged: %d packets or frames in a row failed to decode", a.badInARow), Err: err}
	}
	return nil
}

// receiveFrames moves decoded audio through the graph into the encoder
// until the decoder wants more input. A frame that fails to decode is
// skipped; maxAudioErrors in a row end the audio with an error.
func (a *audioTrack) receiveFrames(write packetWriter) error {
	for {
		err := a.decoder.ReceiveFrame(a.frame)
		if err != nil {
			if isAgain(err) || isEOF(err) {
				return nil
			}
			if err := a.decodeFailed(err); err != nil {
				return err
			}
			continue
		}
		a.badInARow = 0
		if err := a.filter(a.frame, write); err != nil {
			return err
		}
	}
}

// filter shifts a decoded frame to output time and gives it to the graph
// (built on the first frame), then encodes what comes out. It takes the
// frame's data.
func (a *audioTrack) filter(f *astiav.Frame, write packetWriter) error {
	C.vm_frame_default_layout(cFrame(f))
	pts := int64(C.vm_frame_best_effort_pts(cFrame(f)))
	if pts == astiav.NoPtsValue {
		pts = f.Pts()
	}
	if pts != astiav.NoPtsValue {
		f.SetPts(pts - a.origin)
	}
	if a.graph == nil {
		g, err := a.newGraph(f)
		if err != nil {
			f.Unref()
			return internalErr("building the audio filter graph", err)
		}
		a.graph = g
	}
	err := a.graph.push(0, f)
	f.Unref()
	if err != nil {
		return internalErr("resampling the audio", err)
	}
	return a.drain(write)
}

// newGraph builds atrim (drop what precedes the video) → aresample →
// aformat → asetnsamples (the encoder's frame size) for frames like f.
func (a *audioTrack) newGraph(f *astiav.Frame) (*videoGraph, error) {
	var buf [128]C.char
	C.vm_layout_name(cFrame(f), &buf[0], C.int(len(buf)))
	layoutName := C.GoString(&buf[0])
	outLayout := "stereo"
	if a.enc.ChannelLayout().NbChannels() == 1 {
		outLayout = "mono"
	}
	frameSize := a.enc.FrameSize()
	if frameSize <= 0 {
		frameSize = 1024
	}
	desc := fmt.Sprintf("[in]atrim=start=0,aresample=%d,aformat=sample_fmts=%s:channel_layouts=%s,asetnsamples=n=%d:p=0[out]",
		a.enc.SampleRate(), a.enc.SampleFormat().Name(), outLayout, frameSize)
	return newGraph(desc, 1, "abuffersink", func(g *astiav.FilterGraph) ([]*astiav.FilterContext, error) {
		src, err := g.NewFilterContext(astiav.FindFilterByName("abuffer"), "in", astiav.FilterArgs{
			"time_base":      a.inTB.String(),
			"sample_rate":    strconv.Itoa(f.SampleRate()),
			"sample_fmt":     f.SampleFormat().Name(),
			"channel_layout": layoutName,
		})
		if err != nil {
			return nil, err
		}
		return []*astiav.FilterContext{src}, nil
	}, []string{"in"})
}

// drain encodes every frame the graph has ready.
func (a *audioTrack) drain(write packetWriter) error {
	for {
		out := getShell()
		err := a.graph.pull(out)
		if err != nil {
			putShell(out)
			if isAgain(err) || isEOF(err) {
				return nil
			}
			return internalErr("resampling the audio", err)
		}
		err = a.enc.SendFrame(out)
		putShell(out)
		if err != nil {
			return internalErr("encoding the audio", err)
		}
		if err := a.receivePackets(write); err != nil {
			return err
		}
	}
}

// receivePackets writes every packet the audio encoder has ready.
func (a *audioTrack) receivePackets(write packetWriter) error {
	for {
		err := a.enc.ReceivePacket(a.opkt)
		if err != nil {
			if isAgain(err) || isEOF(err) {
				return nil
			}
			return internalErr("encoding the audio", err)
		}
		if err := write(a.opkt, a.out, a.enc.TimeBase()); err != nil {
			return err
		}
	}
}

// finish carries the rest of the audio and flushes the decoder, graph and
// encoder.
func (a *audioTrack) finish(write packetWriter) error {
	if err := a.pump(time.Duration(math.MaxInt64), write); err != nil {
		return err
	}
	if a.copy {
		return nil
	}
	if err := a.decoder.SendPacket(nil); err == nil {
		if err := a.receiveFrames(write); err != nil {
			return err
		}
	}
	if a.graph != nil {
		if err := a.graph.push(0, nil); err != nil {
			return internalErr("flushing the audio resampler", err)
		}
		if err := a.drain(write); err != nil {
			return err
		}
	}
	if err := a.enc.SendFrame(nil); err != nil && !isEOF(err) {
		return internalErr("flushing the audio encoder", err)
	}
	return a.receivePackets(write)
}

// close frees everything. Safe twice.
func (a *audioTrack) close() {
	a.graph.free()
	a.graph = nil
	for _, cc := range []**astiav.CodecContext{&a.dec, &a.enc} {
		if *cc != nil {
			(*cc).Free()
			*cc = nil
		}
	}
	for _, p := range []**astiav.Packet{&a.pkt, &a.opkt} {
		if *p != nil {
			(*p).Free()
			*p = nil
		}
	}
	if a.frame != nil {
		a.frame.Free()
		a.frame = nil
	}
	if a.fc != nil {
		a.fc.CloseInput()
		a.fc.Free()
		a.fc = nil
	}
}

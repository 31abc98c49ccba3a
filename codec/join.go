package codec

/*
#include "ffmpeg.h"

static int vm_copy_stream_metadata(AVStream *dst, const AVStream *src) {
	return av_dict_copy(&dst->metadata, src->metadata, 0);
}

static void vm_flush_decoder(AVCodecContext *cc) {
	avcodec_flush_buffers(cc);
}
*/
import "C"

import (
	"archive/zip"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/asticode/go-astiav"

	"vidmatte"
)

// A long job's output is made in parts, one per segment of its frames,
// and joined at the end. Each part is a file of the output's own format
// without audio, whose first frame is a keyframe and whose timestamps
// start at zero; the join copies the parts' packets (no re-encoding) into
// one file, each part shifted to where its first frame is in the whole
// video, and carries the input's audio once over the whole duration. The
// PNG sequence's parts are zips whose pictures are copied, renumbered. The
// animated WebP's encoder makes one packet of a whole animation, which
// cannot be cut: its parts are lossless intermediates (FFV1 with the
// alpha plane, in NUT, see NewIntermediate) that the join decodes and
// encodes once, as the continuous run would have.

// JoinsByCopy reports whether the parts of an output of format f are
// files of f itself, joined by copying their packets (or pictures); when
// not, they are intermediates (NewIntermediate).
func JoinsByCopy(f vidmatte.OutputFormat) bool { return f != vidmatte.FormatWebP }

// IntermediateExtension is the file extension of an intermediate part.
const IntermediateExtension = ".nut"

// JoinOptions say how parts are joined into an output.
type JoinOptions struct {
	Format vidmatte.OutputFormat
	// Parts is how many parts there are; Part(i) returns a local file of
	// part i and a release to call when done with it (the join opens them
	// one at a time).
	Parts int
	Part  func(i int) (path string, release func(), err error)
	// Offsets[i] is where part i's first frame is in the output, in
	// TimeBase units (its first frame's PTS less the first part's).
	Offsets  []int64
	TimeBase Rational
	// AudioFrom is the file whose audio the output carries ("" = none),
	// Origin the PTS (in TimeBase) of the output's first frame in it.
	AudioFrom string
	Origin    int64
	// Encoder is how the output is encoded when its parts are
	// intermediates (the animated WebP); its AudioFrom is not used.
	Encoder EncoderOptions
	// Settings are the encoder settings (audio bitrate for the join).
	Settings EncoderSettings
}

// Join writes the output at path from its parts and returns the frames it
// holds. On failure no output is left.
func Join(ctx context.Context, path string, o JoinOptions) (frames int64, err error) {
	if o.Parts < 1 || o.Part == nil || len(o.Offsets) != o.Parts {
		return 0, internalErr("joining parts", fmt.Errorf("%d parts, %d offsets", o.Parts, len(o.Offsets)))
	}
	if !o.TimeBase.Valid() {
		return 0, internalErr("joining parts", fmt.Errorf("time base %v", o.TimeBase))
	}
	defer func() {
		if err != nil {
			os.Remove(path)
		}
	}()
	switch {
	case o.Format == vidmatte.FormatPNGSequence:
		return joinZips(ctx, path, o)
	case o.Format == vidmatte.FormatWebP:
		return joinIntermediates(ctx, path, o)
	case muxerName(o.Format) != "":
		return remuxParts(ctx, path, o)
	}
	return 0, vidmatte.FieldErrorf("output_format", "unknown format %q", o.Format)
}

// openPart opens a part file for reading its packets.
func openPart(path string) (*astiav.FormatContext, *astiav.Stream, error) {
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, nil, internalErr("opening a part", errors.New("out of memory"))
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	_ = opts.Set("protocol_whitelist", "file", 0)
	if err := fc.OpenInput("file:"+path, nil, opts); err != nil {
		fc.Free()
		return nil, nil, internalErr("opening a part", err)
	}
	if err := fc.FindStreamInfo(nil); err != nil {
		fc.CloseInput()
		fc.Free()
		return nil, nil, internalErr("reading a part", err)
	}
	for _, st := range fc.Streams() {
		if st.CodecParameters().MediaType() == astiav.MediaTypeVideo {
			return fc, st, nil
		}
	}
	fc.CloseInput()
	fc.Free()
	return nil, nil, internalErr("reading a part", errors.New("it has no video stream"))
}

// readPart opens part i of o and calls fn with its demuxer and video
// stream, releasing both afterwards.
func readPart(o JoinOptions, i int, fn func(fc *astiav.FormatContext, ist *astiav.Stream) (int64, error)) (int64, error) {
	local, release, err := o.Part(i)
	if err != nil {
		return 0, err
	}
	defer release()
	fc, ist, err := openPart(local)
	if err != nil {
		return 0, err
	}
	defer closePart(fc)
	return fn(fc, ist)
}

func closePart(fc *astiav.FormatContext) {
	fc.CloseInput()
	fc.Free()
}

// remuxParts copies the parts' video packets into one file of the format,
// shifted by their offsets, with the audio carried once.
func remuxParts(ctx context.Context, path string, o JoinOptions) (frames int64, err error) {
	name := muxerName(o.Format)
	mux, err := astiav.AllocOutputFormatContext(nil, name, path)
	if err != nil {
		return 0, internalErr("creating the "+name+" muxer", err)
	}
	defer mux.Free()
	pb, err := astiav.OpenIOContext("file:"+path, astiav.NewIOContextFlags(astiav.IOContextFlagWrite))
	if err != nil {
		return 0, internalErr("creating the output file", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = pb.Close()
		}
	}()
	mux.SetPb(pb)
	set := o.Settings.withDefaults(o.Format)
	var audio *audioTrack
	if o.AudioFrom != "" && hasAudio(o.Format) {
		a, err := openAudio(o.AudioFrom, o.Format, mux, set)
		if err != nil {
			return 0, err
		}
		if a != nil {
			defer a.close()
			audio = a
		}
	}
	write := func(p *astiav.Packet, st *astiav.Stream, from astiav.Rational) error {
		p.SetStreamIndex(st.Index())
		p.RescaleTs(from, st.TimeBase())
		if err := mux.WriteInterleavedFrame(p); err != nil {
			p.Unref()
			return internalErr("writing to the "+name+" file", err)
		}
		return nil
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	var vst *astiav.Stream
	for i := 0; i < o.Parts; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		n, err := readPart(o, i, func(fc *astiav.FormatContext, ist *astiav.Stream) (int64, error) {
			var err error
			if vst == nil {
				if vst, err = addCopiedStream(mux, ist); err != nil {
					return 0, err
				}
				if audio != nil {
					if err := audio.addStream(mux); err != nil {
						return 0, err
					}
					audio.setOrigin(o.Origin, o.TimeBase)
				}
				d := astiav.NewDictionary()
				defer d.Free()
				switch o.Format {
				case vidmatte.FormatMP4, vidmatte.FormatMask, vidmatte.FormatMOV:
					_ = d.Set("movflags", "+faststart", 0)
				case vidmatte.FormatGIF:
					_ = d.Set("loop", "0", 0)
				}
				if err := mux.WriteHeader(d); err != nil {
					return 0, internalErr("writing the "+name+" header", err)
				}
			}
			itb := ist.TimeBase()
			shift := astiav.RescaleQ(o.Offsets[i], o.TimeBase.av(), itb)
			var n int64
			for {
				if err := fc.ReadFrame(pkt); err != nil {
					if isEOF(err) {
						return n, nil
					}
					return n, internalErr("reading a part", err)
				}
				if pkt.StreamIndex() != ist.Index() {
					pkt.Unref()
					continue
				}
				if pkt.Pts() != astiav.NoPtsValue {
					pkt.SetPts(pkt.Pts() + shift)
				}
				if pkt.Dts() != astiav.NoPtsValue {
					pkt.SetDts(pkt.Dts() + shift)
				}
				if audio != nil {
					ts := pkt.Pts()
					if ts == astiav.NoPtsValue {
						ts = pkt.Dts()
					}
					if err := audio.pump(ticksToDuration(ts, fromAV(itb))+audioLead, write); err != nil {
						pkt.Unref()
						return n, err
					}
				}
				if n == 0 && i > 0 && o.Format == vidmatte.FormatGIF {
					if err := continueGIF(pkt); err != nil {
						return n, err
					}
				}
				n++
				if err := write(pkt, vst, itb); err != nil {
					return n, err
				}
			}
		})
		frames += n
		if err != nil {
			return 0, err
		}
	}
	if audio != nil {
		if err := audio.finish(write); err != nil {
			return 0, err
		}
	}
	if err := mux.WriteTrailer(); err != nil {
		return 0, internalErr("writing the "+name+" trailer", err)
	}
	closed = true
	if err := pb.Close(); err != nil {
		return 0, internalErr("closing the output file", err)
	}
	return frames, nil
}

// continueGIF makes the first packet of a later GIF part, which opens
// with the part's own file header (signature, screen descriptor, global
// palette) and loop extension, into a frame that continues the first
// part's file: the header and application extensions are dropped and the
// global palette becomes the picture's local one (unless it has its own).
func continueGIF(pkt *astiav.Packet) error {
	b, err := gifContinuation(pkt.Data())
	if err != nil {
		return internalErr("joining GIF parts", err)
	}
	pts, dts, dur, flags := pkt.Pts(), pkt.Dts(), pkt.Duration(), pkt.Flags()
	pkt.Unref()
	if err := pkt.FromData(b); err != nil {
		return internalErr("joining GIF parts", err)
	}
	pkt.SetPts(pts)
	pkt.SetDts(dts)
	pkt.SetDuration(dur)
	pkt.SetFlags(flags)
	return nil
}

// gifContinuation rewrites a GIF packet that starts with a file header as
// described at continueGIF; a packet without a header is returned as is.
func gifContinuation(b []byte) ([]byte, error) {
	if len(b) < 13 || (string(b[:6]) != "GIF89a" && string(b[:6]) != "GIF87a") {
		return b, nil
	}
	bad := errors.New("a GIF part's first frame cannot be parsed")
	flags := b[10]
	i := 13
	var global []byte
	if flags&0x80 != 0 {
		n := 3 * (2 << (flags & 7))
		if len(b) < i+n {
			return nil, bad
		}
		global = b[i : i+n]
		i += n
	}
	out := make([]byte, 0, len(b)+len(global))
	for i < len(b) {
		switch b[i] {
		case 0x21: // an extension: label, then sub-blocks
			if i+2 > len(b) {
				return nil, bad
			}
			j := i + 2
			for j < len(b) && b[j] != 0 {
				j += int(b[j]) + 1
			}
			if j >= len(b) {
				return nil, bad
			}
			if b[i+1] != 0xFF { // application extensions (the loop count) are the file's
				out = append(out, b[i:j+1]...)
			}
			i = j + 1
		case 0x2C: // the image: descriptor, then the rest as it is
			if i+10 > len(b) {
				return nil, bad
			}
			desc := append([]byte(nil), b[i:i+10]...)
			rest := b[i+10:]
			if desc[9]&0x80 == 0 && global != nil {
				desc[9] = desc[9]&^0x07 | 0x80 | flags&0x07
				desc[9] &^= 0x20 // not sorted
				out = append(out, desc...)
				out = append(out, global...)
			} else {
				out = append(out, desc...)
			}
			return append(out, rest...), nil
		default:
			return nil, bad
		}
	}
	return nil, bad
}

// addCopiedStream adds to mux a stream that takes ist's packets as they
// are (its metadata too: WebM's alpha_mode).
func addCopiedStream(mux *astiav.FormatContext, ist *astiav.Stream) (*astiav.Stream, error) {
	st := mux.NewStream(nil)
	if st == nil {
		return nil, internalErr("adding the video stream", errors.New("out of memory"))
	}
	if err := ist.CodecParameters().Copy(st.CodecParameters()); err != nil {
		return nil, internalErr("describing the video stream", err)
	}
	st.CodecParameters().SetCodecTag(0)
	st.SetTimeBase(ist.TimeBase())
	st.SetAvgFrameRate(ist.AvgFrameRate())
	st.SetRFrameRate(ist.RFrameRate())
	if ret := C.vm_copy_stream_metadata(cStream(st), cStream(ist)); ret < 0 {
		return nil, internalErr("describing the video stream", avErr(ret))
	}
	return st, nil
}

// joinZips copies the pictures of the parts' zips, in order and
// renumbered, into one zip, without recompressing them.
func joinZips(ctx context.Context, path string, o JoinOptions) (frames int64, err error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, internalErr("creating the output file", err)
	}
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := bufio.NewWriterSize(f, 1<<20)
	zw := zip.NewWriter(buf)
	for i := 0; i < o.Parts; i++ {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		err := func() error {
			local, release, err := o.Part(i)
			if err != nil {
				return err
			}
			defer release()
			zr, err := zip.OpenReader(local)
			if err != nil {
				return internalErr("reading a part", err)
			}
			defer zr.Close()
			files := append([]*zip.File(nil), zr.File...)
			sort.Slice(files, func(a, b int) bool { return files[a].Name < files[b].Name })
			for _, zf := range files {
				frames++
				h := zf.FileHeader
				h.Name = fmt.Sprintf("frame_%06d.png", frames)
				w, err := zw.CreateRaw(&h)
				if err != nil {
					return internalErr("writing the zip", err)
				}
				r, err := zf.OpenRaw()
				if err != nil {
					return internalErr("reading a part", err)
				}
				if _, err := io.Copy(w, r); err != nil {
					return internalErr("writing the zip", err)
				}
			}
			return nil
		}()
		if err != nil {
			return 0, err
		}
	}
	if err := zw.Close(); err != nil {
		return 0, internalErr("finishing the zip", err)
	}
	if err := buf.Flush(); err != nil {
		return 0, internalErr("finishing the zip", err)
	}
	err = f.Close()
	f = nil
	if err != nil {
		return 0, internalErr("closing the output file", err)
	}
	return frames, nil
}

// SeekTo makes the decoder go on from the last keyframe at or before pts
// (in its time base): the next frames returned are that keyframe's and
// those after it. Frames already handed out stay valid. The caller skips
// the frames before the one it wants.
func (d *Decoder) SeekTo(pts int64) error {
	if d.cc == nil {
		return internalErr("seeking a closed decoder", errors.New("closed"))
	}
	if err := d.in.fc.SeekFrame(d.idx, pts, astiav.NewSeekFlags(astiav.SeekFlagBackward)); err != nil {
		return inputErrCause(ErrCorrupt, err, "the video cannot be read from %v", ticksToDuration(pts-d.start, d.tb))
	}
	C.vm_flush_decoder(cCodecContext(d.cc))
	d.norm.free()
	d.norm, d.normKey, d.normFlushed = nil, "", false
	d.sentEOF, d.decEOF, d.readErr, d.done = false, false, nil, nil
	d.badInARow, d.havePTS = 0, false
	return nil
}

package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"os"
	"strconv"
	"strings"

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
// it before any frame arrives. maxPixels <= 0 means
// DefaultMaxBackgroundPixels.
func loadBackgroundImage(path string, maxPixels int) (*astiav.Frame, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxBackgroundPixels
	}
	pic, err := decodeFirstPicture(path, maxPixels)
	if err != nil {
		var ve *vidmatte.Error
		if errors.As(err, &ve) {
			return nil, err
		}
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

// ImageFormats are the FFmpeg demuxers a background image may be read
// with: PNG, JPEG and WebP, one picture each. The demuxer is chosen from
// the file's signature (never its name) before FFmpeg reads it, and
// FFmpeg checks the whitelist again; playlists, videos and image
// sequences are refused. Do not modify.
var ImageFormats = []string{"png_pipe", "jpeg_pipe", "webp_pipe"}

// imageCodecs are the decoders a background image may use.
var imageCodecs = map[astiav.CodecID]bool{astiav.CodecIDPng: true, astiav.CodecIDMjpeg: true, astiav.CodecIDWebp: true}

// DefaultMaxBackgroundPixels is the largest background image decoded
// (EncoderOptions.MaxBackgroundPixels): 40 megapixels.
const DefaultMaxBackgroundPixels = 40_000_000

// sniffImage names the demuxer of ImageFormats that reads an image with
// the signature at the start of head, and the image's kind; "" when none
// does.
func sniffImage(head []byte) (demuxer, kind string) {
	switch {
	case bytes.HasPrefix(head, []byte("\x89PNG\r\n\x1a\n")):
		return "png_pipe", "PNG"
	case bytes.HasPrefix(head, []byte{0xFF, 0xD8, 0xFF}):
		return "jpeg_pipe", "JPEG"
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WEBP":
		return "webp_pipe", "WebP"
	}
	return "", ""
}

// imageSize reads the picture size an image's header declares, without
// decoding it; ok is false when the header cannot be read.
func imageSize(path, kind string) (w, h int, ok bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, false
	}
	defer f.Close()
	r := bufio.NewReader(f)
	switch kind {
	case "PNG":
		c, err := png.DecodeConfig(r)
		return c.Width, c.Height, err == nil
	case "JPEG":
		c, err := jpeg.DecodeConfig(r)
		return c.Width, c.Height, err == nil
	}
	var b [30]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, 0, false
	}
	le24 := func(p []byte) int { return int(p[0]) | int(p[1])<<8 | int(p[2])<<16 }
	switch string(b[12:16]) {
	case "VP8 ":
		if b[23] != 0x9d || b[24] != 0x01 || b[25] != 0x2a {
			return 0, 0, false
		}
		return int(binary.LittleEndian.Uint16(b[26:28]) & 0x3fff), int(binary.LittleEndian.Uint16(b[28:30]) & 0x3fff), true
	case "VP8L":
		if b[20] != 0x2f {
			return 0, 0, false
		}
		v := binary.LittleEndian.Uint32(b[21:25])
		return int(v&0x3fff) + 1, int(v>>14&0x3fff) + 1, true
	case "VP8X":
		return le24(b[24:27]) + 1, le24(b[27:30]) + 1, true
	}
	return 0, 0, false
}

// imageErr is the typed error of an unusable background image.
func imageErr(sentinel error, format string, args ...any) error {
	return &vidmatte.Error{Code: vidmatte.CodeUnprocessable, Message: fmt.Sprintf(format, args...), Err: sentinel}
}

// tooManyPixels is the error for a w x h background beyond maxPixels.
func tooManyPixels(w, h, maxPixels int) error {
	return imageErr(ErrImageTooLarge, "the background image is %dx%d (%.1f megapixels), beyond the limit of %.1f megapixels",
		w, h, float64(w)*float64(h)/1e6, float64(maxPixels)/1e6)
}

// decodeFirstPicture decodes the picture of a PNG, JPEG or WebP file of at
// most maxPixels pixels. Anything else (a playlist, a video, an image
// sequence pattern, text) is refused before FFmpeg reads it.
func decodeFirstPicture(path string, maxPixels int) (*astiav.Frame, error) {
	head, err := readHead(path, 16)
	if err != nil {
		return nil, err
	}
	demuxer, kind := sniffImage(head)
	if demuxer == "" {
		full, _ := readHead(path, probeBytes)
		if name, score := probeFormat(full); name != "" && score > 25 {
			return nil, imageErr(ErrNotImage, "the background is not a PNG, JPEG or WebP image (it reads as %s)", name)
		}
		return nil, imageErr(ErrNotImage, "the background is not a PNG, JPEG or WebP image")
	}
	if w, h, ok := imageSize(path, kind); ok && int64(w)*int64(h) > int64(maxPixels) {
		return nil, tooManyPixels(w, h, maxPixels)
	}
	ifmt := astiav.FindInputFormat(demuxer)
	if ifmt == nil {
		return nil, fmt.Errorf("FFmpeg has no %s demuxer", demuxer)
	}
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, errors.New("out of memory")
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	_ = opts.Set("protocol_whitelist", "file", 0)
	_ = opts.Set("format_whitelist", strings.Join(ImageFormats, ","), 0)
	_ = opts.Set("codec_whitelist", "png,mjpeg,webp", 0)
	if err := fc.OpenInput("file:"+path, ifmt, opts); err != nil {
		fc.Free()
		return nil, imageErr(ErrCorrupt, "the background %s image is damaged and cannot be opened", kind)
	}
	defer func() {
		fc.CloseInput()
		fc.Free()
	}()
	// The image demuxers know the codec from their header; stream
	// information would decode the picture before its size is checked.
	var st *astiav.Stream
	for _, s := range fc.Streams() {
		if s.CodecParameters().MediaType() == astiav.MediaTypeVideo {
			st = s
			break
		}
	}
	if st == nil || !imageCodecs[st.CodecParameters().CodecID()] {
		return nil, imageErr(ErrNotImage, "the background is not a PNG, JPEG or WebP image")
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
	copts := astiav.NewDictionary()
	defer copts.Free()
	// The decoder refuses much larger pictures too, whatever the header
	// said (it counts the rows padded to its alignment, hence the slack);
	// the decoded size is checked exactly below.
	_ = copts.Set("max_pixels", strconv.FormatInt(2*int64(maxPixels)+1<<16, 10), 0)
	if err := cc.Open(codec, copts); err != nil {
		return nil, err
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	frame := astiav.AllocFrame()
	flushed := false
	for {
		err := cc.ReceiveFrame(frame)
		if err == nil {
			if int64(frame.Width())*int64(frame.Height()) > int64(maxPixels) {
				w, h := frame.Width(), frame.Height()
				frame.Free()
				return nil, tooManyPixels(w, h, maxPixels)
			}
			return frame, nil
		}
		if !isAgain(err) {
			frame.Free()
			return nil, imageErr(ErrCorrupt, "the background %s image is damaged and cannot be decoded", kind)
		}
		if flushed {
			frame.Free()
			return nil, imageErr(ErrCorrupt, "the background %s image holds no picture that can be decoded", kind)
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

package testmedia

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// ReadAlpha decodes a produced file and returns the alpha plane of each
// frame (width*height bytes): VP9 WebM through the libvpx-vp9 decoder (the
// only one that returns alpha), MOV, GIF and WebP as RGBA, a zip of PNGs
// with Go's PNG decoder, and an .mp4 as a mask video (alpha = luma, read
// without range conversion).
func ReadAlpha(t testing.TB, path string) [][]byte {
	t.Helper()
	if strings.EqualFold(filepath.Ext(path), ".mp4") {
		w, h := videoSize(t, path)
		// Decode to the stored pixel format so that no range conversion
		// touches the luma.
		pixFmt := strings.TrimSpace(string(run(t, nil, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=pix_fmt", "-of", "csv=p=0", path)))
		if pixFmt != "yuv420p" && pixFmt != "yuvj420p" {
			t.Fatalf("testmedia: %s is %s, not a 4:2:0 mask video", path, pixFmt)
		}
		planes := decodeRaw(t, path, pixFmt, w, h, w*h+2*((w+1)/2)*((h+1)/2))
		out := make([][]byte, len(planes))
		for i, p := range planes {
			out[i] = p[:w*h]
		}
		return out
	}
	pics := ReadRGBA(t, path)
	out := make([][]byte, len(pics))
	for i, p := range pics {
		b := p.Bounds()
		a := make([]byte, 0, b.Dx()*b.Dy())
		for y := 0; y < b.Dy(); y++ {
			row := p.Pix[y*p.Stride : y*p.Stride+4*b.Dx()]
			for x := 0; x < b.Dx(); x++ {
				a = append(a, row[4*x+3])
			}
		}
		out[i] = a
	}
	return out
}

// ReadRGBA decodes a produced file (see ReadAlpha) into non-premultiplied
// RGBA pictures, one per frame.
func ReadRGBA(t testing.TB, path string) []*image.NRGBA {
	t.Helper()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".zip":
		return readPNGZip(t, path)
	case ".webp":
		return readAnimatedWebP(t, path)
	}
	w, h := videoSize(t, path)
	raw := decodeRaw(t, path, "rgba", w, h, 4*w*h)
	out := make([]*image.NRGBA, len(raw))
	for i, b := range raw {
		out[i] = &image.NRGBA{Pix: b, Stride: 4 * w, Rect: image.Rect(0, 0, w, h)}
	}
	return out
}

// decodeRaw decodes the first video stream of path with the ffmpeg tool to
// raw frames of pixFmt, frameSize bytes each, one per stored frame.
func decodeRaw(t testing.TB, path, pixFmt string, w, h, frameSize int) [][]byte {
	t.Helper()
	var args []string
	args = append(args, "-hide_banner", "-nostdin", "-loglevel", "error")
	if strings.EqualFold(filepath.Ext(path), ".webm") {
		args = append(args, "-c:v", "libvpx-vp9")
	}
	args = append(args, "-i", path, "-map", "0:v:0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", pixFmt, "-")
	raw := run(t, nil, "ffmpeg", args...)
	if len(raw)%frameSize != 0 {
		t.Fatalf("testmedia: decoding %s gave %d bytes, not a whole number of %dx%d %s frames", path, len(raw), w, h, pixFmt)
	}
	var out [][]byte
	for off := 0; off < len(raw); off += frameSize {
		out = append(out, raw[off:off+frameSize:off+frameSize])
	}
	return out
}

// videoSize is the stored size of the first video stream.
func videoSize(t testing.TB, path string) (int, int) {
	t.Helper()
	out := run(t, nil, "ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=width,height", "-of", "csv=p=0", path)
	parts := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(parts) < 2 {
		t.Fatalf("testmedia: ffprobe found no video size in %s: %q", path, out)
	}
	w, err1 := strconv.Atoi(parts[0])
	h, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		t.Fatalf("testmedia: ffprobe gave a bad size for %s: %q", path, out)
	}
	return w, h
}

// Probe counts the video frames of a media file (ffprobe -count_frames),
// and gives its duration and whether it has an audio stream. An animated
// WebP is read by this package (FFmpeg 5.1 does not demux them): the
// duration is the sum of the frame durations. A zip of PNGs has one frame
// per PNG and no duration.
func Probe(t testing.TB, path string) (frames int, duration time.Duration, hasAudio bool) {
	t.Helper()
	switch strings.ToLower(filepath.Ext(path)) {
	case ".zip":
		return len(pngEntries(t, path)), 0, false
	case ".webp":
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("testmedia: %v", err)
		}
		_, _, fr, err := parseWebP(b)
		if err != nil {
			t.Fatalf("testmedia: %s: %v", path, err)
		}
		for _, f := range fr {
			duration += f.duration
		}
		return len(fr), duration, false
	}
	out := run(t, nil, "ffprobe", "-v", "error", "-count_frames", "-show_entries",
		"stream=codec_type,nb_read_frames:format=duration", "-of", "json", path)
	var doc struct {
		Streams []struct {
			CodecType    string `json:"codec_type"`
			NbReadFrames string `json:"nb_read_frames"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("testmedia: ffprobe output for %s: %v", path, err)
	}
	seenVideo := false
	for _, s := range doc.Streams {
		switch s.CodecType {
		case "video":
			if !seenVideo {
				frames, _ = strconv.Atoi(s.NbReadFrames)
				seenVideo = true
			}
		case "audio":
			hasAudio = true
		}
	}
	if sec, err := strconv.ParseFloat(doc.Format.Duration, 64); err == nil {
		duration = time.Duration(sec * float64(time.Second))
	}
	return frames, duration, hasAudio
}

// pngEntries lists the .png files of a zip, sorted by name.
func pngEntries(t testing.TB, path string) []*zip.File {
	t.Helper()
	zr, err := zip.OpenReader(path)
	if err != nil {
		t.Fatalf("testmedia: %s: %v", path, err)
	}
	t.Cleanup(func() { zr.Close() })
	var files []*zip.File
	for _, f := range zr.File {
		if strings.EqualFold(filepath.Ext(f.Name), ".png") {
			files = append(files, f)
		}
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Name < files[j].Name })
	return files
}

func readPNGZip(t testing.TB, path string) []*image.NRGBA {
	t.Helper()
	var out []*image.NRGBA
	for _, f := range pngEntries(t, path) {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("testmedia: %s in %s: %v", f.Name, path, err)
		}
		img, err := png.Decode(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("testmedia: %s in %s: %v", f.Name, path, err)
		}
		out = append(out, toNRGBA(img))
	}
	return out
}

func toNRGBA(img image.Image) *image.NRGBA {
	if n, ok := img.(*image.NRGBA); ok {
		return n
	}
	n := image.NewNRGBA(img.Bounds())
	draw.Draw(n, n.Bounds(), img, img.Bounds().Min, draw.Src)
	return n
}

// webpFrame is one frame of an animated WebP: its rectangle on the canvas,
// how long it shows, how it is drawn and disposed of, and its picture as a
// standalone WebP file.
type webpFrame struct {
	x, y, w, h int
	duration   time.Duration
	blend      bool // alpha-blend over the canvas (else replace)
	dispose    bool // clear the rectangle to transparent afterwards
	file       []byte
}

// parseWebP reads the RIFF structure of a WebP file: the canvas size and
// its frames (one frame for a still image).
func parseWebP(b []byte) (canvasW, canvasH int, frames []webpFrame, err error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WEBP" {
		return 0, 0, nil, errors.New("not a WebP file")
	}
	chunks, err := riffChunks(b[12:])
	if err != nil {
		return 0, 0, nil, err
	}
	for _, c := range chunks {
		switch c.id {
		case "VP8X":
			if len(c.data) < 10 {
				return 0, 0, nil, errors.New("short VP8X chunk")
			}
			canvasW = int(le24(c.data[4:])) + 1
			canvasH = int(le24(c.data[7:])) + 1
		case "ANMF":
			if len(c.data) < 16 {
				return 0, 0, nil, errors.New("short ANMF chunk")
			}
			f := webpFrame{
				x:        2 * int(le24(c.data[0:])),
				y:        2 * int(le24(c.data[3:])),
				w:        int(le24(c.data[6:])) + 1,
				h:        int(le24(c.data[9:])) + 1,
				duration: time.Duration(le24(c.data[12:])) * time.Millisecond,
				blend:    c.data[15]&0x02 == 0,
				dispose:  c.data[15]&0x01 != 0,
			}
			sub, err := riffChunks(c.data[16:])
			if err != nil {
				return 0, 0, nil, fmt.Errorf("frame %d: %w", len(frames), err)
			}
			f.file = standaloneWebP(f.w, f.h, sub)
			frames = append(frames, f)
		}
	}
	if len(frames) == 0 {
		// A still image: the whole file is its one frame.
		frames = append(frames, webpFrame{w: canvasW, h: canvasH, file: b})
	}
	return canvasW, canvasH, frames, nil
}

type riffChunk struct {
	id   string
	data []byte
}

func riffChunks(b []byte) ([]riffChunk, error) {
	var out []riffChunk
	for len(b) >= 8 {
		id := string(b[0:4])
		n := int(binary.LittleEndian.Uint32(b[4:8]))
		if 8+n > len(b) {
			return nil, fmt.Errorf("chunk %q runs past the end", id)
		}
		out = append(out, riffChunk{id, b[8 : 8+n]})
		n += n & 1
		if 8+n > len(b) {
			break
		}
		b = b[8+n:]
	}
	return out, nil
}

func le24(b []byte) uint32 { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }

// standaloneWebP wraps a frame's ALPH/VP8/VP8L chunks into a WebP file of
// its own (extended format when there is a separate alpha chunk).
func standaloneWebP(w, h int, chunks []riffChunk) []byte {
	var body bytes.Buffer
	hasAlph := false
	for _, c := range chunks {
		if c.id == "ALPH" {
			hasAlph = true
		}
	}
	put := func(id string, data []byte) {
		body.WriteString(id)
		_ = binary.Write(&body, binary.LittleEndian, uint32(len(data)))
		body.Write(data)
		if len(data)&1 == 1 {
			body.WriteByte(0)
		}
	}
	if hasAlph {
		vp8x := make([]byte, 10)
		vp8x[0] = 0x10 // alpha
		putLE24(vp8x[4:], uint32(w-1))
		putLE24(vp8x[7:], uint32(h-1))
		put("VP8X", vp8x)
	}
	for _, c := range chunks {
		if c.id == "ALPH" || c.id == "VP8 " || c.id == "VP8L" {
			put(c.id, c.data)
		}
	}
	var file bytes.Buffer
	file.WriteString("RIFF")
	_ = binary.Write(&file, binary.LittleEndian, uint32(4+body.Len()))
	file.WriteString("WEBP")
	file.Write(body.Bytes())
	return file.Bytes()
}

func putLE24(b []byte, v uint32) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }

// readAnimatedWebP decodes every frame's picture with the ffmpeg tool (its
// WebP decoder reads still images) and composes them on the canvas the way
// the WebP container says.
func readAnimatedWebP(t testing.TB, path string) []*image.NRGBA {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	cw, ch, frames, err := parseWebP(b)
	if err != nil {
		t.Fatalf("testmedia: %s: %v", path, err)
	}
	var stream bytes.Buffer
	size := 0
	for _, f := range frames {
		stream.Write(f.file)
		size += 4 * f.w * f.h
	}
	raw := run(t, stream.Bytes(), "ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "webp_pipe", "-i", "-",
		"-autoscale", "0", "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgba", "-")
	if len(raw) != size {
		t.Fatalf("testmedia: decoding the %d frames of %s gave %d bytes, want %d", len(frames), path, len(raw), size)
	}
	if cw == 0 {
		cw, ch = frames[0].w, frames[0].h
	}
	canvas := image.NewNRGBA(image.Rect(0, 0, cw, ch))
	var out []*image.NRGBA
	off := 0
	for _, f := range frames {
		pic := raw[off : off+4*f.w*f.h]
		off += 4 * f.w * f.h
		for y := 0; y < f.h && f.y+y < ch; y++ {
			for x := 0; x < f.w && f.x+x < cw; x++ {
				src := pic[4*(y*f.w+x) : 4*(y*f.w+x)+4]
				dst := canvas.Pix[canvas.PixOffset(f.x+x, f.y+y):][:4]
				if !f.blend {
					copy(dst, src)
					continue
				}
				blendOver(dst, src)
			}
		}
		snap := image.NewNRGBA(canvas.Rect)
		copy(snap.Pix, canvas.Pix)
		out = append(out, snap)
		if f.dispose {
			for y := f.y; y < f.y+f.h && y < ch; y++ {
				for x := f.x; x < f.x+f.w && x < cw; x++ {
					copy(canvas.Pix[canvas.PixOffset(x, y):][:4], []byte{0, 0, 0, 0})
				}
			}
		}
	}
	return out
}

// blendOver draws the non-premultiplied pixel src over dst.
func blendOver(dst, src []byte) {
	as := float64(src[3]) / 255
	ad := float64(dst[3]) / 255
	a := as + ad*(1-as)
	if a <= 0 {
		copy(dst, []byte{0, 0, 0, 0})
		return
	}
	for c := 0; c < 3; c++ {
		v := (float64(src[c])*as + float64(dst[c])*ad*(1-as)) / a
		dst[c] = byte(v + 0.5)
	}
	dst[3] = byte(a*255 + 0.5)
}

// Span is when a stream's packets start and end (the last packet's time
// plus its duration), in presentation time.
type Span struct {
	Present    bool
	Start, End time.Duration
	Packets    int
}

// Duration is End - Start.
func (s Span) Duration() time.Duration { return s.End - s.Start }

// Spans reads the packet timestamps of the first video and the first audio
// stream of a media file with ffprobe (decoding times where a container
// stores no presentation times).
func Spans(t testing.TB, path string) (video, audio Span) {
	t.Helper()
	out := run(t, nil, "ffprobe", "-v", "error", "-show_entries", "stream=index,codec_type:packet=stream_index,pts_time,dts_time,duration_time", "-of", "json", path)
	var doc struct {
		Streams []struct {
			Index     int    `json:"index"`
			CodecType string `json:"codec_type"`
		} `json:"streams"`
		Packets []struct {
			StreamIndex  int    `json:"stream_index"`
			PtsTime      string `json:"pts_time"`
			DtsTime      string `json:"dts_time"`
			DurationTime string `json:"duration_time"`
		} `json:"packets"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("testmedia: ffprobe output for %s: %v", path, err)
	}
	vi, ai := -1, -1
	for _, s := range doc.Streams {
		switch {
		case s.CodecType == "video" && vi < 0:
			vi = s.Index
		case s.CodecType == "audio" && ai < 0:
			ai = s.Index
		}
	}
	sec := func(s string) (time.Duration, bool) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return 0, false
		}
		return time.Duration(f * float64(time.Second)), true
	}
	type pkt struct{ pts, dur time.Duration }
	var vp, ap []pkt
	for _, p := range doc.Packets {
		pts, ok := sec(p.PtsTime)
		if !ok {
			// AVI stores decoding times only.
			if pts, ok = sec(p.DtsTime); !ok {
				continue
			}
		}
		dur, _ := sec(p.DurationTime)
		switch p.StreamIndex {
		case vi:
			vp = append(vp, pkt{pts, dur})
		case ai:
			ap = append(ap, pkt{pts, dur})
		}
	}
	span := func(ps []pkt) Span {
		if len(ps) == 0 {
			return Span{}
		}
		sort.Slice(ps, func(i, j int) bool { return ps[i].pts < ps[j].pts })
		// A packet without a duration lasts the usual gap.
		var gaps []time.Duration
		for i := 1; i < len(ps); i++ {
			gaps = append(gaps, ps[i].pts-ps[i-1].pts)
		}
		sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
		var typical time.Duration
		if len(gaps) > 0 {
			typical = gaps[len(gaps)/2]
		}
		sp := Span{Present: true, Start: ps[0].pts, Packets: len(ps)}
		for _, p := range ps {
			d := p.dur
			if d <= 0 {
				d = typical
			}
			if p.pts+d > sp.End {
				sp.End = p.pts + d
			}
		}
		return sp
	}
	video, audio = span(vp), span(ap)
	return video, audio
}

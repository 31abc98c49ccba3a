package codec

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/asticode/go-astiav"

	"vidmatte"
)

// InputFormats are the FFmpeg demuxers an input video may be read with:
// QuickTime/MP4 ("mov", which also reads m4a, 3gp, 3g2 and mj2), Matroska
// and WebM ("matroska"), AVI, MPEG transport streams (camera .ts/.mts),
// animated GIF, and raw H.264 and HEVC elementary streams. The demuxer is
// chosen from the file's first bytes and must be one of these before any
// header is parsed; everything else (playlists such as HLS or ffconcat,
// still images, text) is refused. Do not modify.
var InputFormats = []string{"mov", "matroska", "avi", "mpegts", "gif", "h264", "hevc"}

// probeBytes is how much of a file's start the demuxer is chosen from.
const probeBytes = 1 << 20

// input is an opened container and its chosen video stream.
type input struct {
	path  string
	size  int64
	fc    *astiav.FormatContext
	intr  *interrupter
	video *astiav.Stream
	audio *astiav.Stream // nil when there is none
	// cutShort is whether the container's own structure declares more
	// bytes than the file holds.
	cutShort bool
}

// close frees the container. Safe on a nil or closed input.
func (in *input) close() {
	if in == nil || in.fc == nil {
		return
	}
	in.fc.CloseInput()
	in.fc.Free()
	in.fc = nil
	in.intr.release()
	in.intr = nil
}

// refusedDemuxer names what a demuxer outside InputFormats reads, for the
// message: still images, text, playlists and lists of other files.
func refusedDemuxer(name string) (string, bool) {
	switch {
	case name == "image2" || strings.HasSuffix(name, "_pipe"):
		return "a still image", true
	case name == "tty" || name == "bin" || name == "xbin" || name == "idf" || name == "adp":
		return "a text file", true
	case name == "hls" || name == "dash" || name == "concat" || name == "ffmetadata" || name == "image2pipe":
		return "a playlist or list of other files", true
	}
	return "", false
}

// canceled is the typed error for a read stopped because ctx ended, or nil
// while ctx goes on.
func canceled(ctx context.Context) error {
	err := ctx.Err()
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return &vidmatte.Error{Code: vidmatte.CodeTimeout, Message: "reading the input took too long", Err: err}
	}
	return &vidmatte.Error{Code: vidmatte.CodeCanceled, Message: "reading the input was canceled", Err: err}
}

// readHead reads up to n bytes from the start of path.
func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	head := make([]byte, n)
	m, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return head[:m], nil
}

// chooseInputFormat decides, from the file's first bytes alone, which
// demuxer of InputFormats reads it, or why none may.
func chooseInputFormat(path string) (*astiav.InputFormat, string, error) {
	head, err := readHead(path, probeBytes)
	if err != nil {
		return nil, "", &vidmatte.Error{Code: vidmatte.CodeInternal, Message: "cannot read the input file", Err: err}
	}
	name, score := probeFormat(head)
	if name == "" || score <= 25 {
		return nil, "", inputErr(ErrNotMedia, "the file is not a video FFmpeg can read")
	}
	if !matchFormat(name, InputFormats) {
		if what, refused := refusedDemuxer(name); refused {
			return nil, "", inputErr(ErrNotMedia, "the file is %s (%s), not a video", what, name)
		}
		return nil, "", inputErr(ErrNotMedia, "the file is in the %s format, which is not an accepted video container (%s)", name, strings.Join(InputFormats, ", "))
	}
	short, _, _ := strings.Cut(name, ",")
	f := astiav.FindInputFormat(short)
	if f == nil {
		return nil, "", internalErr("finding the "+name+" demuxer", errors.New("FFmpeg has no such demuxer"))
	}
	return f, name, nil
}

// openInput opens path as a container and picks its video stream, turning
// every failure into one of the typed errors. The demuxer is one of
// InputFormats, chosen before any header is parsed; only local files are
// read. ctx interrupts the reads of the input (until it is closed).
func openInput(ctx context.Context, path string) (*input, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &vidmatte.Error{Code: vidmatte.CodeNotFound, Message: "input file not found", Err: err}
		}
		return nil, &vidmatte.Error{Code: vidmatte.CodeInternal, Message: "cannot read the input file", Err: err}
	}
	if st.IsDir() {
		return nil, inputErr(ErrNotMedia, "the input is a directory, not a video file")
	}
	if st.Size() == 0 {
		return nil, inputErr(ErrEmpty, "the file is empty (0 bytes)")
	}
	if err := canceled(ctx); err != nil {
		return nil, err
	}
	ifmt, name, err := chooseInputFormat(path)
	if err != nil {
		return nil, err
	}
	in := &input{path: path, size: st.Size()}
	fc := astiav.AllocFormatContext()
	if fc == nil {
		return nil, internalErr("allocating a demuxer", errors.New("out of memory"))
	}
	intr, err := bindContext(ctx, fc)
	if err != nil {
		fc.Free()
		return nil, internalErr("allocating a demuxer", err)
	}
	opts := astiav.NewDictionary()
	defer opts.Free()
	// Only local files, and only the accepted demuxers (FFmpeg checks the
	// whitelist again before reading the header).
	_ = opts.Set("protocol_whitelist", "file", 0)
	_ = opts.Set("format_whitelist", strings.Join(InputFormats, ","), 0)
	if err := fc.OpenInput("file:"+path, ifmt, opts); err != nil {
		fc.Free()
		intr.release()
		if cerr := canceled(ctx); cerr != nil {
			return nil, cerr
		}
		return nil, in.classifyOpenFailure(name, err)
	}
	in.fc, in.intr = fc, intr
	in.cutShort = in.declaresMoreThanFile(name)
	if err := fc.FindStreamInfo(nil); err != nil {
		in.close()
		if cerr := canceled(ctx); cerr != nil {
			return nil, cerr
		}
		if in.cutShort {
			return nil, inputErrCause(ErrTruncated, err, "the file is cut short: its %s container declares more data than the file holds", name)
		}
		return nil, inputErrCause(ErrCorrupt, err, "the %s file is damaged: its streams cannot be read", name)
	}
	if fc.NbStreams() == 0 {
		in.close()
		return nil, inputErr(ErrCorrupt, "the %s file is damaged: it holds no readable stream", name)
	}
	in.pickStreams()
	if in.video == nil {
		in.close()
		if in.audio != nil {
			return nil, inputErr(ErrNoVideo, "the file has no video stream (audio only)")
		}
		return nil, inputErr(ErrNoVideo, "the file has no video stream")
	}
	return in, nil
}

// pickStreams chooses the first real video stream (not cover art) and the
// first audio stream with a known layout.
func (in *input) pickStreams() {
	for _, s := range in.fc.Streams() {
		cp := s.CodecParameters()
		switch cp.MediaType() {
		case astiav.MediaTypeVideo:
			if in.video == nil && !isAttachedPic(s) {
				in.video = s
			}
		case astiav.MediaTypeAudio:
			if in.audio == nil && cp.SampleRate() > 0 {
				in.audio = s
			}
		}
	}
}

// classifyOpenFailure decides why FFmpeg could not open a file its name
// demuxer recognised: truncated when its structure runs past the end of
// the file, and corrupt otherwise.
func (in *input) classifyOpenFailure(name string, openErr error) error {
	f, err := os.Open(in.path)
	if err != nil {
		return &vidmatte.Error{Code: vidmatte.CodeInternal, Message: "cannot read the input file", Err: err}
	}
	defer f.Close()
	if cutShort(f, in.size, name) {
		return inputErrCause(ErrTruncated, openErr, "the file is cut short: its %s container declares more data than the file holds", name)
	}
	return inputErrCause(ErrCorrupt, openErr, "the %s file is damaged and cannot be opened", name)
}

// declaresMoreThanFile is cutShort on the opened file.
func (in *input) declaresMoreThanFile(format string) bool {
	f, err := os.Open(in.path)
	if err != nil {
		return false
	}
	defer f.Close()
	return cutShort(f, in.size, format)
}

// cutShort reports whether the container structure of f (a file of size
// bytes in the named FFmpeg format) declares more bytes than the file
// holds: the sign of a file cut short. It knows the QuickTime/MP4 box
// structure, Matroska/WebM's segment size and RIFF (AVI) chunk sizes; for
// other containers it cannot tell and says no.
func cutShort(f io.ReaderAt, size int64, format string) bool {
	switch {
	case strings.Contains(format, "mov") || strings.Contains(format, "mp4"):
		return movCutShort(f, size)
	case strings.Contains(format, "matroska") || strings.Contains(format, "webm"):
		return matroskaCutShort(f, size)
	case format == "avi":
		return riffCutShort(f, size)
	}
	return false
}

// movCutShort walks the top-level boxes: one that runs past the end of the
// file, a partial box header, or a file without a movie box are cut short.
func movCutShort(f io.ReaderAt, size int64) bool {
	var hdr [16]byte
	off := int64(0)
	sawMoov := false
	for off < size {
		if off+8 > size {
			return true
		}
		if _, err := f.ReadAt(hdr[:8], off); err != nil {
			return false
		}
		boxSize := int64(binary.BigEndian.Uint32(hdr[0:4]))
		typ := string(hdr[4:8])
		headerLen := int64(8)
		if boxSize == 1 {
			if off+16 > size {
				return true
			}
			if _, err := f.ReadAt(hdr[8:16], off+8); err != nil {
				return false
			}
			boxSize = int64(binary.BigEndian.Uint64(hdr[8:16]))
			headerLen = 16
		}
		if typ == "moov" {
			sawMoov = true
		}
		if boxSize == 0 {
			// The last box runs to the end of the file: a recording that
			// was never finished when there is no movie box.
			return !sawMoov
		}
		if boxSize < headerLen {
			return false
		}
		if off+boxSize > size {
			return true
		}
		off += boxSize
	}
	return !sawMoov
}

// readVint reads an EBML variable-length integer at off: its value (with
// the length marker removed when mask is set), its length, and whether all
// its value bits are ones (an unknown size).
func readVint(f io.ReaderAt, off int64, mask bool) (v uint64, n int, unknown bool, ok bool) {
	var b [8]byte
	if _, err := f.ReadAt(b[:1], off); err != nil {
		return 0, 0, false, false
	}
	first := b[0]
	n = 1
	for n <= 8 && first&(0x80>>(n-1)) == 0 {
		n++
	}
	if n > 8 {
		return 0, 0, false, false
	}
	if n > 1 {
		if _, err := f.ReadAt(b[1:n], off+1); err != nil {
			return 0, 0, false, false
		}
	}
	v = uint64(first)
	if mask {
		v &= uint64(0xFF >> n)
	}
	allOnes := v == uint64(0xFF>>n)
	for i := 1; i < n; i++ {
		v = v<<8 | uint64(b[i])
		allOnes = allOnes && b[i] == 0xFF
	}
	return v, n, allOnes && mask, true
}

// matroskaCutShort compares the Segment element's declared size with the
// bytes that follow it.
func matroskaCutShort(f io.ReaderAt, size int64) bool {
	off := int64(0)
	for i := 0; i < 4 && off < size; i++ {
		id, idLen, _, ok := readVint(f, off, false)
		if !ok {
			return false
		}
		sz, szLen, unknown, ok := readVint(f, off+int64(idLen), true)
		if !ok {
			return off+int64(idLen) >= size
		}
		dataStart := off + int64(idLen) + int64(szLen)
		if id == 0x18538067 { // Segment
			if unknown {
				return false
			}
			return dataStart+int64(sz) > size
		}
		if unknown {
			return false
		}
		off = dataStart + int64(sz)
	}
	return false
}

// riffCutShort checks each RIFF chunk (AVI files over 1 GiB chain several)
// against the file size.
func riffCutShort(f io.ReaderAt, size int64) bool {
	var hdr [8]byte
	off := int64(0)
	for off+8 <= size {
		if _, err := f.ReadAt(hdr[:], off); err != nil {
			return false
		}
		if string(hdr[0:4]) != "RIFF" {
			return false
		}
		n := int64(binary.LittleEndian.Uint32(hdr[4:8]))
		if off+8+n > size {
			return true
		}
		off += 8 + n + n&1
	}
	return false
}

package codec

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/asticode/go-astiav"
)

// Info is what Probe learns about a media file.
type Info struct {
	Path      string
	Size      int64  // bytes
	Container string // demuxer name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
	// Duration is that of the whole file as the container declares it,
	// else derived from the video stream's packets.
	Duration time.Duration
	// VideoCodec is FFmpeg's name of the video codec, e.g. "h264".
	VideoCodec string
	// Width and Height are the display size: after rotation.
	Width, Height int
	// CodedWidth and CodedHeight are the size of the stored pictures.
	CodedWidth, CodedHeight int
	// Rotation is the clockwise rotation, in degrees, a player applies on
	// display: 0, 90, 180 or 270. Decoded frames already have it applied.
	Rotation int
	// FrameRate is the average rate, or the nominal one when the container
	// gives no average.
	FrameRate Rational
	// VariableFrameRate is whether frame durations vary (dropped or
	// repeated frames, screen recordings, …).
	VariableFrameRate bool
	// FrameCount is the number of video frames: as an MP4/QuickTime file
	// declares it, else the declared duration at a constant frame rate,
	// else counted by reading (not decoding) the stream. 0 when unknown.
	FrameCount  int64
	TimeBase    Rational // of the video stream
	PixelFormat string   // as stored, e.g. "yuv420p"
	ColorRange  string   // "tv", "pc" or "unknown"
	ColorSpace  string   // "bt709", "bt470bg", "smpte170m", "unknown", …
	BitRate     int64    // bits per second of the whole file; 0 when unknown
	HasAudio    bool
	AudioCodec  string // FFmpeg's name, e.g. "aac"; "" without audio
	// AudioSampleRate and AudioChannels describe the audio stream.
	AudioSampleRate, AudioChannels int
}

// Default picture size limits (DecoderOptions.MaxWidth and MaxHeight).
const (
	DefaultMaxWidth  = 8192
	DefaultMaxHeight = 8192
)

// Probe is ProbeContext with a context that never ends.
func Probe(path string) (*Info, error) {
	return ProbeContext(context.Background(), path)
}

// ProbeContext opens path, checks that it holds a decodable video stream
// of an acceptable size (the default limits) and a known duration in a
// complete file, and describes it. Failures are the typed errors of this
// package; a file cut short is ErrTruncated here, while a Decoder still
// reads the frames it has. A duration the container does not declare is
// derived from the video packets' timestamps (else their count and the
// frame rate); a file whose duration cannot be known is ErrNoDuration.
// When ctx ends, the reading stops and the error carries ctx's error
// (vidmatte.CodeCanceled or CodeTimeout).
func ProbeContext(ctx context.Context, path string) (*Info, error) {
	in, err := openInput(ctx, path)
	if err != nil {
		return nil, err
	}
	defer in.close()
	if in.cutShort {
		return nil, inputErr(ErrTruncated, "the file is cut short: its %s container declares more data than the file holds", in.fc.InputFormat().Name())
	}
	info, err := in.describe(DefaultMaxWidth, DefaultMaxHeight)
	if err != nil {
		return nil, err
	}
	if err := in.complete(ctx, info); err != nil {
		return nil, err
	}
	if info.Duration <= 0 {
		return nil, inputErr(ErrNoDuration, "the %s file declares no duration and none can be derived from its video stream", info.Container)
	}
	return info, nil
}

// declaredDuration is how long the container says the video stream lasts,
// in its time base: the stream's duration, else Matroska's DURATION tag;
// 0 when it does not say.
func declaredDuration(s *astiav.Stream) int64 {
	if d := s.Duration(); d > 0 && d != astiav.NoPtsValue {
		return d
	}
	md := s.Metadata()
	if md == nil {
		return 0
	}
	e := md.Get("DURATION", nil, 0)
	if e == nil {
		return 0
	}
	var h, m int
	var sec float64
	if _, err := fmt.Sscanf(e.Value(), "%d:%d:%f", &h, &m, &sec); err != nil {
		return 0
	}
	d := time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second))
	return durationToTicks(d, fromAV(s.TimeBase()))
}

// streamRotation is the clockwise display rotation of s, rounded to a
// quarter turn.
func streamRotation(s *astiav.Stream) int {
	b := s.SideData(astiav.PacketSideDataTypeDisplaymatrix)
	if len(b) < 36 {
		return 0
	}
	m, err := astiav.NewDisplayMatrixFromBytes(b)
	if err != nil {
		return 0
	}
	r := m.Rotation()
	if math.IsNaN(r) {
		return 0
	}
	deg := int(math.Round(r/90)) * 90 % 360
	if deg < 0 {
		deg += 360
	}
	return deg
}

// describe fills an Info from the opened input and checks the video stream
// can be decoded at an acceptable size.
func (in *input) describe(maxW, maxH int) (*Info, error) {
	fc := in.fc
	vs := in.video
	cp := vs.CodecParameters()
	info := &Info{
		Path:        in.path,
		Size:        in.size,
		Container:   fc.InputFormat().Name(),
		VideoCodec:  cp.CodecID().Name(),
		CodedWidth:  cp.Width(),
		CodedHeight: cp.Height(),
		Rotation:    streamRotation(vs),
		TimeBase:    fromAV(vs.TimeBase()),
		PixelFormat: cp.PixelFormat().Name(),
		ColorRange:  colorRangeName(cp.ColorRange()),
		ColorSpace:  colorSpaceName(cp.ColorSpace()),
		BitRate:     fc.BitRate(),
		FrameCount:  vs.NbFrames(),
	}
	if astiav.FindDecoder(cp.CodecID()) == nil {
		return nil, inputErr(ErrUnsupportedCodec, "the video codec %q is not supported", info.VideoCodec)
	}
	info.Width, info.Height = info.CodedWidth, info.CodedHeight
	if info.Rotation == 90 || info.Rotation == 270 {
		info.Width, info.Height = info.Height, info.Width
	}
	if info.CodedWidth <= 0 || info.CodedHeight <= 0 {
		return nil, inputErr(ErrDimensions, "the video has no picture size")
	}
	if info.Width > maxW || info.Height > maxH {
		return nil, inputErr(ErrDimensions, "the picture is %dx%d, beyond the %dx%d limit", info.Width, info.Height, maxW, maxH)
	}
	if info.Width < 2 || info.Height < 2 {
		return nil, inputErr(ErrDimensions, "the picture is %dx%d, too small to process", info.Width, info.Height)
	}
	avg, nominal := fromAV(vs.AvgFrameRate()), fromAV(vs.RFrameRate())
	switch {
	case avg.Valid():
		info.FrameRate = avg
	case nominal.Valid():
		info.FrameRate = nominal
	}
	if avg.Valid() && nominal.Valid() && math.Abs(avg.Float64()/nominal.Float64()-1) > 0.01 {
		info.VariableFrameRate = true
	}
	if d := fc.Duration(); d > 0 {
		info.Duration = time.Duration(d) * time.Microsecond
	} else if d := vs.Duration(); d > 0 {
		info.Duration = ticksToDuration(d, info.TimeBase)
	}
	if a := in.audio; a != nil {
		acp := a.CodecParameters()
		info.HasAudio = true
		info.AudioCodec = acp.CodecID().Name()
		info.AudioSampleRate = acp.SampleRate()
		info.AudioChannels = acp.ChannelLayout().NbChannels()
	}
	return info, nil
}

// complete fills in what the header does not say, reading the file
// through a second demuxer (no decoding) and leaving in untouched:
//   - the frame count: an MP4/QuickTime file's sample tables count frames
//     exactly; where the container declares the duration and the frame
//     rate is constant, the count is duration × rate; otherwise (AVI headers
//     also count empty chunks, Matroska does not count at all, a variable
//     rate) the video packets are counted, reading the whole file;
//   - a variable rate, from the timestamps of the packets read: all of
//     them when counting, else the first vfrScanPackets (a variable rate
//     found there turns an estimate into a count);
//   - the duration, when the container declares none: from the packets'
//     timestamps (first to the end of the last), else their count at the
//     frame rate. It stays 0 when neither is known.
//
// It returns an error only when ctx ends.
func (in *input) complete(ctx context.Context, info *Info) error {
	exact := strings.HasPrefix(info.Container, "mov,") && info.FrameCount > 0
	if !exact {
		info.FrameCount = 0
	}
	if exact && info.VariableFrameRate && info.Duration > 0 {
		return nil
	}
	estimate := !exact && info.Duration > 0 && info.FrameRate.Valid() && !info.VariableFrameRate
	other, err := openInput(ctx, in.path)
	if err != nil {
		return canceled(ctx)
	}
	defer other.close()
	idx := other.video.Index()
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	var step int64 // one frame in the stream's time base, 0 when unknown
	if info.FrameRate.Valid() && info.TimeBase.Valid() {
		step = int64(math.Round(float64(info.TimeBase.Den) * float64(info.FrameRate.Den) / (float64(info.TimeBase.Num) * float64(info.FrameRate.Num))))
	}
	var pts []int64
	var count int64
	var first, end int64
	haveTS := false
	limited := exact || estimate
	stopped := false // the scan stopped before the end of the file
	for {
		if limited && count >= vfrScanPackets {
			if exact || !irregular(pts) {
				stopped = true
				break
			}
			// Frames were dropped or repeated: duration × rate is wrong.
			info.VariableFrameRate = true
			limited = false
		}
		if err := other.fc.ReadFrame(pkt); err != nil {
			break
		}
		if pkt.StreamIndex() == idx {
			count++
			if completeHook != nil {
				completeHook(count)
			}
			p := pkt.Pts()
			if p != astiav.NoPtsValue {
				pts = append(pts, p)
			} else {
				p = pkt.Dts()
			}
			if p != astiav.NoPtsValue {
				d := pkt.Duration()
				if d <= 0 {
					d = step
				}
				if !haveTS || p < first {
					first = p
				}
				if !haveTS || p+d > end {
					end = p + d
				}
				haveTS = true
			}
		}
		pkt.Unref()
	}
	if err := canceled(ctx); err != nil {
		return err
	}
	switch {
	case exact:
	case estimate && stopped:
		info.FrameCount = estimateFrames(in.video, info)
	default:
		info.FrameCount = count
	}
	if !info.VariableFrameRate && irregular(pts) {
		info.VariableFrameRate = true
	}
	if info.Duration <= 0 {
		switch {
		case haveTS && end > first:
			info.Duration = ticksToDuration(end-first, info.TimeBase)
		case count > 0 && info.FrameRate.Valid():
			info.Duration = time.Duration(float64(count) / info.FrameRate.Float64() * float64(time.Second))
		}
	}
	return nil
}

// completeHook, when a test sets it, sees the number of video packets
// complete has read so far after each one.
var completeHook func(videoPackets int64)

// estimateFrames is the frame count of a constant-rate video stream s as
// its declared duration (the stream's own, else the container's) at the
// frame rate.
func estimateFrames(s *astiav.Stream, info *Info) int64 {
	d := info.Duration
	if ticks := s.Duration(); ticks > 0 && ticks != astiav.NoPtsValue {
		d = ticksToDuration(ticks, info.TimeBase)
	} else if end := declaredDuration(s); end > 0 {
		// Matroska's DURATION tag is where the track ends.
		if start := s.StartTime(); start != astiav.NoPtsValue && start > 0 && start < end {
			end -= start
		}
		d = ticksToDuration(end, info.TimeBase)
	}
	return int64(math.Round(d.Seconds() * info.FrameRate.Float64()))
}

// vfrScanPackets is how many packets of a file whose frames are counted
// already are read to look for a variable rate.
const vfrScanPackets = 600

// irregular reports whether the gaps between the sorted timestamps vary by
// more than rounding: more than a tenth of the usual gap and a tick and a
// half.
func irregular(pts []int64) bool {
	if len(pts) < 3 {
		return false
	}
	slices.Sort(pts)
	gaps := make([]int64, 0, len(pts)-1)
	for i := 1; i < len(pts); i++ {
		if d := pts[i] - pts[i-1]; d > 0 {
			gaps = append(gaps, d)
		}
	}
	if len(gaps) < 2 {
		return false
	}
	sorted := slices.Clone(gaps)
	slices.Sort(sorted)
	median := float64(sorted[len(sorted)/2])
	tol := math.Max(1.5, median/10)
	for _, g := range gaps {
		if math.Abs(float64(g)-median) > tol {
			return true
		}
	}
	return false
}

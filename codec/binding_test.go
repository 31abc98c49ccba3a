package codec

import (
	"context"
	"testing"
	"time"

	"github.com/asticode/go-astiav"

	"vidmatte/internal/testmedia"
)

// TestBindingLayout checks the assumption ffmpeg.go makes about go-astiav's
// wrappers (the C pointer is their first field) against the binding's own
// accessors.
func TestBindingLayout(t *testing.T) {
	path := testmedia.Clip(t, testmedia.ClipOptions{Width: 96, Height: 64, Duration: 80 * time.Millisecond, Audio: true})
	in, err := openInput(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.close()
	fc := cFormatContext(in.fc)
	if int(fc.nb_streams) != in.fc.NbStreams() || fc.duration != cInt64(in.fc.Duration()) {
		t.Fatalf("format context: %d streams, duration %d; binding says %d, %d", fc.nb_streams, fc.duration, in.fc.NbStreams(), in.fc.Duration())
	}
	st := cStream(in.video)
	if int(st.index) != in.video.Index() || int(st.time_base.den) != in.video.TimeBase().Den() {
		t.Fatalf("stream: index %d, time base den %d; binding says %d, %d", st.index, st.time_base.den, in.video.Index(), in.video.TimeBase().Den())
	}
	cc := astiav.AllocCodecContext(astiav.FindDecoder(in.video.CodecParameters().CodecID()))
	defer cc.Free()
	cc.SetWidth(96)
	cc.SetHeight(64)
	if c := cCodecContext(cc); int(c.width) != cc.Width() || int(c.height) != cc.Height() {
		t.Fatalf("codec context: %dx%d; binding says %dx%d", c.width, c.height, cc.Width(), cc.Height())
	}
	pkt := astiav.AllocPacket()
	defer pkt.Free()
	pkt.SetPts(42)
	pkt.SetDuration(7)
	if p := cPacket(pkt); p.pts != cInt64(pkt.Pts()) || p.duration != cInt64(pkt.Duration()) {
		t.Fatalf("packet: pts %d, duration %d; binding says %d, %d", p.pts, p.duration, pkt.Pts(), pkt.Duration())
	}
}

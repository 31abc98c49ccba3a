package codec

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/asticode/go-astiav"

	"vidmatte"
)

// layout is the plan of an output: where the foreground goes, over what,
// and what the encoder receives.
type layout struct {
	format vidmatte.OutputFormat
	// inW x inH is the size of the frames written.
	inW, inH int
	// canvasW x canvasH is the picture the foreground is placed on.
	canvasW, canvasH int
	// fgW x fgH is the scaled foreground, placed with its top-left corner
	// at (x, y) on the canvas (possibly partly outside).
	fgW, fgH int
	x, y     int
	// composed is whether the foreground is moved or scaled at all.
	composed bool
	// bg is the effective background (the mask format ignores it).
	bg vidmatte.Background
	// opaque is whether the output has no transparency.
	opaque bool
	// outW x outH is the encoded picture (the canvas, cropped to even
	// sizes for H.264).
	outW, outH int
	encoder    string
	// encFormat is the pictures' format as the encoder is given them.
	encFormat astiav.PixelFormat
	// alphaStream: the alpha is encoded by an encoder of its own beside
	// the picture's (a transparent WebM: alphaEncoder).
	alphaStream bool
}

// gifDithers are the paletteuse dithers FFmpeg 5.1 knows.
var gifDithers = []string{"bayer", "heckbert", "floyd_steinberg", "sierra2", "sierra2_4a", "none"}

// planLayout validates the options and works out the output's geometry
// and encoder.
func planLayout(o EncoderOptions) (layout, error) {
	l := layout{format: o.Format, inW: o.Width, inH: o.Height, bg: o.Background}
	if l.bg.Type == "" {
		l.bg.Type = vidmatte.BackgroundTransparent
	}
	if o.Format == vidmatte.FormatMask {
		// A mask is the matte itself: nothing is behind it.
		l.bg = vidmatte.Background{Type: vidmatte.BackgroundTransparent}
	}
	switch l.bg.Type {
	case vidmatte.BackgroundTransparent, vidmatte.BackgroundBlur:
	case vidmatte.BackgroundColor:
		if l.bg.Color == nil {
			return l, vidmatte.FieldErrorf("background.color", "a color background needs a color")
		}
		for _, c := range l.bg.Color {
			if c < 0 || c > 1 || math.IsNaN(c) {
				return l, vidmatte.FieldErrorf("background.color", "components must be between 0 and 1")
			}
		}
	case vidmatte.BackgroundImage:
		if l.bg.ImagePath == "" {
			return l, vidmatte.FieldErrorf("background.image_url", "the background image was not fetched")
		}
	default:
		return l, vidmatte.FieldErrorf("background.type", "unknown background type %q", l.bg.Type)
	}
	l.opaque = !l.bg.Transparent()

	l.canvasW, l.canvasH = o.Width, o.Height
	scale := 1.0
	anchor := vidmatte.AnchorCenter
	var offX, offY int
	if err := o.Composition.Validate(); err != nil {
		return l, err
	}
	if c := o.Composition; c != nil {
		if c.Canvas != nil {
			l.canvasW, l.canvasH = c.Canvas.Width, c.Canvas.Height
		}
		if p := c.Foreground; p != nil {
			if p.Scale > 0 {
				scale = p.Scale
			}
			if p.Anchor != "" {
				anchor = p.Anchor
			}
			if p.Offset != nil {
				offX, offY = p.Offset.X, p.Offset.Y
			}
		}
	}
	l.fgW = max(1, int(math.Round(float64(o.Width)*scale)))
	l.fgH = max(1, int(math.Round(float64(o.Height)*scale)))
	if l.fgW > 2*vidmatte.MaxCanvas || l.fgH > 2*vidmatte.MaxCanvas {
		return l, vidmatte.FieldErrorf("composition.foreground.scale", "the scaled foreground (%dx%d) is too large", l.fgW, l.fgH)
	}
	switch anchor {
	case vidmatte.AnchorLeft, vidmatte.AnchorTopLeft, vidmatte.AnchorBottomLeft:
		l.x = 0
	case vidmatte.AnchorRight, vidmatte.AnchorTopRight, vidmatte.AnchorBottomRight:
		l.x = l.canvasW - l.fgW
	case vidmatte.AnchorCenter, vidmatte.AnchorTop, vidmatte.AnchorBottom:
		l.x = (l.canvasW - l.fgW) / 2
	default:
		return l, vidmatte.FieldErrorf("composition.foreground.anchor", "unknown anchor %q", anchor)
	}
	switch anchor {
	case vidmatte.AnchorTop, vidmatte.AnchorTopLeft, vidmatte.AnchorTopRight:
		l.y = 0
	case vidmatte.AnchorBottom, vidmatte.AnchorBottomLeft, vidmatte.AnchorBottomRight:
		l.y = l.canvasH - l.fgH
	default:
		l.y = (l.canvasH - l.fgH) / 2
	}
	l.x += offX
	l.y += offY
	l.composed = l.canvasW != o.Width || l.canvasH != o.Height || l.fgW != o.Width || l.fgH != o.Height || l.x != 0 || l.y != 0
	if l.composed {
		if _, _, w, h := l.visible(); w <= 0 || h <= 0 {
			return l, vidmatte.FieldErrorf("composition.foreground", "the foreground is placed entirely outside the canvas")
		}
	}

	l.outW, l.outH = l.canvasW, l.canvasH
	switch o.Format {
	case vidmatte.FormatWebM:
		l.encoder, l.encFormat = "libvpx-vp9", astiav.PixelFormatYuva420P
		l.alphaStream = true
		if l.opaque {
			l.encFormat, l.alphaStream = astiav.PixelFormatYuv420P, false
		}
	case vidmatte.FormatWebP:
		l.encoder, l.encFormat = "libwebp_anim", astiav.PixelFormatYuva420P
		if l.opaque {
			l.encFormat = astiav.PixelFormatYuv420P
		}
	case vidmatte.FormatMOV:
		l.encoder, l.encFormat = "prores_ks", astiav.PixelFormatYuva444P10Le
	case vidmatte.FormatMP4, vidmatte.FormatMask:
		l.encoder, l.encFormat = "libx264", astiav.PixelFormatYuv420P
		// 4:2:0 H.264 needs even sizes: drop the odd last row or column.
		l.outW, l.outH = max(2, l.outW&^1), max(2, l.outH&^1)
	case vidmatte.FormatGIF:
		l.encoder, l.encFormat = "gif", astiav.PixelFormatPal8
		if d := o.Settings.GIFDither; d != "" && !contains(gifDithers, d) {
			return l, vidmatte.FieldErrorf("gif_dither", "unknown dither %q (one of %s)", d, strings.Join(gifDithers, ", "))
		}
	case vidmatte.FormatPNGSequence:
		l.encoder, l.encFormat = "png", astiav.PixelFormatRgba
	}
	return l, nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// visible is the part of the scaled foreground that lies on the canvas:
// its top-left corner within the foreground and its size.
func (l *layout) visible() (fx, fy, w, h int) {
	fx, fy = max(0, -l.x), max(0, -l.y)
	x1, y1 := min(l.fgW, l.canvasW-l.x), min(l.fgH, l.canvasH-l.y)
	return fx, fy, x1 - fx, y1 - fy
}

// needsGraph reports whether frames go through a filter graph, or straight
// from the decoder's planes (plus the alpha plane) to the encoder.
func (l *layout) needsGraph() bool {
	switch l.format {
	case vidmatte.FormatWebM, vidmatte.FormatWebP:
		return l.opaque || l.composed
	case vidmatte.FormatMask:
		return l.composed
	}
	return true
}

// needsBackgroundInput reports whether the graph takes a constant
// background picture on its second input.
func (l *layout) needsBackgroundInput() bool {
	return l.opaque && (l.bg.Type == vidmatte.BackgroundColor || l.bg.Type == vidmatte.BackgroundImage)
}

// blurSigma is the blur background's strength in canvas pixels.
func (l *layout) blurSigma(s EncoderSettings) float64 {
	if s.BlurSigma > 0 {
		return s.BlurSigma
	}
	return 0.02 * float64(max(l.canvasW, l.canvasH))
}

// graphDesc is the filter graph from [in] (yuva420p frames of the input
// size) and [bg] (a constant background, when needsBackgroundInput) to
// [out] (what the encoder takes). bt709 and fullRange describe the YUV.
func (l *layout) graphDesc(s EncoderSettings, bt709, fullRange bool) string {
	matrix, rng := "bt601", "tv"
	if bt709 {
		matrix = "bt709"
	}
	if fullRange {
		rng = "pc"
	}
	var parts []string
	fgScale := ""
	if l.fgW != l.inW || l.fgH != l.inH {
		fgScale = fmt.Sprintf("scale=w=%d:h=%d:flags=bicubic,", l.fgW, l.fgH)
	}
	// Stage 1: the composed picture, labelled comp.
	switch {
	case !l.opaque && !l.composed:
		parts = append(parts, "[in]null[comp]")
	case !l.opaque:
		// Cut the visible part out of the scaled foreground and pad it to
		// the canvas with transparency: no blending, so soft edges keep
		// their colour.
		fx, fy, w, h := l.visible()
		chain := "[in]" + fgScale
		if fx != 0 || fy != 0 || w != l.fgW || h != l.fgH {
			chain += fmt.Sprintf("crop=w=%d:h=%d:x=%d:y=%d:exact=1,", w, h, fx, fy)
		}
		chain += fmt.Sprintf("pad=w=%d:h=%d:x=%d:y=%d:color=black@0[comp]", l.canvasW, l.canvasH, max(0, l.x), max(0, l.y))
		parts = append(parts, chain)
	default:
		bgLabel := "[bg]"
		fgIn := "[in]"
		if l.bg.Type == vidmatte.BackgroundBlur {
			// The frame itself, covering the canvas, blurred at a quarter
			// of the size and brought back up.
			qw, qh := max(2, l.canvasW/4), max(2, l.canvasH/4)
			sigma := l.blurSigma(s) / 4
			parts = append(parts, "[in]split=2[fgin][bgin]")
			parts = append(parts, fmt.Sprintf("[bgin]format=yuv420p,scale=w=%d:h=%d:force_original_aspect_ratio=increase:flags=bilinear,crop=w=%d:h=%d,gblur=sigma=%s,scale=w=%d:h=%d:flags=bilinear[bgv]",
				qw, qh, qw, qh, strconv.FormatFloat(sigma, 'f', 3, 64), l.canvasW, l.canvasH))
			bgLabel, fgIn = "[bgv]", "[fgin]"
		}
		fg := fgIn
		if fgScale != "" {
			parts = append(parts, fgIn+strings.TrimSuffix(fgScale, ",")+"[fg]")
			fg = "[fg]"
		}
		parts = append(parts, fmt.Sprintf("%s%soverlay=x=%d:y=%d:format=yuv420:shortest=1[comp]", bgLabel, fg, l.x, l.y))
	}
	// Stage 2: the encoder's pixel layout.
	var final string
	switch l.format {
	case vidmatte.FormatWebM, vidmatte.FormatWebP:
		final = "format=" + l.encFormat.Name()
	case vidmatte.FormatMOV:
		final = "format=yuva444p10le"
	case vidmatte.FormatMP4:
		if l.outW != l.canvasW || l.outH != l.canvasH {
			final = fmt.Sprintf("crop=w=%d:h=%d:x=0:y=0,", l.outW, l.outH)
		}
		final += "format=yuv420p"
	case vidmatte.FormatMask:
		final = "format=yuva420p"
	case vidmatte.FormatPNGSequence:
		final = fmt.Sprintf("scale=in_color_matrix=%s:in_range=%s:flags=bicubic+accurate_rnd+full_chroma_int,format=rgba", matrix, rng)
	case vidmatte.FormatGIF:
		reserve := 1
		if l.opaque {
			reserve = 0
		}
		final = fmt.Sprintf("scale=in_color_matrix=%s:in_range=%s:flags=bicubic+accurate_rnd+full_chroma_int,format=bgra,split=2[pa][pb];"+
			"[pa]palettegen=max_colors=%d:stats_mode=single:reserve_transparent=%d[pal];"+
			"[pb][pal]paletteuse=new=1:dither=%s:alpha_threshold=128",
			matrix, rng, min(256, max(4, s.GIFMaxColors)), reserve, s.GIFDither)
	}
	parts = append(parts, "[comp]"+final+"[out]")
	return strings.Join(parts, ";")
}

// codecFormat is the format the video encoder is opened for: encFormat,
// less the alpha where an encoder of its own takes it.
func (l *layout) codecFormat() astiav.PixelFormat {
	if l.alphaStream {
		return astiav.PixelFormatYuv420P
	}
	return l.encFormat
}

// encoderOptions are the private options of the format's encoder.
func (l *layout) encoderOptions(s EncoderSettings) map[string]string {
	switch l.format {
	case vidmatte.FormatWebM:
		o := map[string]string{
			"deadline": s.VP9Deadline,
			"cpu-used": strconv.Itoa(s.VP9CPUUsed),
			"crf":      strconv.Itoa(s.VP9CRF),
			"row-mt":   "1",
		}
		if s.VP9Deadline == "realtime" {
			// At the realtime deadline libvpx decides each frame without
			// looking ahead, yet by default it still queues 25 frames (of
			// the picture and of the alpha) in a lookahead it allocates
			// and fills: the packets are the same without it, given at
			// once, and a 1080p job keeps 220 MiB less.
			o["lag-in-frames"] = "0"
		}
		return o
	case vidmatte.FormatMOV:
		profile := "4444"
		if s.ProResProfile == 5 {
			profile = "4444xq"
		}
		return map[string]string{"profile": profile, "vendor": "apl0"}
	case vidmatte.FormatMP4, vidmatte.FormatMask:
		return map[string]string{"preset": s.X264Preset, "crf": strconv.Itoa(s.X264CRF)}
	case vidmatte.FormatWebP:
		lossless := "0"
		if s.WebPLossless {
			lossless = "1"
		}
		return map[string]string{"quality": strconv.Itoa(s.WebPQuality), "lossless": lossless}
	}
	return nil
}

package benchmarks

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
)

// The contact sheet: per clip, the middle frame's input, truth and each
// default contender's alpha in one row, and the cut-outs (the input with
// that alpha) over a checkerboard in the row below, each tile labelled.

const (
	sheetPad   = 8
	sheetLabel = 18 // height of a tile's label band
	sheetTitle = 26 // height of a clip's title band
)

var (
	sheetBG    = color.RGBA{250, 250, 250, 255}
	sheetInk   = color.RGBA{20, 20, 20, 255}
	sheetFaint = color.RGBA{110, 110, 110, 255}
)

// tileSize is the thumbnail size for a w×h clip: at most 240 px wide.
func tileSize(w, h int) (int, int) {
	if w <= 240 {
		return w, h
	}
	return 240, max(h*240/w, 1)
}

type sheetTile struct {
	label string
	top   *image.RGBA // the upper row's picture
	cut   *image.RGBA // the lower row's, nil to leave it empty
}

// writeContactSheet draws the sheet as a PNG.
func writeContactSheet(path string, r *Results, inputs, truths map[string][]byte) error {
	type block struct {
		title string
		tw    int
		th    int
		tiles []sheetTile
	}
	var blocks []block
	labels := contenderLabels(r)
	for _, c := range r.Clips {
		rgb, ok := inputs[c.ID]
		if !ok {
			continue
		}
		tw, th := tileSize(c.Width, c.Height)
		bl := block{title: c.ID + "  (truth: " + c.TruthSource + ")", tw: tw, th: th}
		bl.tiles = append(bl.tiles, sheetTile{label: "input", top: thumbRGB(rgb, c.Width, c.Height, tw, th)})
		if t, ok := truths[c.ID]; ok {
			bl.tiles = append(bl.tiles, sheetTile{label: "truth", top: thumbGray(t, c.Width, c.Height, tw, th), cut: thumbCutout(rgb, t, c.Width, c.Height, tw, th)})
		}
		for _, l := range labels {
			run := r.defaultRun(l, c.ID)
			if run == nil || run.sample == nil {
				continue
			}
			bl.tiles = append(bl.tiles, sheetTile{label: l, top: thumbGray(run.sample, c.Width, c.Height, tw, th), cut: thumbCutout(rgb, run.sample, c.Width, c.Height, tw, th)})
		}
		blocks = append(blocks, bl)
	}
	// Layout: blocks stacked; each block as wide as its tiles.
	W, H := 0, sheetPad
	for _, bl := range blocks {
		W = max(W, sheetPad+len(bl.tiles)*(bl.tw+sheetPad))
		H += sheetTitle + 2*(sheetLabel+bl.th) + sheetPad*2
	}
	W = max(W, 320)
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fill(img, img.Rect, sheetBG)
	y := sheetPad
	for _, bl := range blocks {
		drawText(img, sheetPad, y+6, bl.title, sheetInk, 2)
		y += sheetTitle
		for row := range 2 {
			for i, t := range bl.tiles {
				x := sheetPad + i*(bl.tw+sheetPad)
				pic := t.top
				label := t.label
				if row == 1 {
					pic = t.cut
					if pic == nil {
						continue
					}
					label = t.label + " cut-out"
				}
				lbl := label
				for textWidth(lbl, 1) > bl.tw && len(lbl) > 4 {
					lbl = lbl[:len(lbl)-1]
				}
				drawText(img, x, y+5, lbl, sheetFaint, 1)
				blit(img, pic, x, y+sheetLabel)
			}
			y += sheetLabel + bl.th
		}
		y += sheetPad * 2
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func blit(dst, src *image.RGBA, x, y int) {
	b := src.Bounds()
	for yy := range b.Dy() {
		copy(dst.Pix[(y+yy)*dst.Stride+4*x:], src.Pix[yy*src.Stride:yy*src.Stride+4*b.Dx()])
	}
}

// thumbRGB scales an interleaved RGB frame to tw×th.
func thumbRGB(rgb []byte, w, h, tw, th int) *image.RGBA {
	s := floatToBytes(resizeArea(bytesToFloat(rgb), w, h, 3, tw, th))
	img := image.NewRGBA(image.Rect(0, 0, tw, th))
	for i := range tw * th {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = s[3*i], s[3*i+1], s[3*i+2], 255
	}
	return img
}

// thumbGray scales a matte to tw×th, drawn in grey.
func thumbGray(a []byte, w, h, tw, th int) *image.RGBA {
	s := floatToBytes(resizeArea(bytesToFloat(a), w, h, 1, tw, th))
	img := image.NewRGBA(image.Rect(0, 0, tw, th))
	for i, v := range s {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = v, v, v, 255
	}
	return img
}

// thumbCutout composites the frame with the matte over a checkerboard,
// then scales it.
func thumbCutout(rgb, a []byte, w, h, tw, th int) *image.RGBA {
	out := make([]float32, 3*w*h)
	for y := range h {
		for x := range w {
			i := y*w + x
			bg := float32(204)
			if (x/8+y/8)%2 == 1 {
				bg = 153
			}
			al := float32(a[i]) / 255
			for c := range 3 {
				out[3*i+c] = al*float32(rgb[3*i+c]) + (1-al)*bg
			}
		}
	}
	s := floatToBytes(resizeArea(out, w, h, 3, tw, th))
	img := image.NewRGBA(image.Rect(0, 0, tw, th))
	for i := range tw * th {
		img.Pix[4*i], img.Pix[4*i+1], img.Pix[4*i+2], img.Pix[4*i+3] = s[3*i], s[3*i+1], s[3*i+2], 255
	}
	return img
}

// resizeArea downsamples by averaging each destination pixel's footprint
// (or copies when the size is the same).
func resizeArea(src []float32, w, h, c, dw, dh int) []float32 {
	if dw == w && dh == h {
		return append([]float32(nil), src...)
	}
	if dw > w || dh > h {
		return resizeBilinear(src, w, h, c, dw, dh)
	}
	dst := make([]float32, dw*dh*c)
	for y := range dh {
		y0, y1 := y*h/dh, max((y+1)*h/dh, y*h/dh+1)
		for x := range dw {
			x0, x1 := x*w/dw, max((x+1)*w/dw, x*w/dw+1)
			n := float32((y1 - y0) * (x1 - x0))
			for k := range c {
				var s float32
				for yy := y0; yy < y1; yy++ {
					for xx := x0; xx < x1; xx++ {
						s += src[(yy*w+xx)*c+k]
					}
				}
				dst[(y*dw+x)*c+k] = s / n
			}
		}
	}
	return dst
}

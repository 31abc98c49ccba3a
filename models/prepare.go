package models

import "fmt"

// PrepareRGB fills a slot from a frame prepared at InputSize as planar R, G,
// B bytes (3·w·h, what codec.RGBScaler writes), normalized the way the
// model's authors do ((v − mean) / std per channel, through a lookup
// table). It is the hot path of "rgb" models: no allocation. It panics when
// the model is not an "rgb" model or the buffers are too short.
func (m *Model) PrepareRGB(slot []float32, rgb []byte) {
	hw := m.w * m.h
	if m.man.Input.Color != ColorRGB {
		panic(fmt.Sprintf("models: PrepareRGB on %s, a %s model", m.man.ID, m.man.Input.Color))
	}
	if len(slot) < 3*hw || len(rgb) < 3*hw {
		panic(fmt.Sprintf("models: PrepareRGB needs 3×%d×%d values (slot %d, rgb %d)", m.w, m.h, len(slot), len(rgb)))
	}
	for c := range 3 {
		lut := &m.lut[c]
		src := rgb[c*hw : (c+1)*hw]
		dst := slot[c*hw : (c+1)*hw]
		dst = dst[:len(src)]
		for i, v := range src {
			dst[i] = lut[v]
		}
	}
}

// PrepareYUV fills a slot from the Y, U and V planes of a yuv420p frame at
// full resolution (InputSize), each with its stride: Y through a lookup
// table, U and V upsampled 2× with bilinear weights (9/16, 3/16, 3/16, 1/16,
// chroma sited at the centre of each 2×2 block) and normalized. It is the
// hot path of "yuv" models: no allocation. It panics when the model is not
// a "yuv" model or the planes are too short.
func (m *Model) PrepareYUV(slot []float32, y []byte, yStride int, u []byte, uStride int, v []byte, vStride int) {
	w, h := m.w, m.h
	hw := w * h
	cw, ch := (w+1)/2, (h+1)/2
	if m.man.Input.Color != ColorYUV {
		panic(fmt.Sprintf("models: PrepareYUV on %s, a %s model", m.man.ID, m.man.Input.Color))
	}
	if len(slot) < 3*hw || yStride < w || uStride < cw || vStride < cw ||
		len(y) < (h-1)*yStride+w || len(u) < (ch-1)*uStride+cw || len(v) < (ch-1)*vStride+cw {
		panic(fmt.Sprintf("models: PrepareYUV: planes too small for %dx%d", w, h))
	}
	lut := &m.lut[0]
	for row := range h {
		src := y[row*yStride : row*yStride+w]
		dst := slot[row*w : row*w+w]
		dst = dst[:len(src)]
		for i, b := range src {
			dst[i] = lut[b]
		}
	}
	upsampleChromaRows(slot[hw:2*hw], w, h, u, uStride, m.scale[1], m.offset[1])
	upsampleChromaRows(slot[2*hw:3*hw], w, h, v, vStride, m.scale[2], m.offset[2])
}

// maxRowChroma bounds the chroma width upsampleChromaRows blends on the
// stack (8192-pixel-wide frames); wider ones take upsampleChroma.
const maxRowChroma = 4096

// upsampleChromaRows is upsampleChroma computed a chroma row at a time:
// the vertical blends of the two output rows a chroma row feeds go to two
// stack buffers, then each is blended horizontally. About 15% faster.
func upsampleChromaRows(dst []float32, w, h int, src []byte, stride int, scale, offset float32) {
	cw, ch := (w+1)/2, (h+1)/2
	if cw > maxRowChroma {
		upsampleChroma(dst, w, h, src, stride, scale, offset)
		return
	}
	var above, below [maxRowChroma]float32
	sn, sf := 0.75*scale, 0.25*scale
	for cy := range ch {
		r0 := src[cy*stride : cy*stride+cw]
		up, down := max(cy-1, 0), min(cy+1, ch-1)
		ru := src[up*stride : up*stride+cw]
		rd := src[down*stride : down*stride+cw]
		ru = ru[:len(r0)]
		rd = rd[:len(r0)]
		va := above[:len(r0)]
		vb := below[:len(r0)]
		for i, c := range r0 {
			fc := float32(c) * sn
			va[i] = fc + float32(ru[i])*sf
			vb[i] = fc + float32(rd[i])*sf
		}
		y0 := 2 * cy
		blendRow(dst[y0*w:y0*w+w], va, offset)
		if y0+1 < h {
			blendRow(dst[(y0+1)*w:(y0+1)*w+w], vb, offset)
		}
	}
}

// blendRow writes the 2× horizontal bilinear upsampling of v into out
// (len(out) is 2·len(v) or one less), plus offset.
func blendRow(out []float32, v []float32, offset float32) {
	n := len(v)
	if n == 1 {
		for i := range out {
			out[i] = v[0] + offset
		}
		return
	}
	out[0] = v[0] + offset
	out[1] = 0.75*v[0] + 0.25*v[1] + offset
	for i := 1; i < n-1; i++ {
		c := 0.75*v[i] + offset
		o := out[2*i : 2*i+2 : 2*i+2]
		o[0] = c + 0.25*v[i-1]
		o[1] = c + 0.25*v[i+1]
	}
	last := n - 1
	out[2*last] = 0.75*v[last] + 0.25*v[last-1] + offset
	if 2*last+1 < len(out) {
		out[2*last+1] = v[last] + offset
	}
}

// upsampleChroma writes the w×h bilinear 2× upsampling of a chroma plane
// (⌈w/2⌉×⌈h/2⌉ with the given stride) into dst, as value·scale + offset,
// a pixel at a time.
func upsampleChroma(dst []float32, w, h int, src []byte, stride int, scale, offset float32) {
	cw, ch := (w+1)/2, (h+1)/2
	// Weights of the nearer and farther sample in each direction, with
	// the normalization's scale folded into the nearer row's pair.
	const near, far = 0.75, 0.25
	for row := range h {
		cy := row >> 1
		ny := cy + 1
		if row&1 == 0 {
			ny = cy - 1
		}
		ny = min(max(ny, 0), ch-1)
		r0 := src[cy*stride : cy*stride+cw]
		r1 := src[ny*stride : ny*stride+cw]
		r1 = r1[:len(r0)]
		out := dst[row*w : row*w+w]
		// vert(x) is the vertical blend at chroma column x, scaled.
		sn, sf := near*scale, far*scale
		prev := float32(r0[0])*sn + float32(r1[0])*sf
		cur := prev
		last := cw - 1
		for cx := 0; cx < cw; cx++ {
			next := cur
			if cx < last {
				next = float32(r0[cx+1])*sn + float32(r1[cx+1])*sf
			}
			x := 2 * cx
			out[x] = near*cur + far*prev + offset
			if x+1 < w {
				out[x+1] = near*cur + far*next + offset
			}
			prev, cur = cur, next
		}
	}
}

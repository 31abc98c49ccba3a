package models

import "fmt"

// PrepareRGB fills a slot from a frame prepared at InputSize as planar R, G,
// B bytes (3·w·h, what codec.RGBScaler writes), in the model's layout
// (interleaved for NHWC models), normalized the way the
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
	if m.nhwc {
		r, g, b := rgb[:hw], rgb[hw:2*hw], rgb[2*hw:3*hw]
		l0, l1, l2 := &m.lut[0], &m.lut[1], &m.lut[2]
		dst := slot[:3*hw]
		for i := range r {
			d := dst[3*i : 3*i+3 : 3*i+3]
			d[0], d[1], d[2] = l0[r[i]], l1[g[i]], l2[b[i]]
		}
		return
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

// PrepareUV fills a slot from the U and V planes of a yuv420p frame, at
// their own size (InputSize of a "uv" model), each with its stride,
// normalized through a lookup table. It is the hot path of "uv" models: no
// allocation. It panics when the model is not a "uv" model or the planes
// are too short.
func (m *Model) PrepareUV(slot []float32, u []byte, uStride int, v []byte, vStride int) {
	w, h := m.w, m.h
	hw := w * h
	if m.man.Input.Color != ColorUV {
		panic(fmt.Sprintf("models: PrepareUV on %s, a %s model", m.man.ID, m.man.Input.Color))
	}
	if len(slot) < 2*hw || uStride < w || vStride < w || len(u) < (h-1)*uStride+w || len(v) < (h-1)*vStride+w {
		panic(fmt.Sprintf("models: PrepareUV: planes too small for %dx%d", w, h))
	}
	for c, p := range [2][]byte{u, v} {
		stride := [2]int{uStride, vStride}[c]
		lut := &m.lut[c]
		dst := slot[c*hw : (c+1)*hw]
		for row := range h {
			src := p[row*stride : row*stride+w]
			d := dst[row*w : row*w+w]
			d = d[:len(src)]
			for i, b := range src {
				d[i] = lut[b]
			}
		}
	}
}

// PrepareUVBytes fills a byte slot (Batch.SlotBytes, a model loaded with
// ByteInput) from the U and V planes of a yuv420p frame, at their own size,
// each with its stride: a copy of their rows, the normalization being the
// graph's. It panics when the model is not a "uv" model with ByteInput or
// the planes are too short.
func (m *Model) PrepareUVBytes(slot []byte, u []byte, uStride int, v []byte, vStride int) {
	w, h := m.w, m.h
	hw := w * h
	if m.man.Input.Color != ColorUV || !m.byteIn {
		panic(fmt.Sprintf("models: PrepareUVBytes on %s, a %s model (byte input %v)", m.man.ID, m.man.Input.Color, m.byteIn))
	}
	if len(slot) < 2*hw || uStride < w || vStride < w || len(u) < (h-1)*uStride+w || len(v) < (h-1)*vStride+w {
		panic(fmt.Sprintf("models: PrepareUVBytes: planes too small for %dx%d", w, h))
	}
	for c, p := range [2][]byte{u, v} {
		stride := [2]int{uStride, vStride}[c]
		dst := slot[c*hw : (c+1)*hw]
		if stride == w {
			copy(dst, p[:hw])
			continue
		}
		for row := range h {
			copy(dst[row*w:row*w+w], p[row*stride:row*stride+w])
		}
	}
}

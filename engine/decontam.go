package engine

import "vidmatte/codec"

// decontaminate gives the edges of a matte the colour of the model's
// foreground estimate (RVM's fgr): where a pixel is a mix of foreground
// and background (0 < alpha < 1), the observed colour still carries the
// old background's; fgr is the foreground's own. The frame's chroma is
// moved toward fgr's by w = 4·a·(1−a) (a: the mean alpha of the chroma
// sample's 2×2 pixels): fully at half cover, fading to nothing where the
// matte is opaque or transparent, so the inside of a person and the
// background keep their chroma exactly. Luma is left alone: the picture's
// detail stays the frame's own.
//
// fg holds w×h R, G, B values in 0..1 (the frame's size), as three
// planes or, when interleaved, pixel by pixel; alpha is the frame's size,
// rows of stride as. The frame must be writable.
func decontaminate(f *codec.Frame, fg []float32, interleaved bool, alpha []byte, as int) {
	u, us := f.Plane(1)
	v, vs := f.Plane(2)
	decontaminatePlanes(u, us, v, vs, fg, interleaved, alpha, as, f.Width(), f.Height(), f.BT709(), f.FullRange())
}

// decontaminatePlanes is decontaminate on the chroma planes of a yuv420p
// picture of w×h.
func decontaminatePlanes(u []byte, us int, v []byte, vs int, fg []float32, interleaved bool, alpha []byte, as, w, h int, bt709, full bool) {
	kr, kb := float32(0.299), float32(0.114)
	if bt709 {
		kr, kb = 0.2126, 0.0722
	}
	kg := 1 - kr - kb
	scale, mid := float32(224), float32(128)
	if full {
		scale = 255
	}
	n := w * h
	fg = fg[:3*n]
	// rgb returns pixel i's foreground colour.
	step, plane := 1, n
	if interleaved {
		step, plane = 3, 1
	}
	rgb := func(i int) (float32, float32, float32) {
		j := i * step
		return fg[j], fg[j+plane], fg[j+2*plane]
	}
	cw, ch := (w+1)/2, (h+1)/2
	for cy := range ch {
		y0, y1 := 2*cy, min(2*cy+1, h-1)
		for cx := range cw {
			x0, x1 := 2*cx, min(2*cx+1, w-1)
			i00, i01, i10, i11 := y0*w+x0, y0*w+x1, y1*w+x0, y1*w+x1
			sa := int(alpha[y0*as+x0]) + int(alpha[y0*as+x1]) + int(alpha[y1*as+x0]) + int(alpha[y1*as+x1])
			if sa == 0 || sa == 4*255 {
				continue
			}
			a := float32(sa) / (4 * 255)
			wt := 4 * a * (1 - a)
			var r, g, b float32
			for _, i := range [4]int{i00, i01, i10, i11} {
				ri, gi, bi := rgb(i)
				r, g, b = r+ri, g+gi, b+bi
			}
			r, g, b = r/4, g/4, b/4
			y := kr*r + kg*g + kb*b
			fu := mid + scale*(b-y)/(2*(1-kb))
			fv := mid + scale*(r-y)/(2*(1-kr))
			pu, pv := &u[cy*us+cx], &v[cy*vs+cx]
			*pu = toByte(float32(*pu) + wt*(fu-float32(*pu)))
			*pv = toByte(float32(*pv) + wt*(fv-float32(*pv)))
		}
	}
}

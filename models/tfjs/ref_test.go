package tfjs

import (
	"math"
	"math/rand/v2"
)

// Reference implementations, in float64 on NHWC tensors, of what the
// TensorFlow ops compute (TensorFlow's and tfjs's definitions: SAME padding
// puts the extra row/column at the end, average pooling ignores padding,
// half-pixel resizing clamps at the borders).

func randTensor(seed uint64, shape ...int64) tensor {
	r := rand.New(rand.NewPCG(seed, 7))
	t := tensor{shape: shape}
	t.f = make([]float32, t.size())
	for i := range t.f {
		t.f[i] = float32(r.Float64()*2 - 1)
	}
	return t
}

func randFloats(seed uint64, n int) []float32 { return randTensor(seed, int64(n)).f }

// samePad returns TensorFlow's SAME output size and leading pad.
func samePad(in, k, s, d int) (out, before int) {
	out = (in + s - 1) / s
	total := max((out-1)*s+(k-1)*d+1-in, 0)
	return out, total / 2
}

// refConv is Conv2D (w [kh, kw, ci, co]) or, when depthwise, a depthwise
// convolution (w [kh, kw, c, m], output channel c·m + j).
func refConv(x tensor, w []float32, wshape []int64, depthwise bool, stride, dil int, same bool, bias []float32) tensor {
	n, h, wd, ci := int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
	kh, kw, c2, c3 := int(wshape[0]), int(wshape[1]), int(wshape[2]), int(wshape[3])
	co := c3
	if depthwise {
		co = c2 * c3
	}
	var oh, ow, ph, pw int
	if same {
		oh, ph = samePad(h, kh, stride, dil)
		ow, pw = samePad(wd, kw, stride, dil)
	} else {
		oh = (h-(kh-1)*dil-1)/stride + 1
		ow = (wd-(kw-1)*dil-1)/stride + 1
	}
	out := tensor{shape: []int64{int64(n), int64(oh), int64(ow), int64(co)}}
	out.f = make([]float32, out.size())
	for b := range n {
		for oy := range oh {
			for ox := range ow {
				for o := range co {
					var s float64
					for ky := range kh {
						for kx := range kw {
							iy, ix := oy*stride+ky*dil-ph, ox*stride+kx*dil-pw
							if iy < 0 || iy >= h || ix < 0 || ix >= wd {
								continue
							}
							px := x.f[((b*h+iy)*wd+ix)*ci:]
							if depthwise {
								c, j := o/c3, o%c3
								s += float64(px[c]) * float64(w[((ky*kw+kx)*c2+c)*c3+j])
							} else {
								for i := range ci {
									s += float64(px[i]) * float64(w[((ky*kw+kx)*c2+i)*c3+o])
								}
							}
						}
					}
					if bias != nil {
						s += float64(bias[o])
					}
					out.f[((b*oh+oy)*ow+ox)*co+o] = float32(s)
				}
			}
		}
	}
	return out
}

// refConvTranspose is Conv2DBackpropInput with SAME padding and output
// size in·stride; w is [kh, kw, out, in].
func refConvTranspose(x tensor, w []float32, wshape []int64, stride int) tensor {
	n, h, wd, ci := int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
	kh, kw, co := int(wshape[0]), int(wshape[1]), int(wshape[2])
	oh, ow := h*stride, wd*stride
	_, ph := samePad(oh, kh, stride, 1)
	_, pw := samePad(ow, kw, stride, 1)
	acc := make([]float64, n*oh*ow*co)
	for b := range n {
		for iy := range h {
			for ix := range wd {
				for ky := range kh {
					for kx := range kw {
						oy, ox := iy*stride+ky-ph, ix*stride+kx-pw
						if oy < 0 || oy >= oh || ox < 0 || ox >= ow {
							continue
						}
						for o := range co {
							for i := range ci {
								acc[((b*oh+oy)*ow+ox)*co+o] += float64(x.f[((b*h+iy)*wd+ix)*ci+i]) * float64(w[((ky*kw+kx)*co+o)*ci+i])
							}
						}
					}
				}
			}
		}
	}
	out := tensor{shape: []int64{int64(n), int64(oh), int64(ow), int64(co)}, f: make([]float32, len(acc))}
	for i, v := range acc {
		out.f[i] = float32(v)
	}
	return out
}

// refAvgPool averages k×k windows (stride s) over the pixels inside the
// image.
func refAvgPool(x tensor, k, s int, same bool) tensor {
	n, h, wd, c := int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
	var oh, ow, ph, pw int
	if same {
		oh, ph = samePad(h, k, s, 1)
		ow, pw = samePad(wd, k, s, 1)
	} else {
		oh, ow = (h-k)/s+1, (wd-k)/s+1
	}
	out := tensor{shape: []int64{int64(n), int64(oh), int64(ow), int64(c)}}
	out.f = make([]float32, out.size())
	for b := range n {
		for oy := range oh {
			for ox := range ow {
				for ch := range c {
					var sum float64
					cnt := 0
					for ky := range k {
						for kx := range k {
							iy, ix := oy*s+ky-ph, ox*s+kx-pw
							if iy < 0 || iy >= h || ix < 0 || ix >= wd {
								continue
							}
							sum += float64(x.f[((b*h+iy)*wd+ix)*c+ch])
							cnt++
						}
					}
					out.f[((b*oh+oy)*ow+ox)*c+ch] = float32(sum / float64(cnt))
				}
			}
		}
	}
	return out
}

// refResize is tfjs's resizeBilinear.
func refResize(x tensor, oh, ow int, alignCorners, halfPixel bool) tensor {
	n, h, wd, c := int(x.shape[0]), int(x.shape[1]), int(x.shape[2]), int(x.shape[3])
	src := func(o, in, out int) (lo, hi int, frac float64) {
		var f float64
		switch {
		case alignCorners && out > 1:
			f = float64(o) * float64(in-1) / float64(out-1)
		case halfPixel:
			f = (float64(o)+0.5)*float64(in)/float64(out) - 0.5
		default:
			f = float64(o) * float64(in) / float64(out)
		}
		fl := math.Floor(f)
		lo = max(int(fl), 0)
		hi = min(int(math.Ceil(f)), in-1)
		return lo, hi, f - fl
	}
	out := tensor{shape: []int64{int64(n), int64(oh), int64(ow), int64(c)}}
	out.f = make([]float32, out.size())
	at := func(b, y, xx, ch int) float64 { return float64(x.f[((b*h+y)*wd+xx)*c+ch]) }
	for b := range n {
		for oy := range oh {
			y0, y1, fy := src(oy, h, oh)
			for ox := range ow {
				x0, x1, fx := src(ox, wd, ow)
				for ch := range c {
					top := at(b, y0, x0, ch) + (at(b, y0, x1, ch)-at(b, y0, x0, ch))*fx
					bot := at(b, y1, x0, ch) + (at(b, y1, x1, ch)-at(b, y1, x0, ch))*fx
					out.f[((b*oh+oy)*ow+ox)*c+ch] = float32(top + (bot-top)*fy)
				}
			}
		}
	}
	return out
}

// mapF applies f elementwise.
func mapF(x tensor, f func(float64) float64) tensor {
	out := tensor{shape: x.shape, f: make([]float32, len(x.f))}
	for i, v := range x.f {
		out.f[i] = float32(f(float64(v)))
	}
	return out
}

// zipF combines a and b elementwise; b may be a scalar or a vector over
// the last axis.
func zipF(a, b tensor, f func(x, y float64) float64) tensor {
	out := tensor{shape: a.shape, f: make([]float32, len(a.f))}
	for i, v := range a.f {
		out.f[i] = float32(f(float64(v), float64(b.f[i%len(b.f)])))
	}
	return out
}

// dequantUint8 is what the uint8 quantization of writeModel gives back.
func dequantUint8(v []float32) []float32 {
	lo, hi := v[0], v[0]
	for _, x := range v {
		lo, hi = min(lo, x), max(hi, x)
	}
	scale := float64(hi-lo) / 255
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(float64(lo) + scale*math.Round(float64(x-lo)/scale))
	}
	return out
}

// dequantHalf rounds v through float16.
func dequantHalf(v []float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = halfToFloat(floatToHalf(x))
	}
	return out
}

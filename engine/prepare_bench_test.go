package engine

import (
	"context"
	"os"
	"testing"
	"time"

	"vidmatte/codec"
	"vidmatte/internal/testmedia"
	"vidmatte/models"
)

// quantizeFloats is how the refine stage quantized a float alpha before
// byte I/O: w×h values in 0..1 into dst (rows of stride ds).
func quantizeFloats(dst []byte, ds int, a []float32, w, h int) {
	for y := range h {
		d, src := dst[y*ds:y*ds+w], a[y*w:(y+1)*w]
		d = d[:len(src)]
		for i, v := range src {
			d[i] = toByte(v * 255)
		}
	}
}

// writeChromaFloats is writeChroma from float planes (before byte I/O),
// for planes of the chroma planes' size.
func writeChromaFloats(f *codec.Frame, fg []float32, cw, ch int) {
	n := cw * ch
	for plane := 1; plane <= 2; plane++ {
		dst, stride := f.Plane(plane)
		src := fg[(plane-1)*n : plane*n]
		for cy := range ch {
			for cx, v := range src[cy*cw : cy*cw+cw] {
				dst[cy*stride+cx] = toByte(v * 255)
			}
		}
	}
}

// BenchmarkFramePrep measures a 1080p frame's way into and out of a model
// as the pipeline goes it, per frame, three ways, alternating on every
// iteration:
//   - "float" (the way it was): the frame scaled to planar RGB bytes and
//     normalized through lookup tables into a float slot (or the chroma
//     planes through the tables); the alpha, and the keyer's chroma,
//     quantized in Go;
//   - "byteout" (the way it is): the same input, the alpha and the
//     keyer's chroma quantized by the graph (QuantizeLinear) and read as
//     bytes;
//   - "bytein" (measured, not taken): byte outputs and a byte input too,
//     the scaler writing the slot in the model's layout (rgb24 for NHWC)
//     or the chroma rows copied, the graph normalizing (DequantizeLinear).
//
// Reported per step, in ms a frame: prep (the batch stage's work), model
// (Run) and out (the refine stage's: the alpha into a frame-size plane,
// and the keyer's chroma into the frame). The chroma keyer always; rvm and
// selfie when installed.
func BenchmarkFramePrep(b *testing.B) {
	const w, h = 1920, 1080
	path := testmedia.Clip(b, testmedia.ClipOptions{Width: w, Height: h, Duration: 200 * time.Millisecond})
	d, err := codec.OpenDecoder(path, codec.DecoderOptions{})
	if err != nil {
		b.Fatal(err)
	}
	frame, err := d.Next(context.Background())
	d.Close()
	if err != nil {
		b.Fatal(err)
	}
	defer frame.Release()
	home := models.Home()
	for _, id := range []string{"chroma", "selfie", "rvm"} {
		b.Run(id, func(b *testing.B) {
			reg, err := models.NewRegistry(models.ModelsDir(home))
			if err != nil {
				b.Fatal(err)
			}
			man, err := reg.Get(id)
			if err != nil {
				b.Fatal(err)
			}
			if !man.Generated {
				if _, err := os.Stat(reg.Path(man)); err != nil {
					b.Skipf("%s is not installed: %v", id, err)
				}
			}
			var modes []*prepMode
			for _, mode := range []struct {
				name    string
				in, out bool
			}{{"float", false, false}, {"byteout", false, true}, {"bytein", true, true}} {
				m, err := testRuntime.Load(reg, man, models.LoadOptions{FrameWidth: w, FrameHeight: h,
					ByteInput: mode.in, ByteOutputs: mode.out})
				if err != nil {
					b.Fatal(err)
				}
				defer m.Close()
				pm, err := newPrepMode(m, w, h)
				if err != nil {
					b.Fatal(err)
				}
				defer pm.close()
				pm.name = mode.name
				modes = append(modes, pm)
			}
			ctx := context.Background()
			// One untimed frame each: sessions warm, states shaped, planes
			// mapped.
			for _, pm := range modes {
				if err := pm.frame(ctx, frame); err != nil {
					b.Fatal(err)
				}
				pm.prep, pm.model, pm.out = 0, 0, 0
			}
			for b.Loop() {
				for _, pm := range modes {
					if err := pm.frame(ctx, frame); err != nil {
						b.Fatal(err)
					}
				}
			}
			for _, pm := range modes {
				for step, t := range map[string]time.Duration{"prep": pm.prep, "model": pm.model, "out": pm.out} {
					b.ReportMetric(float64(t.Microseconds())/1000/float64(b.N), pm.name+"-"+step+"-ms/frame")
				}
			}
		})
	}
}

// prepMode is one model loaded with one I/O, and the time each step took.
type prepMode struct {
	name             string
	m                *models.Model
	mb               *models.Batch
	st               *models.State
	rgb              *codec.RGBScaler
	planar           []byte
	gray             *codec.GrayScaler
	small            []byte
	pool             *codec.AlphaPool
	inW, inH         int
	prep, model, out time.Duration
}

func newPrepMode(m *models.Model, w, h int) (*prepMode, error) {
	pm := &prepMode{m: m, st: m.NewState()}
	pm.inW, pm.inH = m.InputSize()
	var err error
	if pm.mb, err = m.NewBatch(); err != nil {
		return nil, err
	}
	if m.Color() == models.ColorRGB {
		layout := codec.RGBPlanar
		if m.ByteInput() && m.Interleaved() {
			layout = codec.RGBPacked
		}
		if pm.rgb, err = codec.NewRGBScalerLayout(w, h, pm.inW, pm.inH, layout); err != nil {
			return nil, err
		}
		pm.planar = make([]byte, 3*pm.inW*pm.inH)
	}
	if pm.inW != w || pm.inH != h {
		if pm.gray, err = codec.NewGrayScaler(pm.inW, pm.inH, w, h); err != nil {
			return nil, err
		}
		pm.small = make([]byte, pm.inW*pm.inH)
	}
	pm.pool, err = codec.NewAlphaPool(w, h)
	return pm, err
}

func (pm *prepMode) close() {
	pm.mb.Close()
	pm.st.Close()
	if pm.rgb != nil {
		pm.rgb.Close()
	}
	if pm.gray != nil {
		pm.gray.Close()
	}
	pm.pool.Close()
}

// frame takes src through the three steps, on a reference of its own
// (whose chroma the keyer replaces).
func (pm *prepMode) frame(ctx context.Context, src *codec.Frame) error {
	f, err := src.Ref()
	if err != nil {
		return err
	}
	defer f.Release()
	m, mb := pm.m, pm.mb
	t := time.Now()
	switch {
	case pm.rgb != nil && m.ByteInput():
		err = pm.rgb.Scale(f, mb.SlotBytes(0))
	case pm.rgb != nil:
		if err = pm.rgb.Scale(f, pm.planar); err == nil {
			m.PrepareRGB(mb.Slot(0), pm.planar)
		}
	default:
		u, us := f.Plane(1)
		v, vs := f.Plane(2)
		if m.ByteInput() {
			m.PrepareUVBytes(mb.SlotBytes(0), u, us, v, vs)
		} else {
			m.PrepareUV(mb.Slot(0), u, us, v, vs)
		}
	}
	if err != nil {
		return err
	}
	t1 := time.Now()
	if err := m.Run(ctx, mb, 1, pm.st); err != nil {
		return err
	}
	t2 := time.Now()
	a, err := pm.pool.Get()
	if err != nil {
		return err
	}
	defer a.Release()
	alpha, as := a.Plane()
	var small []byte
	if m.ByteOutputs() {
		small = mb.AlphaBytes(0)
	} else {
		small = pm.small
		if pm.gray == nil {
			small = nil
			quantizeFloats(alpha, as, mb.Alpha(0), pm.inW, pm.inH)
		} else {
			quantizeFloats(small, pm.inW, mb.Alpha(0), pm.inW, pm.inH)
		}
	}
	switch {
	case pm.gray != nil:
		err = pm.gray.ScaleInto(small, alpha, as)
	case small != nil:
		copyRows(alpha, as, small, pm.inW, pm.inH)
	}
	if err != nil {
		return err
	}
	if m.ForegroundKind() == models.MeaningForegroundUV {
		if err := f.OwnChroma(); err != nil {
			return err
		}
		if m.ByteOutputs() {
			writeChroma(f, mb.ForegroundBytes(0), pm.inW, pm.inH)
		} else {
			writeChromaFloats(f, mb.Foreground(0), pm.inW, pm.inH)
		}
	}
	t3 := time.Now()
	pm.prep += t1.Sub(t)
	pm.model += t2.Sub(t1)
	pm.out += t3.Sub(t2)
	return nil
}

package benchmarks

import (
	"archive/zip"
	"bytes"
	"fmt"
	"image"
	"image/color"
	_ "image/jpeg" // photos of the media folder

	"image/png"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// resizeBilinear resamples c interleaved channels of float32 (w×h) to
// dw×dh with bilinear weights, pixel centres aligned (as OpenCV's
// INTER_LINEAR and PIL's BILINEAR without antialiasing do): what a script
// resizing for a model writes.
func resizeBilinear(src []float32, w, h, c, dw, dh int) []float32 {
	dst := make([]float32, dw*dh*c)
	sx, sy := float64(w)/float64(dw), float64(h)/float64(dh)
	x0s, x1s, fxs := bilinearTaps(dw, w, sx)
	for y := range dh {
		fy := (float64(y)+0.5)*sy - 0.5
		y0 := int(fy)
		if fy < 0 {
			y0, fy = 0, 0
		}
		ty := float32(fy - float64(y0))
		y1 := min(y0+1, h-1)
		y0 = min(y0, h-1)
		r0, r1 := src[y0*w*c:(y0+1)*w*c], src[y1*w*c:(y1+1)*w*c]
		out := dst[y*dw*c : (y+1)*dw*c]
		for x := range dw {
			a, b, tx := x0s[x]*c, x1s[x]*c, fxs[x]
			for k := range c {
				top := r0[a+k] + (r0[b+k]-r0[a+k])*tx
				bot := r1[a+k] + (r1[b+k]-r1[a+k])*tx
				out[x*c+k] = top + (bot-top)*ty
			}
		}
	}
	return dst
}

func bilinearTaps(dn, n int, scale float64) (i0, i1 []int, f []float32) {
	i0, i1, f = make([]int, dn), make([]int, dn), make([]float32, dn)
	for x := range dn {
		fx := (float64(x)+0.5)*scale - 0.5
		if fx < 0 {
			fx = 0
		}
		a := int(fx)
		f[x] = float32(fx - float64(a))
		i0[x], i1[x] = min(a, n-1), min(a+1, n-1)
	}
	return
}

// bytesToFloat converts bytes to float32 0..255.
func bytesToFloat(b []byte) []float32 {
	out := make([]float32, len(b))
	for i, v := range b {
		out[i] = float32(v)
	}
	return out
}

// floatToBytes rounds and clamps float32 0..255 to bytes.
func floatToBytes(f []float32) []byte {
	out := make([]byte, len(f))
	for i, v := range f {
		switch {
		case v <= 0:
		case v >= 255:
			out[i] = 255
		default:
			out[i] = byte(v + 0.5)
		}
	}
	return out
}

// toPlanar turns interleaved RGB into planar R, G, B.
func toPlanar(rgb []byte, n int) []byte {
	out := make([]byte, 3*n)
	for i := range n {
		out[i], out[n+i], out[2*n+i] = rgb[3*i], rgb[3*i+1], rgb[3*i+2]
	}
	return out
}

// rgbToYUV420 converts interleaved RGB (w×h, even sides) to limited-range
// BT.601 Y, U and V planes, chroma averaged over 2×2 blocks.
func rgbToYUV420(rgb []byte, w, h int) (y, u, v []byte) {
	y = make([]byte, w*h)
	cw, ch := (w+1)/2, (h+1)/2
	u, v = make([]byte, cw*ch), make([]byte, cw*ch)
	us, vs := make([]float64, cw*ch), make([]float64, cw*ch)
	ns := make([]float64, cw*ch)
	for py := range h {
		for px := range w {
			i := py*w + px
			r, g, b := float64(rgb[3*i]), float64(rgb[3*i+1]), float64(rgb[3*i+2])
			y[i] = clampRound(16 + (65.481*r+128.553*g+24.966*b)/255)
			c := (py/2)*cw + px/2
			us[c] += 128 + (-37.797*r-74.203*g+112*b)/255
			vs[c] += 128 + (112*r-93.786*g-18.214*b)/255
			ns[c]++
		}
	}
	for c := range us {
		u[c] = clampRound(us[c] / ns[c])
		v[c] = clampRound(vs[c] / ns[c])
	}
	return y, u, v
}

func clampRound(v float64) byte {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return byte(v + 0.5)
}

// decodeImageRGB reads an image file (PNG, JPEG) as interleaved RGB.
func decodeImageRGB(path string) (rgb []byte, w, h int, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	rgb, w, h = imageRGB(img)
	return rgb, w, h, nil
}

// imageRGB returns an image's pixels as interleaved RGB (alpha dropped).
func imageRGB(img image.Image) ([]byte, int, int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]byte, 3*w*h)
	if n, ok := img.(*image.NRGBA); ok {
		for y := range h {
			row := n.Pix[y*n.Stride : y*n.Stride+4*w]
			for x := range w {
				copy(out[3*(y*w+x):], row[4*x:4*x+3])
			}
		}
		return out, w, h
	}
	for y := range h {
		for x := range w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			i := 3 * (y*w + x)
			out[i], out[i+1], out[i+2] = c.R, c.G, c.B
		}
	}
	return out, w, h
}

// imageAlpha returns an image's alpha as 8-bit (straight, not
// premultiplied).
func imageAlpha(img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	out := make([]byte, w*h)
	switch m := img.(type) {
	case *image.NRGBA:
		for y := range h {
			for x := range w {
				out[y*w+x] = m.Pix[y*m.Stride+4*x+3]
			}
		}
		return out
	case *image.Gray:
		for y := range h {
			copy(out[y*w:(y+1)*w], m.Pix[y*m.Stride:])
		}
		return out
	}
	for y := range h {
		for x := range w {
			_, _, _, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			out[y*w+x] = byte(a >> 8)
		}
	}
	return out
}

// writeGrayPNG writes an 8-bit grayscale PNG.
func writeGrayPNG(path string, pix []byte, w, h int) error {
	img := &image.Gray{Pix: pix, Stride: w, Rect: image.Rect(0, 0, w, h)}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// readGrayPNG reads an 8-bit grayscale PNG written by writeGrayPNG.
func readGrayPNG(path string) ([]byte, int, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, 0, err
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	b := img.Bounds()
	g, ok := img.(*image.Gray)
	if !ok {
		return nil, 0, 0, fmt.Errorf("%s: not an 8-bit grayscale PNG", path)
	}
	out := make([]byte, b.Dx()*b.Dy())
	for y := range b.Dy() {
		copy(out[y*b.Dx():(y+1)*b.Dx()], g.Pix[y*g.Stride:])
	}
	return out, b.Dx(), b.Dy(), nil
}

// naturalLess orders names by their digit runs' numeric values, so that
// frame_10.png comes after frame_9.png.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := unicode.IsDigit(rune(a[0])), unicode.IsDigit(rune(b[0]))
		if da && db {
			ia, ib := digitRun(a), digitRun(b)
			na, _ := strconv.ParseUint(a[:ia], 10, 64)
			nb, _ := strconv.ParseUint(b[:ib], 10, 64)
			if na != nb {
				return na < nb
			}
			a, b = a[ia:], b[ib:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitRun(s string) int {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return i
}

// readZipAlphas reads the alpha channel of every PNG in a zip, in the
// natural order of their names.
func readZipAlphas(path string, w, h int) ([][]byte, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	var files []*zip.File
	for _, f := range zr.File {
		if strings.EqualFold(filepath.Ext(f.Name), ".png") {
			files = append(files, f)
		}
	}
	sort.Slice(files, func(i, j int) bool { return naturalLess(files[i].Name, files[j].Name) })
	out := make([][]byte, 0, len(files))
	for _, f := range files {
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		img, err := png.Decode(rc)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, f.Name, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			return nil, fmt.Errorf("%s: %s is %dx%d, want %dx%d", path, f.Name, b.Dx(), b.Dy(), w, h)
		}
		out = append(out, imageAlpha(img))
	}
	return out, nil
}

// readDirAlphas reads the alpha channel of every PNG in a folder, in the
// natural order of their names.
func readDirAlphas(dir string, w, h int) ([][]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.EqualFold(filepath.Ext(e.Name()), ".png") {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	out := make([][]byte, 0, len(names))
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		if b := img.Bounds(); b.Dx() != w || b.Dy() != h {
			return nil, fmt.Errorf("%s is %dx%d, want %dx%d", n, b.Dx(), b.Dy(), w, h)
		}
		out = append(out, imageAlpha(img))
	}
	return out, nil
}

// zipDir writes the PNG files of dir, in natural order, into a zip at
// path, stored (PNGs are compressed already).
func zipDir(dir, path string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	sort.Slice(names, func(i, j int) bool { return naturalLess(names[i], names[j]) })
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(f)
	for _, n := range names {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: n, Method: zip.Store})
		if err != nil {
			f.Close()
			return err
		}
		src, err := os.Open(filepath.Join(dir, n))
		if err != nil {
			f.Close()
			return err
		}
		_, err = io.Copy(w, src)
		src.Close()
		if err != nil {
			f.Close()
			return err
		}
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package testmedia

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BadKind says what is wrong with a BadFile.
type BadKind string

// The kinds of bad input BadFiles makes.
const (
	BadEmpty      BadKind = "empty"       // 0 bytes
	BadText       BadKind = "text"        // a text file named .mp4
	BadImage      BadKind = "image"       // a PNG image named .mp4
	BadAudioOnly  BadKind = "audio_only"  // AAC audio, no video stream
	BadTruncated  BadKind = "truncated"   // an MP4 cut before its index (unopenable)
	BadMidFrame   BadKind = "mid_frame"   // a Matroska file that ends in the middle of a frame
	BadDimensions BadKind = "dimensions"  // a 9000x16 picture, beyond 8192
	BadGarbage    BadKind = "garbage_mp4" // MP4 boxes full of noise
	// BadCorruptMiddle is a Matroska clip whose middle fifth is noise: it
	// opens, and decoding gives the frames around the damage.
	BadCorruptMiddle BadKind = "corrupt_middle"
)

// BadFile is a damaged or unsuitable input.
type BadFile struct {
	Kind BadKind
	Path string
}

// BadFiles writes one file of each BadKind.
func BadFiles(t testing.TB) []BadFile {
	t.Helper()
	dir := t.TempDir()
	var out []BadFile
	add := func(k BadKind, p string) { out = append(out, BadFile{k, p}) }

	empty := filepath.Join(dir, "empty.mp4")
	writeFile(t, empty, nil)
	add(BadEmpty, empty)

	text := filepath.Join(dir, "notes.mp4")
	writeFile(t, text, bytes.Repeat([]byte("This is a text file, not a video.\n"), 40))
	add(BadText, text)

	img := image.NewNRGBA(image.Rect(0, 0, 64, 48))
	for y := 0; y < 48; y++ {
		for x := 0; x < 64; x++ {
			img.Set(x, y, color.NRGBA{uint8(4 * x), uint8(5 * y), 128, 255})
		}
	}
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	pic := filepath.Join(dir, "picture.mp4")
	writeFile(t, pic, pngBuf.Bytes())
	add(BadImage, pic)

	audio := filepath.Join(dir, "audio.mp4")
	FFmpeg(t, "-f", "lavfi", "-i", "sine=f=440:sample_rate=48000:d=0.5", "-c:a", "aac", audio)
	add(BadAudioOnly, audio)

	clip := Clip(t, ClipOptions{Width: 160, Height: 120, Duration: time.Second})
	add(BadTruncated, Cut(t, clip, 0.6))

	mkv := Clip(t, ClipOptions{Width: 160, Height: 120, Duration: time.Second, Container: "mkv"})
	add(BadMidFrame, Cut(t, mkv, 0.7))

	big := filepath.Join(dir, "huge.mkv")
	FFmpeg(t, "-f", "lavfi", "-i", "color=c=gray:s=9000x16:r=5:d=0.4", "-c:v", "ffv1", big)
	add(BadDimensions, big)

	garbage := filepath.Join(dir, "garbage.mp4")
	noise := noiseBytes(64<<10, 12345)
	// Well-formed boxes (ftyp, moov, mdat) whose contents are noise.
	body := []byte{0, 0, 0, 24, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 2, 0, 'i', 's', 'o', 'm', 'm', 'p', '4', '1'}
	body = append(body, 0, 0, 0x04, 0x08, 'm', 'o', 'o', 'v')
	body = append(body, noise[:1024]...)
	body = append(body, 0, 0, 0xFC, 0x08, 'm', 'd', 'a', 't')
	body = append(body, noise[1024:]...)
	writeFile(t, garbage, body)
	add(BadGarbage, garbage)

	damaged := Clip(t, ClipOptions{Width: 160, Height: 120, Duration: time.Second, Container: "mkv"})
	add(BadCorruptMiddle, Damage(t, damaged, 0.4, 0.6))
	return out
}

// Cut writes a copy of src keeping only the first fraction (0..1) of its
// bytes, and returns its path.
func Cut(t testing.TB, src string, fraction float64) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	n := int(float64(len(b)) * fraction)
	dst := filepath.Join(t.TempDir(), "cut_"+filepath.Base(src))
	writeFile(t, dst, b[:n])
	return dst
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatalf("testmedia: %v", err)
	}
}

// Damage writes a copy of src with the bytes between the fractions from
// and to (0..1) of its length replaced by noise, and returns its path.
func Damage(t testing.TB, src string, from, to float64) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("testmedia: %v", err)
	}
	i, j := int(float64(len(b))*from), int(float64(len(b))*to)
	copy(b[i:j], noiseBytes(j-i, 777))
	dst := filepath.Join(t.TempDir(), "damaged_"+filepath.Base(src))
	writeFile(t, dst, b)
	return dst
}

// noiseBytes is n pseudo-random bytes, the same for the same seed.
func noiseBytes(n int, seed uint32) []byte {
	b := make([]byte, n)
	for i := range b {
		seed = seed*1664525 + 1013904223
		b[i] = byte(seed >> 24)
	}
	return b
}

package codec

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"

	"vidmatte"
)

// FuzzProbe feeds mutated media files (seeds in testdata/fuzz/FuzzProbe:
// small MP4, WebM, live WebM, Matroska, AVI, MPEG-TS, GIF, raw H.264, PNG
// and an HLS playlist) through the real demuxers: as an input video
// (ProbeContext, then the first frames of a Decoder) and as a background
// image. Bad input must give a structured, non-internal error, never a
// crash; an accepted input must be fully described.
func FuzzProbe(f *testing.F) {
	dir := f.TempDir()
	var seq atomic.Int64
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "in"+strconv.FormatInt(seq.Add(1), 10))
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)

		info, err := ProbeContext(context.Background(), path)
		if err != nil {
			checkRefusal(t, "Probe", err)
		} else {
			if info.Duration <= 0 || info.Width < 2 || info.Height < 2 || info.Width > DefaultMaxWidth || info.Height > DefaultMaxHeight || !info.TimeBase.Valid() {
				t.Fatalf("accepted an input described as %+v", info)
			}
			d, err := OpenDecoder(path, DecoderOptions{Threads: 1})
			if err != nil {
				checkRefusal(t, "OpenDecoder", err)
			} else {
				for i := 0; i < 3; i++ {
					fr, err := d.Next(context.Background())
					if err != nil {
						break
					}
					fr.Release()
				}
				d.Close()
			}
		}

		pic, err := decodeFirstPicture(path, 1<<20)
		if err != nil {
			var ve *vidmatte.Error
			if errors.As(err, &ve) && ve.Code == vidmatte.CodeInternal {
				t.Fatalf("background: internal error on bad input: %v", err)
			}
			return
		}
		if pic.Width()*pic.Height() > 1<<20 || pic.Width() <= 0 || pic.Height() <= 0 {
			t.Fatalf("background of %dx%d accepted", pic.Width(), pic.Height())
		}
		pic.Free()
	})
}

// checkRefusal fails unless err is a typed refusal with a client message.
func checkRefusal(t *testing.T, what string, err error) {
	t.Helper()
	var ve *vidmatte.Error
	if !errors.As(err, &ve) || ve.Message == "" {
		t.Fatalf("%s: unstructured error %v", what, err)
	}
	if ve.Code == vidmatte.CodeInternal {
		t.Fatalf("%s: internal error on bad input: %v", what, err)
	}
}

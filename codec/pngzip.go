package codec

import (
	"archive/zip"
	"bufio"
	"fmt"
	"os"
	"time"
)

// pngZip streams PNG pictures into a zip archive as frame_000001.png, …,
// stored without recompression (PNG data is already deflated).
type pngZip struct {
	f   *os.File
	buf *bufio.Writer
	zw  *zip.Writer
	n   int
	now time.Time
}

func newPNGZip(path string) (*pngZip, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	buf := bufio.NewWriterSize(f, 1<<20)
	return &pngZip{f: f, buf: buf, zw: zip.NewWriter(buf), now: time.Now()}, nil
}

// add writes the next frame's PNG.
func (z *pngZip) add(png []byte) error {
	z.n++
	w, err := z.zw.CreateHeader(&zip.FileHeader{
		Name:     fmt.Sprintf("frame_%06d.png", z.n),
		Method:   zip.Store,
		Modified: z.now,
	})
	if err != nil {
		return err
	}
	_, err = w.Write(png)
	return err
}

// close finishes the archive and the file.
func (z *pngZip) close() error {
	if z.f == nil {
		return nil
	}
	err := z.zw.Close()
	if err == nil {
		err = z.buf.Flush()
	}
	if cerr := z.f.Close(); err == nil {
		err = cerr
	}
	z.f = nil
	return err
}

// abort closes the file without finishing the archive.
func (z *pngZip) abort() {
	if z.f != nil {
		_ = z.f.Close()
		z.f = nil
	}
}

package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strconv"
	"vidmatte/service"

	"vidmatte"
)

// uploadJSON is the answer of POST /v1/uploads.
type uploadJSON struct {
	Success         bool    `json:"success"`
	VideoID         string  `json:"video_id"`
	VideoURL        string  `json:"video_url"`
	Filename        string  `json:"filename"`
	Size            int64   `json:"size"`
	DurationSeconds float64 `json:"duration_seconds"`
	Width           int     `json:"width"`
	Height          int     `json:"height"`
	FPS             float64 `json:"fps"`
	HasAudio        bool    `json:"has_audio"`
}

// multipartOverhead is what the multipart framing may add to the file.
const multipartOverhead = 64 << 10

// handleUpload streams the multipart field file to disk (never whole in
// memory), refusing it as soon as it passes the size cap; probes it; and
// records it. An Idempotency-Key is matched on the file's name and
// content, once they are known, before anything is recorded.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request, _ params) {
	ctx := r.Context()
	key := keyFrom(ctx)
	max := s.cfg.Limits.MaxUploadBytes
	if r.ContentLength > max+multipartOverhead {
		writeError(w, r, tooLarge(max))
		return
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		writeError(w, r, vidmatte.FieldErrorf("file", "send the video as multipart/form-data in a field named file"))
		return
	}
	if !s.takeUploadSlot(key.ID) {
		w.Header().Set("Retry-After", "1")
		writeError(w, r, vidmatte.Errorf(vidmatte.CodeRateLimited, "concurrent uploads quota: at most %d uploads of this key at once", s.cfg.Limits.ConcurrentUploads))
		return
	}
	defer s.releaseUploadSlot(key.ID)
	r.Body = http.MaxBytesReader(w, r.Body, max+multipartOverhead)
	mr, err := r.MultipartReader()
	if err != nil {
		writeError(w, r, vidmatte.FieldErrorf("file", "malformed multipart body"))
		return
	}
	var (
		path, filename string
		size           int64
		hash           = sha256.New()
	)
	cleanup := func() {
		if path != "" {
			os.Remove(path)
		}
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			cleanup()
			writeError(w, r, multipartError(err, max))
			return
		}
		name := part.FormName()
		if name != "file" {
			part.Close()
			cleanup()
			writeError(w, r, vidmatte.FieldErrorf(vidmatte.SafeText(name), "unknown field; send only the field file"))
			return
		}
		if path != "" {
			part.Close()
			cleanup()
			writeError(w, r, vidmatte.FieldErrorf("file", "given more than once"))
			return
		}
		filename = service.SanitizeFilename(part.FileName())
		path = s.svc.NewUploadPath(filename)
		hash.Write([]byte(filename + "\n"))
		size, err = s.streamPart(part, path, max, hash)
		part.Close()
		if err != nil {
			if errors.Is(err, errUploadTooLarge) {
				err = tooLarge(max)
			} else {
				err = multipartError(err, max)
			}
			cleanup()
			writeError(w, r, err)
			return
		}
	}
	if path == "" {
		writeError(w, r, vidmatte.FieldErrorf("file", "required"))
		return
	}
	if size == 0 {
		cleanup()
		writeError(w, r, &vidmatte.Error{Code: vidmatte.CodeUnsupportedMedia, Field: "file", Message: "file: empty"})
		return
	}
	claim, done := s.beginIdempotent(w, r, "upload "+hex.EncodeToString(hash.Sum(nil)))
	if done {
		cleanup()
		return
	}
	if claim == nil {
		s.finishUpload(w, r, key, path, filename, size)
		return
	}
	claim.run(w, r, func(w http.ResponseWriter, r *http.Request) { s.finishUpload(w, r, key, path, filename, size) })
	if claim.rec.Resource != "" {
		cleanup() // answered from the upload the first request made
	}
}

func (s *Server) finishUpload(w http.ResponseWriter, r *http.Request, key *vidmatte.Key, path, filename string, size int64) {
	ctx := r.Context()
	up, err := s.svc.ReceiveUpload(ctx, key.ID, path, filename, size)
	if err != nil {
		writeError(w, r, err)
		return
	}
	loggerFrom(ctx).Info("upload stored", slog.String("video_id", up.ID), slog.Int64("size", size),
		slog.Float64("duration_seconds", up.DurationSec))
	writeJSON(w, http.StatusCreated, s.renderUpload(up, s.baseURL(r)))
}

func (s *Server) renderUpload(up *vidmatte.Upload, base string) *uploadJSON {
	return &uploadJSON{
		Success:         true,
		VideoID:         up.ID,
		VideoURL:        base + "/v1/uploads/" + up.ID,
		Filename:        up.Filename,
		Size:            up.Size,
		DurationSeconds: up.DurationSec,
		Width:           up.Width,
		Height:          up.Height,
		FPS:             up.FPS,
		HasAudio:        up.HasAudio,
	}
}

var errUploadTooLarge = errors.New("upload too large")

// streamPart copies a part to a new file, hashing it, and stops as soon as
// it passes max bytes.
func (s *Server) streamPart(part io.Reader, path string, max int64, hash io.Writer) (int64, error) {
	create := s.createUpload
	if create == nil {
		create = createUploadFile
	}
	f, err := create(path)
	if err != nil {
		return 0, storageError(err)
	}
	n, err := io.Copy(io.MultiWriter(&storageWriter{f}, hash), io.LimitReader(part, max+1))
	if cerr := f.Close(); err == nil && cerr != nil {
		err = storageError(cerr)
	}
	if err == nil && n > max {
		err = errUploadTooLarge
	}
	return n, err
}

// createUploadFile creates a new upload file.
func createUploadFile(path string) (io.WriteCloser, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
}

// storageWriter marks the errors of writing the upload to disk, so that a
// full disk is told apart from a client's broken body.
type storageWriter struct{ w io.Writer }

func (sw *storageWriter) Write(p []byte) (int, error) {
	n, err := sw.w.Write(p)
	if err != nil {
		err = storageError(err)
	}
	return n, err
}

// storageError is the answer to a failure of the daemon's own disk (full,
// read-only, out of quota): the daemon cannot take the upload now, the
// request was not wrong.
func storageError(err error) error {
	return vidmatte.Wrap(err, vidmatte.CodeUnavailable, "cannot store the upload now; try again later")
}

func tooLarge(max int64) error {
	return &vidmatte.Error{Code: vidmatte.CodeTooLarge, Field: "file", Message: "file: larger than the limit of " + strconv.FormatInt(max, 10) + " bytes"}
}

func multipartError(err error, max int64) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return tooLarge(max)
	}
	var ve *vidmatte.Error
	if errors.As(err, &ve) {
		return err // a slow body, a failing disk: said already
	}
	return &vidmatte.Error{Code: vidmatte.CodeInvalid, Field: "file", Message: "file: malformed multipart body", Err: err}
}

// takeUploadSlot counts an upload of the key in progress, unless the key
// has its quota of them already.
func (s *Server) takeUploadSlot(keyID string) bool {
	s.uploadsMu.Lock()
	defer s.uploadsMu.Unlock()
	if s.uploading[keyID] >= s.cfg.Limits.ConcurrentUploads {
		return false
	}
	if s.uploading == nil {
		s.uploading = map[string]int{}
	}
	s.uploading[keyID]++
	return true
}

func (s *Server) releaseUploadSlot(keyID string) {
	s.uploadsMu.Lock()
	defer s.uploadsMu.Unlock()
	if s.uploading[keyID]--; s.uploading[keyID] <= 0 {
		delete(s.uploading, keyID)
	}
}

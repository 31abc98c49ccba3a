package service

import (
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"vidmatte"
)

// Retention is how long the daemon keeps files. An expired upload or
// output keeps its record (its jobs and ledger rows stay readable) but its
// file is deleted and its URL stops working.
type Retention struct {
	Uploads     time.Duration // uploaded videos, from their upload (default 24 h)
	Fetched     time.Duration // videos fetched from a video_url (default 24 h)
	Outputs     time.Duration // outputs, from the job's completion (default 7 days)
	Backgrounds time.Duration // fetched background images, from their last use (default 24 h)
	Interval    time.Duration // how often the sweep runs (default 10 minutes)
}

func (r Retention) withDefaults() Retention {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&r.Uploads, 24*time.Hour)
	def(&r.Fetched, 24*time.Hour)
	def(&r.Outputs, 7*24*time.Hour)
	def(&r.Backgrounds, 24*time.Hour)
	def(&r.Interval, 10*time.Minute)
	return r
}

// RetentionStore is what the sweep needs of the store.
type RetentionStore interface {
	ExpireUploads(ctx context.Context, before, fetchedBefore time.Time, limit int) ([]*vidmatte.Upload, error)
	ExpireOutputs(ctx context.Context, before time.Time, limit int) ([]vidmatte.ExpiredOutput, error)
	UploadPathLive(ctx context.Context, path string) (bool, error)
	OutputLive(ctx context.Context, jobID string) (bool, error)
	// TakeTurn says whether this daemon runs the periodic work now (once
	// in a cluster sharing the store).
	TakeTurn(ctx context.Context, name, holder string, every time.Duration) (bool, error)
}

// SweepReport counts what one sweep reclaimed.
type SweepReport struct {
	Uploads     int   // uploads expired
	Outputs     int   // outputs expired
	Orphans     int   // files no record keeps (left by a crash)
	Backgrounds int   // background images unused for their lifetime
	Bytes       int64 // bytes freed
}

// sweepBatch is how many records one store call expires.
const sweepBatch = 200

// Sweep expires what has outlived its lifetime and deletes the files:
// uploads and fetched videos no unfinished job needs, outputs of jobs
// completed long enough ago, background images not used for their
// lifetime, and files in the data folders that no record keeps (a crash
// between writing a file and recording it, or between expiring a record
// and deleting its file). A file that cannot be deleted is logged and
// tried again at the next sweep.
func (s *Service) Sweep(ctx context.Context) (SweepReport, error) {
	var rep SweepReport
	if err := s.sweepRecords(ctx, &rep); err != nil {
		return rep, err
	}
	err := s.sweepOrphans(ctx, &rep, s.cfg.Now())
	return rep, err
}

// sweepRecords expires the records past their lifetime and deletes their
// files or objects: the part of the sweep that one daemon of a cluster
// does for all.
func (s *Service) sweepRecords(ctx context.Context, rep *SweepReport) error {
	now := s.cfg.Now()
	ret := s.cfg.Retention
	for {
		ups, err := s.store.ExpireUploads(ctx, now.Add(-ret.Uploads), now.Add(-ret.Fetched), sweepBatch)
		if err != nil {
			return err
		}
		for _, u := range ups {
			rep.Uploads++
			rep.Bytes += s.removeRef(ctx, u.Path)
		}
		if len(ups) < sweepBatch {
			break
		}
	}
	for {
		outs, err := s.store.ExpireOutputs(ctx, now.Add(-ret.Outputs), sweepBatch)
		if err != nil {
			return err
		}
		for _, o := range outs {
			rep.Outputs++
			rep.Bytes += s.removeAll(filepath.Join(s.outputDir, o.JobID))
			if o.Path != "" && !within(s.outputDir, o.Path) {
				rep.Bytes += s.removeRef(ctx, o.Path)
			}
		}
		if len(outs) < sweepBatch {
			break
		}
	}
	return nil
}

// sweepOrphans deletes old files no record keeps, and background images
// past their lifetime.
func (s *Service) sweepOrphans(ctx context.Context, rep *SweepReport, now time.Time) error {
	ret := s.cfg.Retention
	// An upload's file is written before its record: only a file older
	// than any upload in flight can be an orphan.
	grace := max(ret.Uploads, ret.Fetched)
	entries, err := os.ReadDir(s.uploadDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		p := filepath.Join(s.uploadDir, e.Name())
		if !olderThan(e, now.Add(-grace)) {
			continue
		}
		live, err := s.store.UploadPathLive(ctx, p)
		if err != nil {
			return err
		}
		if !live {
			rep.Orphans++
			rep.Bytes += s.removeAll(p)
		}
	}
	entries, err = os.ReadDir(s.outputDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() || !vidmatte.ValidID(e.Name()) || !olderThan(e, now.Add(-ret.Outputs)) {
			continue
		}
		live, err := s.store.OutputLive(ctx, e.Name())
		if err != nil {
			return err
		}
		if !live {
			rep.Orphans++
			rep.Bytes += s.removeAll(filepath.Join(s.outputDir, e.Name()))
		}
	}
	entries, err = os.ReadDir(s.backgroundDir)
	if err != nil {
		return err
	}
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	for _, e := range entries {
		if olderThan(e, now.Add(-ret.Backgrounds)) {
			rep.Backgrounds++
			rep.Bytes += s.removeAll(filepath.Join(s.backgroundDir, e.Name()))
		}
	}
	return nil
}

// RunRetention sweeps at once and then every interval until ctx is done.
// The records are swept by one daemon of those sharing the store per
// interval (whichever takes the turn); each daemon sweeps its own folders.
func (s *Service) RunRetention(ctx context.Context) {
	t := time.NewTicker(s.cfg.Retention.Interval)
	defer t.Stop()
	host, _ := os.Hostname()
	holder := fmt.Sprintf("%s:%d", host, os.Getpid())
	for {
		var rep SweepReport
		// A turn lasts a little less than the interval, so that a tick a
		// moment early does not miss the next one.
		turn, err := s.store.TakeTurn(ctx, "retention", holder, s.cfg.Retention.Interval*9/10)
		if err == nil && turn {
			err = s.sweepRecords(ctx, &rep)
		}
		if err == nil {
			err = s.sweepOrphans(ctx, &rep, s.cfg.Now())
		}
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("retention sweep", slog.Any("error", err))
		case rep != SweepReport{}:
			s.log.Info("retention sweep", slog.Int("uploads", rep.Uploads), slog.Int("outputs", rep.Outputs),
				slog.Int("orphans", rep.Orphans), slog.Int("backgrounds", rep.Backgrounds), slog.Int64("bytes", rep.Bytes))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func olderThan(e fs.DirEntry, cutoff time.Time) bool {
	info, err := e.Info()
	return err == nil && info.ModTime().Before(cutoff)
}

// within reports whether p lies inside dir.
func within(dir, p string) bool {
	rel, err := filepath.Rel(dir, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// removeRef deletes the file or object of a reference and returns the
// bytes freed; one already gone frees nothing and is no error.
func (s *Service) removeRef(ctx context.Context, ref string) int64 {
	n, err := s.cfg.Files.Delete(ctx, ref)
	if err != nil {
		s.log.Warn("retention: deleting a file", slog.String("path", ref), slog.Any("error", err))
		return 0
	}
	return n
}

// removeAll deletes a file or a folder and returns the bytes freed.
func (s *Service) removeAll(p string) int64 {
	var n int64
	_ = filepath.WalkDir(p, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	if err := os.RemoveAll(p); err != nil {
		s.log.Warn("retention: deleting", slog.String("path", p), slog.Any("error", err))
		return 0
	}
	return n
}

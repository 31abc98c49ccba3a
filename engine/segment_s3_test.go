package engine

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/artifacts"
	"vidmatte/internal/testmedia"
	"vidmatte/internal/tests3"
)

// Two nodes on one store and one S3 bucket: the first records a few
// segments of a job, its parts in the bucket, and is shut down; the
// second, with a folder of its own, resumes the job from the parts in the
// bucket and completes it. The parts are deleted then; the output stays.
func TestSegmentsResumeOnAnotherNodeThroughObjectStorage(t *testing.T) {
	e := newRunnerEnv(t)
	endpoint, bucket := tests3.Bucket(t)
	s3, err := artifacts.NewS3(context.Background(), artifacts.S3Options{Endpoint: endpoint, Bucket: bucket,
		AccessKey: tests3.AccessKey, SecretKey: tests3.SecretKey, Secure: false, PartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	clip, _ := testmedia.GreenScreen(t, 96, 64, 75, false)
	node := func(name string, p Processor) *Runner {
		root := t.TempDir()
		files, err := artifacts.NewFiles(s3, filepath.Join(root, "scratch"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewRunner(RunnerConfig{Jobs: e.db, Processor: p, OutputDir: filepath.Join(root, "outputs"), Files: files,
			Worker: name, Shared: true, MaxAttempts: 2, PollInterval: 20 * time.Millisecond, ProgressInterval: 5 * time.Millisecond,
			SegmentLength: 400 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	wp := &watchingProcessor{inner: newTestEngine(t, 1), recorded: make(chan int, 100), last: make(chan *SegmentCounts, 4)}
	a := node("node-a", wp)
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { a.Run(ctx); close(ran) }()
	j := e.queue(t, clip)
	a.Wake()
	for n := range wp.recorded {
		if n == 3 {
			break
		}
	}
	expired, cancel := context.WithTimeout(context.Background(), 0)
	defer cancel()
	a.Shutdown(expired)
	stop()
	<-ran
	st, _ := e.db.JobSegments(context.Background(), j.ID)
	segs := st.Done
	if len(segs) < 3 || !artifacts.IsObject(segs[0].Path) {
		t.Fatalf("segments recorded on node a: %+v", segs)
	}

	b := node("node-b", wp)
	start(t, b)
	b.Wake()
	done := e.waitStatus(t, j.ID, vidmatte.StatusCompleted)
	c := <-wp.last
	e.waitIdle(t, b) // the parts are deleted after the completion
	if c.Resumed != len(segs) {
		t.Errorf("node b resumed %d segments, %d were recorded by node a", c.Resumed, len(segs))
	}
	if !artifacts.IsObject(done.OutputPath) {
		t.Fatalf("output %s is not in the bucket", done.OutputPath)
	}
	var keys []string
	if err := s3.List(context.Background(), "outputs/"+j.ID+"/", func(i artifacts.Info) error {
		keys = append(keys, i.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 || !strings.HasSuffix(done.OutputPath, keys[0]) {
		t.Errorf("objects under the job's prefix after its completion: %v (output %s)", keys, done.OutputPath)
	}
	files, _ := artifacts.NewFiles(s3, t.TempDir())
	local, release, err := files.Local(context.Background(), done.OutputPath)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if frames, _, _ := testmedia.Probe(t, local); frames != 75 {
		t.Errorf("the output has %d frames, want 75", frames)
	}
	if l := e.ledger(t); l["charge"] != 1 || l["refund"] != 0 {
		t.Errorf("ledger %v", l)
	}
}

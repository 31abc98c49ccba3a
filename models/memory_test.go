package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"vidmatte"
)

// TestEstimateMemoryKnownShapes checks the estimate against sums done by
// hand for three models.
func TestEstimateMemoryKnownShapes(t *testing.T) {
	r := testRegistry(t)

	// The chroma keyer runs at the frame's chroma size: an 8K frame is a
	// 3840×2160 = 8,294,400-pixel input, 2 planes in, alpha + 2 planes out.
	chroma, _ := r.Get("chroma")
	const hw8K = 3840 * 2160
	frames := FrameMemory{Batches: 3, PerSlot: 7680 * 4320 * 3}
	e, err := EstimateMemory(chroma, LoadOptions{FrameWidth: 7680, FrameHeight: 4320, Frames: frames}, 8)
	if err != nil {
		t.Fatal(err)
	}
	want := MemoryEstimate{
		Batch:   8,
		Tensors: 3 * 8 * hw8K * (2 + 1 + 2) * 4, // 3.98 GB
		Work:    8 * hw8K * 16 * 4,              // 4.25 GB
		Weights: 2 * chroma.Size,
		Frames:  3 * 8 * 7680 * 4320 * 3, // 2.39 GB
	}
	want.Total = want.Tensors + want.Work + want.Weights + want.Frames
	if e != want {
		t.Errorf("chroma 8K batch 8:\n got %+v\nwant %+v", e, want)
	}
	if e.Total < 10e9 {
		t.Errorf("8K batch 8 estimated at %s: that is the case that ran out of memory", FormatBytes(e.Total))
	}
	t.Logf("chroma, 8K, batch 8, 3 batches in flight: %s", FormatBytes(e.Total))

	// ISNet: a fixed 1024×1024 rgb input, alpha out, one frame per Run.
	isnet, err := r.Get("isnet")
	if err != nil {
		t.Fatal(err)
	}
	o := LoadOptions{FrameWidth: 1920, FrameHeight: 1080, Frames: FrameMemory{Batches: 3, PerSlot: 6_220_800, Fixed: 10_000_000}}
	e, err = EstimateMemory(isnet, o, 1)
	if err != nil {
		t.Fatal(err)
	}
	const hw1K = 1024 * 1024
	want = MemoryEstimate{
		Batch:   1,
		Tensors: 3 * hw1K * (3 + 1) * 4,
		Work:    hw1K * 640 * 4,
		Weights: 2 * 88_188_479,
		Frames:  10_000_000 + 3*6_220_800,
	}
	want.Total = want.Tensors + want.Work + want.Weights + want.Frames
	if e != want {
		t.Errorf("isnet batch 1:\n got %+v\nwant %+v", e, want)
	}
	t.Logf("isnet, 1080p, batch 1: %s", FormatBytes(e.Total))

	// RVM at 1080p: downsample ratio 0.25 (481×271 rounded up), one frame
	// per Run whatever the batch, rgb in, alpha + rgb foreground out, and
	// its recurrent state.
	rvm := importRVMTest(t, r)
	e, err = EstimateMemory(rvm, LoadOptions{FrameWidth: 1920, FrameHeight: 1080}, 4)
	if err != nil {
		t.Fatal(err)
	}
	const hwHD, small = 1920 * 1080, 481 * 271
	want = MemoryEstimate{
		Batch:   4,
		Tensors: 4 * hwHD * (3 + 1 + 3) * 4,
		Work:    hwHD*16*4 + small*512*4,
		State:   2 * small * 8 * 4,
		Weights: 2 * rvm.Size,
	}
	want.Total = want.Tensors + want.Work + want.State + want.Weights
	if e != want {
		t.Errorf("rvm 1080p batch 4:\n got %+v\nwant %+v", e, want)
	}
	if rvm.Size <= 0 {
		t.Errorf("imported model has no size: %d", rvm.Size)
	}

	// A dynamic model without a frame size cannot be estimated.
	if _, err := EstimateMemory(chroma, LoadOptions{}, 1); err == nil {
		t.Error("estimate without a frame size")
	}
}

// TestFitBatch: at 8K the chroma keyer asked for batch 8 is lowered to
// what a 4 GiB budget holds, and refused at 1 GiB.
func TestFitBatch(t *testing.T) {
	r := testRegistry(t)
	chroma, _ := r.Get("chroma")
	o := LoadOptions{FrameWidth: 7680, FrameHeight: 4320, Frames: FrameMemory{Batches: 3, PerSlot: 7680 * 4320 * 3}}
	one, _ := EstimateMemory(chroma, o, 1)
	e, err := fitBatch(chroma, o, 8, 4<<30)
	if err != nil {
		t.Fatal(err)
	}
	if e.Batch != 3 || e.Total > 4<<30 {
		t.Errorf("4 GiB budget: batch %d (%s), want 3 (one frame: %s)", e.Batch, FormatBytes(e.Total), FormatBytes(one.Total))
	}
	if next, _ := EstimateMemory(chroma, o, e.Batch+1); next.Total <= 4<<30 {
		t.Errorf("batch %d would fit too (%s)", e.Batch+1, FormatBytes(next.Total))
	}
	_, err = fitBatch(chroma, o, 8, 1<<30)
	if vidmatte.ErrorCode(err) != vidmatte.CodeTooLarge || !errors.Is(err, ErrOverMemoryBudget) {
		t.Fatalf("1 GiB budget: %v (code %q)", err, vidmatte.ErrorCode(err))
	}
	msg := vidmatte.ErrorMessage(err)
	for _, s := range []string{"7680x4320", "chroma", "1.0 GiB", FormatBytes(one.Total)} {
		if !strings.Contains(msg, s) {
			t.Errorf("refusal %q does not mention %q", msg, s)
		}
	}
}

// TestLoadClampsBatch: Load with batch 8 on a budget that holds 2 frames
// returns a model of batch 2 that runs two frames correctly.
func TestLoadClampsBatch(t *testing.T) {
	testRuntime(t)
	r := testRegistry(t)
	m, _ := r.Get("chroma")
	const w, h = 64, 32
	o := LoadOptions{Batch: 8, FrameWidth: w, FrameHeight: h}
	two, err := EstimateMemory(m, o, 2)
	if err != nil {
		t.Fatal(err)
	}
	rt, err := NewRuntime(RuntimeOptions{MemoryBudget: two.Total + 100, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if rt.MemoryBudget() != two.Total+100 {
		t.Fatalf("budget %d", rt.MemoryBudget())
	}
	model, err := rt.Load(r, m, o)
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if model.Batch() != 2 || model.Memory() != two {
		t.Fatalf("batch %d, estimate %+v; want 2, %+v", model.Batch(), model.Memory(), two)
	}
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Size() != 2 {
		t.Fatalf("batch of %d", b.Size())
	}
	green := toYUV420(w, h, func(x, y int) [3]float64 { return [3]float64{0.1, 0.7, 0.2} })
	grey := toYUV420(w, h, func(x, y int) [3]float64 { return [3]float64{0.6, 0.5, 0.4} })
	model.PrepareUV(b.Slot(0), green.u, green.uStride, green.v, green.vStride)
	model.PrepareUV(b.Slot(1), grey.u, grey.uStride, grey.v, grey.vStride)
	if err := model.Run(context.Background(), b, 2, nil); err != nil {
		t.Fatal(err)
	}
	if a0, a1 := chromaRegionMean(b.Alpha(0), w, 0, 0, w, h), chromaRegionMean(b.Alpha(1), w, 0, 0, w, h); a0 > 0.01 || a1 < 0.99 {
		t.Errorf("alpha %.3f (green), %.3f (grey)", a0, a1)
	}
}

// TestLoadRefusesOverBudget: a job that does not fit even at batch 1 is
// refused with payload_too_large before any session is created.
func TestLoadRefusesOverBudget(t *testing.T) {
	testRuntime(t)
	r := testRegistry(t)
	rt, err := NewRuntime(RuntimeOptions{MemoryBudget: 4096})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	for _, id := range []string{"chroma", "rvm-test"} {
		var m *Manifest
		if id == "rvm-test" {
			m = importRVMTest(t, r)
		} else {
			m, _ = r.Get(id)
		}
		_, err = rt.Load(r, m, LoadOptions{Batch: 4, FrameWidth: 640, FrameHeight: 360})
		if vidmatte.ErrorCode(err) != vidmatte.CodeTooLarge || !errors.Is(err, ErrOverMemoryBudget) {
			t.Fatalf("%s: Load over budget: %v (code %q)", id, err, vidmatte.ErrorCode(err))
		}
		if !strings.Contains(vidmatte.ErrorMessage(err), "640x360") || !strings.Contains(vidmatte.ErrorMessage(err), "4.0 KiB") {
			t.Errorf("%s: message %q", id, vidmatte.ErrorMessage(err))
		}
	}
	if st := rt.Stats(); st.Created != 0 || st.Live != 0 {
		t.Fatalf("a refused job created sessions: %+v", st)
	}
	if _, err := NewRuntime(RuntimeOptions{MemoryBudget: -1}); err == nil {
		t.Error("negative budget accepted")
	}
	if _, err := NewRuntime(RuntimeOptions{SessionCache: -1}); err == nil {
		t.Error("negative cache size accepted")
	}
}

// TestDefaultMemoryBudget: half of MemTotal, or 4 GiB when /proc/meminfo
// cannot be read or has no MemTotal.
func TestDefaultMemoryBudget(t *testing.T) {
	defer func(old string) { memInfoPath = old }(memInfoPath)
	dir := t.TempDir()
	memInfoPath = filepath.Join(dir, "meminfo")
	os.WriteFile(memInfoPath, []byte("MemFree:  1000 kB\nMemTotal:       24576000 kB\n"), 0o644)
	if got := DefaultMemoryBudget(); got != 24576000*1024/2 {
		t.Errorf("budget %d from MemTotal 24576000 kB", got)
	}
	os.WriteFile(memInfoPath, []byte("MemFree: 1000 kB\n"), 0o644)
	if got := DefaultMemoryBudget(); got != 4<<30 {
		t.Errorf("budget %d without MemTotal", got)
	}
	memInfoPath = filepath.Join(dir, "absent")
	if got := DefaultMemoryBudget(); got != 4<<30 {
		t.Errorf("budget %d without /proc/meminfo", got)
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{512: "512 B", 4096: "4.0 KiB", 3 << 29: "1.5 GiB", 10_616_832_000: "9.9 GiB"} {
		if got := FormatBytes(n); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

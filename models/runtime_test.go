package models

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestMissingLibrary(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lib", "libonnxruntime.so.1")
	_, err := NewRuntime(RuntimeOptions{LibraryPath: path})
	if err == nil || !strings.Contains(err.Error(), "not found at "+path) {
		t.Fatalf("missing library: %v", err)
	}
	_, err = NewRuntime(RuntimeOptions{LibraryPath: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("folder as library: %v", err)
	}
	t.Setenv("VIDMATTE_ORT_LIB", path)
	_, err = NewRuntime(RuntimeOptions{})
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "$VIDMATTE_ORT_LIB") {
		t.Fatalf("missing library from the environment: %v", err)
	}
}

// TestIncompatibleLibrary loads files that are not ONNX Runtime in a fresh
// process (the environment is once per process) and checks the errors.
func TestIncompatibleLibrary(t *testing.T) {
	if lib := os.Getenv("VIDMATTE_TEST_BAD_LIB"); lib != "" {
		_, err := NewRuntime(RuntimeOptions{LibraryPath: lib})
		if err == nil {
			os.Stdout.WriteString("RESULT: loaded\n")
		} else {
			os.Stdout.WriteString("RESULT: " + err.Error() + "\n")
		}
		return
	}
	dir := t.TempDir()
	garbage := filepath.Join(dir, "libonnxruntime.so.1")
	os.WriteFile(garbage, []byte("not a shared library at all"), 0o644)
	cases := map[string]string{garbage: "cannot load ONNX Runtime from " + garbage}
	// A real shared library that is not ONNX Runtime.
	for _, p := range []string{"/lib/x86_64-linux-gnu/libz.so.1", "/usr/lib/x86_64-linux-gnu/libz.so.1", "/lib/aarch64-linux-gnu/libz.so.1"} {
		if _, err := os.Stat(p); err == nil {
			cases[p] = "is not an ONNX Runtime library"
			break
		}
	}
	for lib, want := range cases {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIncompatibleLibrary$", "-test.count=1")
		cmd.Env = append(os.Environ(), "VIDMATTE_TEST_BAD_LIB="+lib)
		out, _ := cmd.CombinedOutput()
		i := bytes.Index(out, []byte("RESULT: "))
		if i < 0 {
			t.Fatalf("%s: no result from the child process:\n%s", lib, out)
		}
		line := string(out[i:])
		line = line[:strings.IndexByte(line, '\n')]
		t.Logf("%s: %s", lib, line)
		if !strings.Contains(line, want) {
			t.Errorf("%s: got %q, want it to contain %q", lib, line, want)
		}
	}
}

func TestRuntimeVersion(t *testing.T) {
	rt := testRuntime(t)
	if rt.Version() != "1.30.0" {
		t.Errorf("ONNX Runtime version %q, want 1.30.0 (what scripts/setup installs)", rt.Version())
	}
	// A second Runtime shares the environment.
	rt2, err := NewRuntime(RuntimeOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if rt2.Version() != rt.Version() {
		t.Errorf("second runtime: %q", rt2.Version())
	}
	// The same library through a link is the same library.
	link := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	if err := os.Symlink(DefaultLibraryPath(), link); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRuntime(RuntimeOptions{LibraryPath: link}); err != nil {
		t.Errorf("linked library: %v", err)
	}
	// Another library cannot join a process that has one.
	other := filepath.Join(t.TempDir(), "libonnxruntime.so.1")
	os.WriteFile(other, []byte("x"), 0o644)
	if _, err := NewRuntime(RuntimeOptions{LibraryPath: other}); err == nil || !strings.Contains(err.Error(), "already loaded") {
		t.Errorf("second library: %v", err)
	}
}

// TestCUDAUnavailable: without the CUDA provider libraries (none are
// installed here) asking for CUDA fails with a clear error; with fallback
// the model runs on the CPU and the reason is logged.
func TestCUDAUnavailable(t *testing.T) {
	testRuntime(t)
	dir := filepath.Dir(DefaultLibraryPath())
	if _, err := os.Stat(filepath.Join(dir, providersCUDALib)); err == nil {
		t.Skipf("%s has CUDA provider libraries: this test is about their absence", dir)
	}
	rt, err := NewRuntime(RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	r := testRegistry(t)
	m, _ := r.Get("chroma")
	_, err = rt.Load(r, m, LoadOptions{Device: CUDA, FrameWidth: 32, FrameHeight: 16})
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Fatalf("Load on CUDA: %v", err)
	}
	for _, want := range []string{dir, providersSharedLib, providersCUDALib, "1.30.0", "scripts/setup --cuda"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("CUDA error %q does not mention %q", err, want)
		}
	}

	var logs bytes.Buffer
	fb, err := NewRuntime(RuntimeOptions{AllowCPUFallback: true, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer fb.Close()
	model, err := fb.Load(r, m, LoadOptions{Device: CUDA, FrameWidth: 32, FrameHeight: 16})
	if err != nil {
		t.Fatalf("Load with fallback: %v", err)
	}
	if model.Device() != CPU {
		t.Errorf("fallback model on %s", model.Device())
	}
	if !strings.Contains(logs.String(), "CUDA requested but unavailable") || !strings.Contains(logs.String(), providersCUDALib) {
		t.Errorf("fallback not logged with its reason: %s", logs.String())
	}
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f := toYUV420(32, 16, func(x, y int) [3]float64 { return [3]float64{0.1, 0.7, 0.2} })
	model.PrepareUV(b.Slot(0), f.u, f.uStride, f.v, f.vStride)
	if err := model.Run(context.Background(), b, 1, nil); err != nil {
		t.Fatal(err)
	}
	if a := chromaRegionMean(b.Alpha(0), 32, 0, 0, 32, 16); a > 0.01 {
		t.Errorf("green frame keyed to alpha %.3f on the CPU fallback", a)
	}
}

// TestCUDAChecks walks the later CUDA checks with a library folder (a link
// to the real library) that has provider files: no driver, then ONNX
// Runtime's own failure, wrapped.
func TestCUDAChecks(t *testing.T) {
	testRuntime(t)
	dir := t.TempDir()
	link := filepath.Join(dir, "libonnxruntime.so.1")
	if err := os.Symlink(DefaultLibraryPath(), link); err != nil {
		t.Fatal(err)
	}
	for _, lib := range []string{providersSharedLib, providersCUDALib} {
		os.WriteFile(filepath.Join(dir, lib), []byte("not a library"), 0o644)
	}
	defer func(old string) { nvidiaDriverFile = old }(nvidiaDriverFile)

	nvidiaDriverFile = filepath.Join(dir, "no-driver")
	rt, err := NewRuntime(RuntimeOptions{LibraryPath: link})
	if err != nil {
		t.Fatal(err)
	}
	err = rt.CheckCUDA()
	if !errors.Is(err, ErrCUDAUnavailable) || !strings.Contains(err.Error(), "no NVIDIA driver") {
		t.Fatalf("no driver: %v", err)
	}

	nvidiaDriverFile = filepath.Join(dir, "driver")
	os.WriteFile(nvidiaDriverFile, []byte("NVRM version: test"), 0o644)
	rt2, err := NewRuntime(RuntimeOptions{LibraryPath: link})
	if err != nil {
		t.Fatal(err)
	}
	err = rt2.CheckCUDA()
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Fatalf("ONNX Runtime's CUDA failure: %v", err)
	}
	if strings.Contains(err.Error(), "\x1b[") {
		t.Errorf("error keeps colour codes: %q", err)
	}
	t.Logf("CUDA error from ONNX Runtime: %v", err)
}

// TestCUDAProviderRelease: a CUDA provider library from another ONNX
// Runtime release is refused before ONNX Runtime loads it (and before the
// driver check), naming both releases; one from the core's release goes
// on to the next check. VIDMATTE_TEST_CUDA_PROVIDER may name a real
// provider library to read as well (e.g. an ONNX Runtime 1.29.0 one).
func TestCUDAProviderRelease(t *testing.T) {
	testRuntime(t)
	defer func(old string) { nvidiaDriverFile = old }(nvidiaDriverFile)
	provider := func(t *testing.T, body []byte) (*Runtime, string) {
		dir := t.TempDir()
		link := filepath.Join(dir, "libonnxruntime.so.1")
		if err := os.Symlink(DefaultLibraryPath(), link); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, providersSharedLib), []byte("shared"), 0o644)
		os.WriteFile(filepath.Join(dir, providersCUDALib), body, 0o644)
		nvidiaDriverFile = filepath.Join(dir, "no-driver")
		rt, err := NewRuntime(RuntimeOptions{LibraryPath: link})
		if err != nil {
			t.Fatal(err)
		}
		return rt, dir
	}
	// The version string sits across the 1 MiB read boundary.
	body := func(v string) []byte {
		b := bytes.Repeat([]byte("\x7fELF junk 1.2 \x00"), 2*(1<<20)/15)
		b = append(b[:(1<<20)-3], append([]byte("\x00"+v+"\x00GetProvider\x001.30\x00v1.2.3\x00"), b[:100]...)...)
		return b
	}

	rt, dir := provider(t, body("1.29.0"))
	err := rt.CheckCUDA()
	if !errors.Is(err, ErrCUDAUnavailable) {
		t.Fatalf("provider of 1.29.0: %v", err)
	}
	for _, want := range []string{"from ONNX Runtime 1.29.0", "is " + rt.Version(), dir, "scripts/setup --cuda"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("release error %q does not say %q", err, want)
		}
	}

	rt, _ = provider(t, body(rt.Version()))
	if err := rt.CheckCUDA(); !errors.Is(err, ErrCUDAUnavailable) || !strings.Contains(err.Error(), "no NVIDIA driver") {
		t.Errorf("provider of the core's release: %v (want the driver check next)", err)
	}

	if got, err := providerVersions(filepath.Join(dir, providersSharedLib)); err != nil || got != nil {
		t.Errorf("a file without a release string: %q, %v", got, err)
	}
	if real := os.Getenv("VIDMATTE_TEST_CUDA_PROVIDER"); real != "" {
		got, err := providerVersions(real)
		t.Logf("%s names releases %q (err %v)", real, got, err)
		if err != nil || len(got) != 1 {
			t.Errorf("%s: releases %q, %v; want exactly one", real, got, err)
		}
	}
}

func TestCleanORTMessage(t *testing.T) {
	in := "\x1b[1;31m2025-01-01 [E:onnxruntime:, provider_bridge_ort.cc:2036] Failed to load library libonnxruntime_providers_cuda.so\x1b[m\n"
	got := cleanORTMessage(in)
	if strings.Contains(got, "\x1b") || !strings.HasSuffix(got, "providers_cuda.so") {
		t.Errorf("cleanORTMessage = %q", got)
	}
}

// TestRuntimeClose: a closed runtime refuses to load and run.
func TestRuntimeClose(t *testing.T) {
	testRuntime(t)
	rt, err := NewRuntime(RuntimeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := testRegistry(t)
	m, _ := r.Get("chroma-blue")
	model, err := rt.Load(r, m, LoadOptions{FrameWidth: 16, FrameHeight: 16})
	if err != nil {
		t.Fatal(err)
	}
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if err := model.Run(context.Background(), b, 1, nil); err == nil {
		t.Error("ran on a closed runtime")
	}
	if _, err := rt.Load(r, m, LoadOptions{FrameWidth: 16, FrameHeight: 16}); err == nil {
		t.Error("loaded on a closed runtime")
	}
	if err := rt.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestConcurrentRuns shares one cached session between goroutines, each
// with its own batch.
func TestConcurrentRuns(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	m, _ := r.Get("chroma")
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			model, err := rt.Load(r, m, LoadOptions{FrameWidth: 64, FrameHeight: 32})
			if err != nil {
				errs <- err
				return
			}
			defer model.Close()
			b, err := model.NewBatch()
			if err != nil {
				errs <- err
				return
			}
			defer b.Close()
			green := g%2 == 0
			f := toYUV420(64, 32, func(x, y int) [3]float64 {
				if green {
					return [3]float64{0.1, 0.7, 0.2}
				}
				return [3]float64{0.6, 0.5, 0.4}
			})
			for range 20 {
				model.PrepareUV(b.Slot(0), f.u, f.uStride, f.v, f.vStride)
				if err := model.Run(context.Background(), b, 1, nil); err != nil {
					errs <- err
					return
				}
				a := chromaRegionMean(b.Alpha(0), 64, 0, 0, 64, 32)
				if (green && a > 0.01) || (!green && a < 0.99) {
					errs <- errors.New("a goroutine got another goroutine's result")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	rt.mu.Lock()
	n := 0
	for k := range rt.sessions {
		if k.source == "generated:chroma" && k.width == 32 && k.height == 16 { // a 64×32 frame's chroma planes
			n++
		}
	}
	rt.mu.Unlock()
	if n != 1 {
		t.Errorf("%d sessions for one (model, device, shape, batch)", n)
	}
}

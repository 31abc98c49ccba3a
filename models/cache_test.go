package models

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// newCacheRuntime returns a Runtime of its own with the given cache
// capacity, closed after the test.
func newCacheRuntime(t *testing.T, capacity int) *Runtime {
	t.Helper()
	testRuntime(t) // skips or fails when the library is missing
	rt, err := NewRuntime(RuntimeOptions{SessionCache: capacity, Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// runChroma loads the chroma keyer for a w×16 frame, runs one green frame
// through it and checks the matte, and returns the open model.
func runChroma(t *testing.T, rt *Runtime, r *Registry, w int) *Model {
	t.Helper()
	m, _ := r.Get("chroma")
	model, err := rt.Load(r, m, LoadOptions{FrameWidth: w, FrameHeight: 16})
	if err != nil {
		t.Fatal(err)
	}
	checkChromaRun(t, model, w)
	return model
}

// checkChromaRun runs a green frame and a grey frame through a chroma
// model loaded for w×16 and checks that the first is keyed out and the
// second kept.
func checkChromaRun(t *testing.T, model *Model, w int) {
	t.Helper()
	b, err := model.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, green := range []bool{true, false} {
		f := toYUV420(w, 16, func(x, y int) [3]float64 {
			if green {
				return [3]float64{0.1, 0.7, 0.2}
			}
			return [3]float64{0.6, 0.5, 0.4}
		})
		model.PrepareUV(b.Slot(0), f.u, f.uStride, f.v, f.vStride)
		if err := model.Run(context.Background(), b, 1, nil); err != nil {
			t.Fatal(err)
		}
		a := chromaRegionMean(b.Alpha(0), w, 0, 0, w, 16)
		if (green && a > 0.01) || (!green && a < 0.99) {
			t.Fatalf("width %d: green %v keyed to alpha %.3f", w, green, a)
		}
	}
}

func closeModel(t *testing.T, m *Model) {
	t.Helper()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSessionCacheCapacity: jobs at six distinct frame sizes through a
// cache of 2 keep at most 2 sessions alive; the least recently used one
// goes first; a size still cached is not created again.
func TestSessionCacheCapacity(t *testing.T) {
	rt := newCacheRuntime(t, 2)
	r := testRegistry(t)
	if rt.SessionCapacity() != 2 {
		t.Fatalf("capacity %d", rt.SessionCapacity())
	}
	widths := []int{16, 32, 48, 64, 80, 96}
	for i, w := range widths {
		closeModel(t, runChroma(t, rt, r, w))
		st := rt.Stats()
		if st.Live > 2 || st.Cached > 2 || st.InUse != 0 {
			t.Fatalf("after %d sizes: %+v, want at most 2 live sessions", i+1, st)
		}
		if st.Created != i+1 || st.Destroyed != max(i+1-2, 0) {
			t.Fatalf("after %d sizes: %+v", i+1, st)
		}
	}
	// 80 and 96 are cached: using 80 again creates nothing and makes 96
	// the least recently used, so 16 evicts 96, not 80.
	closeModel(t, runChroma(t, rt, r, 80))
	if st := rt.Stats(); st.Created != 6 {
		t.Fatalf("a cached size was created again: %+v", st)
	}
	closeModel(t, runChroma(t, rt, r, 16))
	closeModel(t, runChroma(t, rt, r, 80))
	if st := rt.Stats(); st.Created != 7 || st.Live != 2 || st.Destroyed != 5 {
		t.Fatalf("LRU order not kept: %+v (want 80 still cached)", st)
	}
	if err := rt.Close(); err != nil {
		t.Fatal(err)
	}
	if st := rt.Stats(); st.Live != 0 || st.Cached != 0 || st.Destroyed != st.Created {
		t.Fatalf("after Close: %+v", st)
	}
}

// TestSessionHeldSurvivesEviction: with every cached session held by an
// open model, a new size evicts the least recently used one from the cache
// but does not destroy it; its model keeps running correctly, and the
// session is destroyed when that model is closed. Idle sessions are
// evicted before held ones.
func TestSessionHeldSurvivesEviction(t *testing.T) {
	rt := newCacheRuntime(t, 2)
	r := testRegistry(t)
	a := runChroma(t, rt, r, 16)
	b := runChroma(t, rt, r, 32)
	c := runChroma(t, rt, r, 48) // both cached sessions held: 16 leaves the cache
	st := rt.Stats()
	if st.Cached != 2 || st.Live != 3 || st.InUse != 3 || st.Destroyed != 0 {
		t.Fatalf("three held sessions, capacity 2: %+v", st)
	}
	checkChromaRun(t, a, 16) // the evicted session still runs
	closeModel(t, a)         // its last user: destroyed now
	st = rt.Stats()
	if st.Live != 2 || st.Cached != 2 || st.Destroyed != 1 || st.InUse != 2 {
		t.Fatalf("after closing the evicted session's last user: %+v", st)
	}
	checkChromaRun(t, b, 32)

	// An idle session goes before a held one, even a more recently used
	// one: b (least recently used) stays held, c becomes idle, a new size
	// evicts c.
	closeModel(t, c)
	d := runChroma(t, rt, r, 64)
	st = rt.Stats()
	if st.Live != 2 || st.Cached != 2 || st.InUse != 2 || st.Destroyed != 2 {
		t.Fatalf("idle session not evicted first: %+v", st)
	}
	b2 := runChroma(t, rt, r, 32)
	if st := rt.Stats(); st.Created != 4 {
		t.Fatalf("the held session was evicted instead of the idle one: %+v", st)
	}
	closeModel(t, b2)
	closeModel(t, b)
	closeModel(t, d)
	if st := rt.Stats(); st.InUse != 0 || st.Live != 2 {
		t.Fatalf("at the end: %+v", st)
	}
}

// TestModelReleaseTwice: closing a model twice is an error and leaves the
// session's count alone (another model on the same session keeps it
// alive through eviction); using a closed model is an error; releasing a
// session more often than it was acquired panics.
func TestModelReleaseTwice(t *testing.T) {
	rt := newCacheRuntime(t, 1)
	r := testRegistry(t)
	first := runChroma(t, rt, r, 16)
	second := runChroma(t, rt, r, 16)
	if st := rt.Stats(); st.Created != 1 || st.InUse != 1 {
		t.Fatalf("two models on one size: %+v", st)
	}
	b, err := first.NewBatch()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	closeModel(t, first)
	err = first.Close()
	if !errors.Is(err, ErrModelClosed) || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("second Close: %v", err)
	}
	if err := first.Run(context.Background(), b, 1, nil); !errors.Is(err, ErrModelClosed) {
		t.Fatalf("Run after Close: %v", err)
	}
	if _, err := first.NewBatch(); !errors.Is(err, ErrModelClosed) {
		t.Fatalf("NewBatch after Close: %v", err)
	}
	// Evict the 16 session: had the double Close given back second's
	// hold, it would be destroyed under second now.
	closeModel(t, runChroma(t, rt, r, 32))
	if st := rt.Stats(); st.Destroyed != 0 || st.Live != 2 || st.Cached != 1 || st.InUse != 1 {
		t.Fatalf("after evicting the held session: %+v", st)
	}
	checkChromaRun(t, second, 16)
	sess := second.sess
	closeModel(t, second)
	if st := rt.Stats(); st.Live != 1 || st.Destroyed != 1 {
		t.Fatalf("the evicted session outlived its last user: %+v", st)
	}

	func() {
		defer func() {
			p := recover()
			if p == nil || !strings.Contains(p.(string), "released more often than acquired") {
				t.Errorf("releasing a released session: recover() = %v", p)
			}
		}()
		rt.release(sess)
	}()
}

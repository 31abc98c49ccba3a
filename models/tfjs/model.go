// Package tfjs converts TensorFlow.js graph models (model.json and its
// binary weight shards) to ONNX (opset 17) with vidmatte's ONNX writer.
//
// The converted graph keeps TensorFlow's NHWC layout: only convolutions
// and pools, which ONNX defines on NCHW, are wrapped in Transposes (ONNX
// Runtime's optimizer cancels most of them). Weights are dequantized
// (uint8/uint16 with a per-tensor min and scale, or float16) to float32
// once, at conversion; integer tensors become int64. Switch/Merge control
// flow is folded under assumptions the caller states (Options.Below), each
// SpaceToBatchND → depthwise/regular convolution → BatchToSpaceND becomes
// one dilated convolution, and the graph is built lazily from the
// requested outputs, so no dead node is written. An operator the converter
// does not know is an error naming it and the node.
package tfjs

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Model is a parsed TensorFlow.js graph model with its weights decoded.
type Model struct {
	Nodes []*Node
	// Signature maps signature keys (e.g. "pha") to tensor names
	// ("Identity_1:0"), for inputs and outputs.
	Inputs, Outputs []SignatureEntry
	// Weights holds the value of every Const node, by node name.
	Weights map[string]*Tensor
	// Producer is the TensorFlow graph version the model was exported
	// from (modelTopology.versions.producer), 0 when absent.
	Producer int

	byName map[string]*Node
}

// SignatureEntry is one input or output of the model's signature.
type SignatureEntry struct {
	Key   string // the signature key, e.g. "pha" or "input_1:0"
	Name  string // the tensor, e.g. "Identity_1:0"
	DType string // e.g. "DT_FLOAT"
	// Shape is nil when the rank is unknown; -1 marks a dynamic size.
	Shape []int64
}

// Node is one node of the graph.
type Node struct {
	Name   string
	Op     string
	Inputs []string // "name", "name:k" or "^name" (a control input)
	Attr   map[string]Attr
}

// Attr is a node attribute as model.json writes it (the JSON form of
// TensorFlow's AttrValue).
type Attr struct {
	S      []byte     `json:"s"` // base64 in the JSON
	I      jsonInt    `json:"i"`
	F      float64    `json:"f"`
	B      bool       `json:"b"`
	Type   string     `json:"type"`
	List   *attrList  `json:"list"`
	Shape  *shapeJSON `json:"shape"`
	Tensor *struct {
		DType       string    `json:"dtype"`
		TensorShape shapeJSON `json:"tensorShape"`
	} `json:"tensor"`
}

type attrList struct {
	I    []jsonInt `json:"i"`
	S    [][]byte  `json:"s"`
	F    []float64 `json:"f"`
	B    []bool    `json:"b"`
	Type []string  `json:"type"`
}

type shapeJSON struct {
	Dim []struct {
		Size jsonInt `json:"size"`
	} `json:"dim"`
	UnknownRank bool `json:"unknownRank"`
}

func (s *shapeJSON) dims() []int64 {
	if s == nil || s.UnknownRank {
		return nil
	}
	d := make([]int64, len(s.Dim))
	for i, x := range s.Dim {
		d[i] = int64(x.Size)
	}
	return d
}

// jsonInt reads an integer written as a JSON string ("2", as protobuf's
// JSON mapping writes int64) or a number.
type jsonInt int64

func (j *jsonInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*j = jsonInt(v)
	return nil
}

// Ints returns the attribute's list of integers.
func (a Attr) Ints() []int64 {
	if a.List == nil {
		return nil
	}
	v := make([]int64, len(a.List.I))
	for i, x := range a.List.I {
		v[i] = int64(x)
	}
	return v
}

// Strings returns the attribute's list of strings.
func (a Attr) Strings() []string {
	if a.List == nil {
		return nil
	}
	v := make([]string, len(a.List.S))
	for i, x := range a.List.S {
		v[i] = string(x)
	}
	return v
}

// DType is a tensor element type as the weights manifest names it.
type DType string

// The element types of decoded tensors.
const (
	Float32 DType = "float32"
	Int32   DType = "int32"
	Bool    DType = "bool"
)

// Tensor is a decoded constant: float32 values in F, int32 values (as
// int64) in I, booleans in B.
type Tensor struct {
	DType DType
	Shape []int64
	F     []float32
	I     []int64
	B     []bool
}

// Len returns the number of elements.
func (t *Tensor) Len() int {
	switch t.DType {
	case Float32:
		return len(t.F)
	case Int32:
		return len(t.I)
	}
	return len(t.B)
}

type modelJSON struct {
	Format        string `json:"format"`
	ModelTopology struct {
		Node     []nodeJSON `json:"node"`
		Versions struct {
			Producer int `json:"producer"`
		} `json:"versions"`
	} `json:"modelTopology"`
	Signature struct {
		Inputs  map[string]sigJSON `json:"inputs"`
		Outputs map[string]sigJSON `json:"outputs"`
	} `json:"signature"`
	WeightsManifest []struct {
		Paths   []string     `json:"paths"`
		Weights []weightJSON `json:"weights"`
	} `json:"weightsManifest"`
}

type nodeJSON struct {
	Name  string          `json:"name"`
	Op    string          `json:"op"`
	Input []string        `json:"input"`
	Attr  map[string]Attr `json:"attr"`
}

type sigJSON struct {
	Name        string    `json:"name"`
	DType       string    `json:"dtype"`
	TensorShape shapeJSON `json:"tensorShape"`
}

type weightJSON struct {
	Name         string  `json:"name"`
	Shape        []int64 `json:"shape"`
	DType        string  `json:"dtype"`
	Quantization *struct {
		DType string  `json:"dtype"`
		Min   float64 `json:"min"`
		Scale float64 `json:"scale"`
	} `json:"quantization"`
}

// Load reads a graph model: model.json at path and the weight shards its
// manifest names, next to it.
func Load(path string) (*Model, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tfjs: %w", err)
	}
	var mj modelJSON
	if err := json.Unmarshal(data, &mj); err != nil {
		return nil, fmt.Errorf("tfjs: %s is not a TensorFlow.js model.json: %w", path, err)
	}
	if mj.Format != "graph-model" {
		return nil, fmt.Errorf("tfjs: %s has format %q; only graph models (\"graph-model\") can be converted", path, mj.Format)
	}
	if len(mj.ModelTopology.Node) == 0 {
		return nil, fmt.Errorf("tfjs: %s has no graph nodes", path)
	}
	m := &Model{Weights: map[string]*Tensor{}, byName: map[string]*Node{}, Producer: mj.ModelTopology.Versions.Producer}
	for _, nj := range mj.ModelTopology.Node {
		if nj.Name == "" || nj.Op == "" {
			return nil, fmt.Errorf("tfjs: %s: a node without a name or op", path)
		}
		if _, dup := m.byName[nj.Name]; dup {
			return nil, fmt.Errorf("tfjs: %s: two nodes are called %q", path, nj.Name)
		}
		n := &Node{Name: nj.Name, Op: nj.Op, Inputs: nj.Input, Attr: nj.Attr}
		if n.Attr == nil {
			n.Attr = map[string]Attr{}
		}
		m.Nodes = append(m.Nodes, n)
		m.byName[n.Name] = n
	}
	m.Inputs = signature(mj.Signature.Inputs)
	m.Outputs = signature(mj.Signature.Outputs)

	// The shards of all groups, concatenated in manifest order, hold the
	// weights back to back.
	var blob []byte
	dir := filepath.Dir(path)
	for _, g := range mj.WeightsManifest {
		for _, p := range g.Paths {
			if filepath.IsAbs(p) || strings.Contains(p, "..") {
				return nil, fmt.Errorf("tfjs: %s: weight shard path %q leaves the model's folder", path, p)
			}
			b, err := os.ReadFile(filepath.Join(dir, p))
			if err != nil {
				return nil, fmt.Errorf("tfjs: weight shard of %s: %w", path, err)
			}
			blob = append(blob, b...)
		}
	}
	off := 0
	for _, g := range mj.WeightsManifest {
		for _, w := range g.Weights {
			t, n, err := decodeWeight(w, blob[off:])
			if err != nil {
				return nil, fmt.Errorf("tfjs: %s: weight %q: %w", path, w.Name, err)
			}
			off += n
			m.Weights[w.Name] = t
		}
	}
	if off != len(blob) {
		return nil, fmt.Errorf("tfjs: %s: the manifest describes %d bytes of weights, the shards hold %d", path, off, len(blob))
	}
	return m, nil
}

func signature(s map[string]sigJSON) []SignatureEntry {
	var out []SignatureEntry
	for k, v := range s {
		out = append(out, SignatureEntry{Key: k, Name: v.Name, DType: v.DType, Shape: v.TensorShape.dims()})
	}
	// Map order is random: sort by key for a stable graph.
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Key < out[j-1].Key; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// decodeWeight decodes one weight from the start of b and returns it with
// the number of bytes it took.
func decodeWeight(w weightJSON, b []byte) (*Tensor, int, error) {
	n := 1
	for _, d := range w.Shape {
		if d < 0 {
			return nil, 0, fmt.Errorf("negative dimension in shape %v", w.Shape)
		}
		n *= int(d)
	}
	t := &Tensor{Shape: append([]int64{}, w.Shape...)}
	need := func(size int) error {
		if len(b) < n*size {
			return fmt.Errorf("needs %d bytes, the shards have %d left", n*size, len(b))
		}
		return nil
	}
	if q := w.Quantization; q != nil {
		if w.DType != "float32" {
			return nil, 0, fmt.Errorf("quantized %s weights are not supported (only float32)", w.DType)
		}
		t.DType = Float32
		t.F = make([]float32, n)
		switch q.DType {
		case "uint8":
			if err := need(1); err != nil {
				return nil, 0, err
			}
			for i := range n {
				t.F[i] = float32(q.Min + q.Scale*float64(b[i]))
			}
			return t, n, nil
		case "uint16":
			if err := need(2); err != nil {
				return nil, 0, err
			}
			for i := range n {
				t.F[i] = float32(q.Min + q.Scale*float64(binary.LittleEndian.Uint16(b[2*i:])))
			}
			return t, 2 * n, nil
		case "float16":
			if err := need(2); err != nil {
				return nil, 0, err
			}
			for i := range n {
				t.F[i] = halfToFloat(binary.LittleEndian.Uint16(b[2*i:]))
			}
			return t, 2 * n, nil
		}
		return nil, 0, fmt.Errorf("unknown quantization %q", q.DType)
	}
	switch w.DType {
	case "float32":
		if err := need(4); err != nil {
			return nil, 0, err
		}
		t.DType = Float32
		t.F = make([]float32, n)
		for i := range n {
			t.F[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return t, 4 * n, nil
	case "int32":
		if err := need(4); err != nil {
			return nil, 0, err
		}
		t.DType = Int32
		t.I = make([]int64, n)
		for i := range n {
			t.I[i] = int64(int32(binary.LittleEndian.Uint32(b[4*i:])))
		}
		return t, 4 * n, nil
	case "bool":
		if err := need(1); err != nil {
			return nil, 0, err
		}
		t.DType = Bool
		t.B = make([]bool, n)
		for i := range n {
			t.B[i] = b[i] != 0
		}
		return t, n, nil
	}
	return nil, 0, fmt.Errorf("unsupported dtype %q", w.DType)
}

// halfToFloat converts an IEEE 754 half-precision value.
func halfToFloat(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h) & 0x3ff
	switch {
	case exp == 0 && mant == 0:
		return math.Float32frombits(sign)
	case exp == 0: // subnormal
		f := float32(mant) / 1024 * float32(math.Pow(2, -14))
		if sign != 0 {
			return -f
		}
		return f
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
}

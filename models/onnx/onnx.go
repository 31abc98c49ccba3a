// Package onnx owns the ONNX file format as vidmatte needs it: the
// ModelProto protobuf encoded and decoded by hand with protowire (no
// generated code), a small graph builder for the models the project makes
// itself (the chroma keyer, the RVM-signature test model), and the rewrites
// applied to downloaded models (making the batch dimension symbolic).
//
// Decoding keeps every field it does not model as raw bytes and writes them
// back unchanged, so Decode followed by Marshal preserves a model that uses
// features this package knows nothing about.
package onnx

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DataType is an ONNX tensor element type (TensorProto.DataType).
type DataType int32

// The element types used by vidmatte's graphs and rewrites.
const (
	Undefined DataType = 0
	Float     DataType = 1
	Uint8     DataType = 2
	Int8      DataType = 3
	Int32     DataType = 6
	Int64     DataType = 7
	Bool      DataType = 9
	Float16   DataType = 10
	Double    DataType = 11
)

// String returns the ONNX name of the type.
func (t DataType) String() string {
	switch t {
	case Undefined:
		return "undefined"
	case Float:
		return "float"
	case Uint8:
		return "uint8"
	case Int8:
		return "int8"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Bool:
		return "bool"
	case Float16:
		return "float16"
	case Double:
		return "double"
	}
	return fmt.Sprintf("type(%d)", int32(t))
}

// AttrType is an ONNX attribute type (AttributeProto.AttributeType).
type AttrType int32

// The attribute types this package reads and writes. Other types (graphs,
// sparse tensors, type protos) are kept as raw bytes by Decode.
const (
	AttrFloat   AttrType = 1
	AttrInt     AttrType = 2
	AttrString  AttrType = 3
	AttrTensor  AttrType = 4
	AttrGraph   AttrType = 5
	AttrFloats  AttrType = 6
	AttrInts    AttrType = 7
	AttrStrings AttrType = 8
)

// Dim is one dimension of a value's shape: a fixed size (Value > 0), a
// symbolic one (Param, e.g. "N"), or unknown (both zero).
type Dim struct {
	Value int64
	Param string

	extra []byte
}

// Fixed returns a dimension of size n.
func Fixed(n int64) Dim { return Dim{Value: n} }

// Symbolic returns a dimension named p whose size is known at run time.
func Symbolic(p string) Dim { return Dim{Param: p} }

// String returns the size, the name, or "?".
func (d Dim) String() string {
	switch {
	case d.Param != "":
		return d.Param
	case d.Value > 0:
		return fmt.Sprint(d.Value)
	}
	return "?"
}

// ValueInfo names a graph input, output or intermediate value and gives its
// tensor element type and shape. Shape nil means the rank is unknown.
type ValueInfo struct {
	Name  string
	Type  DataType
	Shape []Dim

	// hasShape records whether the shape field was present, which
	// distinguishes "rank unknown" from "a scalar".
	hasShape bool
	// typeExtra holds TypeProto fields other than tensor_type (sequence,
	// map, optional…); when set the value is not a plain tensor.
	typeExtra   []byte
	tensorExtra []byte
	shapeExtra  []byte
	extra       []byte
}

// TensorValue returns the description of a tensor value.
func TensorValue(name string, t DataType, shape ...Dim) ValueInfo {
	return ValueInfo{Name: name, Type: t, Shape: shape, hasShape: true}
}

// ShapeString returns the shape as "[N,3,1024,1024]".
func (v ValueInfo) ShapeString() string {
	if v.Shape == nil && !v.hasShape {
		return "[?]"
	}
	s := "["
	for i, d := range v.Shape {
		if i > 0 {
			s += ","
		}
		s += d.String()
	}
	return s + "]"
}

// Tensor is a constant tensor: an initializer or the value of a Constant
// node. Its data is kept as ONNX's little-endian raw bytes; typed data
// fields of a decoded file are converted to raw on Decode.
type Tensor struct {
	Name string
	Type DataType
	Dims []int64
	Raw  []byte

	// external is true when the data lives outside the file
	// (data_location EXTERNAL); Raw is then empty and extra holds the
	// external_data entries.
	external bool
	extra    []byte
}

// External reports whether the tensor's data is stored outside the model
// file.
func (t *Tensor) External() bool { return t.external }

// Len returns the number of elements the dims describe.
func (t *Tensor) Len() int64 {
	n := int64(1)
	for _, d := range t.Dims {
		n *= d
	}
	return n
}

// FloatTensor returns a float32 tensor with the given dims and values.
func FloatTensor(name string, dims []int64, v ...float32) *Tensor {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return &Tensor{Name: name, Type: Float, Dims: dims, Raw: raw}
}

// Int64Tensor returns an int64 tensor with the given dims and values.
func Int64Tensor(name string, dims []int64, v ...int64) *Tensor {
	raw := make([]byte, 8*len(v))
	for i, n := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(n))
	}
	return &Tensor{Name: name, Type: Int64, Dims: dims, Raw: raw}
}

// Int64s returns the values of an int64 (or int32) tensor.
func (t *Tensor) Int64s() ([]int64, error) {
	switch t.Type {
	case Int64:
		if len(t.Raw)%8 != 0 {
			return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes is not a whole number of int64", t.Name, len(t.Raw))
		}
		v := make([]int64, len(t.Raw)/8)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(t.Raw[8*i:]))
		}
		return v, nil
	case Int32:
		if len(t.Raw)%4 != 0 {
			return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes is not a whole number of int32", t.Name, len(t.Raw))
		}
		v := make([]int64, len(t.Raw)/4)
		for i := range v {
			v[i] = int64(int32(binary.LittleEndian.Uint32(t.Raw[4*i:])))
		}
		return v, nil
	}
	return nil, fmt.Errorf("onnx: tensor %q is %s, not an integer tensor", t.Name, t.Type)
}

// Floats returns the values of a float32 tensor.
func (t *Tensor) Floats() ([]float32, error) {
	if t.Type != Float {
		return nil, fmt.Errorf("onnx: tensor %q is %s, not float", t.Name, t.Type)
	}
	if len(t.Raw)%4 != 0 {
		return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes is not a whole number of float32", t.Name, len(t.Raw))
	}
	v := make([]float32, len(t.Raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Raw[4*i:]))
	}
	return v, nil
}

// Attr is a node attribute. Only the field that Type names is meaningful.
type Attr struct {
	Name    string
	Type    AttrType
	F       float32
	I       int64
	S       []byte
	T       *Tensor
	Floats  []float32
	Ints    []int64
	Strings [][]byte

	extra []byte
}

// IntAttr returns an integer attribute.
func IntAttr(name string, v int64) Attr { return Attr{Name: name, Type: AttrInt, I: v} }

// FloatAttr returns a float attribute.
func FloatAttr(name string, v float32) Attr { return Attr{Name: name, Type: AttrFloat, F: v} }

// StringAttr returns a string attribute.
func StringAttr(name, v string) Attr { return Attr{Name: name, Type: AttrString, S: []byte(v)} }

// IntsAttr returns an attribute holding a list of integers.
func IntsAttr(name string, v ...int64) Attr { return Attr{Name: name, Type: AttrInts, Ints: v} }

// FloatsAttr returns an attribute holding a list of floats.
func FloatsAttr(name string, v ...float32) Attr {
	return Attr{Name: name, Type: AttrFloats, Floats: v}
}

// TensorAttr returns a tensor attribute (the "value" of a Constant node).
func TensorAttr(name string, t *Tensor) Attr { return Attr{Name: name, Type: AttrTensor, T: t} }

// Node is one operator application.
type Node struct {
	Op      string
	Name    string
	Domain  string
	Inputs  []string
	Outputs []string
	Attrs   []Attr

	extra []byte
}

// Attr returns the attribute called name, or nil.
func (n *Node) Attr(name string) *Attr {
	for i := range n.Attrs {
		if n.Attrs[i].Name == name {
			return &n.Attrs[i]
		}
	}
	return nil
}

// Graph is a computation graph: nodes in topological order, constant
// initializers, and the graph's inputs and outputs.
type Graph struct {
	Name         string
	Nodes        []*Node
	Initializers []*Tensor
	Inputs       []ValueInfo
	Outputs      []ValueInfo
	ValueInfo    []ValueInfo

	extra []byte
}

// Initializer returns the initializer called name, or nil.
func (g *Graph) Initializer(name string) *Tensor {
	for _, t := range g.Initializers {
		if t.Name == name {
			return t
		}
	}
	return nil
}

// Producer returns the node that outputs name, or nil when name is a graph
// input, an initializer or unknown.
func (g *Graph) Producer(name string) *Node {
	for _, n := range g.Nodes {
		for _, o := range n.Outputs {
			if o == name {
				return n
			}
		}
	}
	return nil
}

// Constant returns the constant tensor name refers to (an initializer or
// the output of a Constant node holding a tensor), or nil.
func (g *Graph) Constant(name string) *Tensor {
	if t := g.Initializer(name); t != nil {
		return t
	}
	if n := g.Producer(name); n != nil && n.Op == "Constant" && n.Domain == "" {
		if a := n.Attr("value"); a != nil && a.Type == AttrTensor {
			return a.T
		}
	}
	return nil
}

// OpsetImport is one operator set the model uses.
type OpsetImport struct {
	Domain  string
	Version int64
}

// Model is an ONNX model (ModelProto).
type Model struct {
	IRVersion       int64
	ProducerName    string
	ProducerVersion string
	Domain          string
	ModelVersion    int64
	DocString       string
	Opsets          []OpsetImport
	Graph           *Graph
	// Metadata is the model's metadata_props, in file order.
	Metadata [][2]string

	extra []byte
}

// Opset returns the version of the default ("" or "ai.onnx") operator set,
// or 0 when the model does not import it.
func (m *Model) Opset() int64 {
	for _, o := range m.Opsets {
		if o.Domain == "" || o.Domain == "ai.onnx" {
			return o.Version
		}
	}
	return 0
}

// Package onnx owns the ONNX file format as vidmatte needs it: the
// ModelProto protobuf messages generated from ONNX's own onnx.proto3
// (package onnxpb), a small graph builder for the models the project makes
// itself (the chroma keyer, the RVM-signature test model, the graphs
// converted from TensorFlow.js), and the rewrites applied to downloaded
// models (making the batch dimension symbolic, pruning outputs, byte
// inputs and outputs).
//
// The types below are the generated messages under shorter names; the
// functions read and write the parts of them vidmatte uses. Decode and
// Marshal are proto.Unmarshal and proto.Marshal: fields that the ONNX
// version the messages come from does not know are kept by protobuf as
// unknown fields and written back unchanged.
package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/proto"

	"vidmatte/models/onnx/onnxpb"
)

// The ONNX messages vidmatte reads and writes.
type (
	// Model is an ONNX model (ModelProto).
	Model = onnxpb.ModelProto
	// Graph is a computation graph (GraphProto): nodes, constant
	// initializers, and the graph's inputs and outputs.
	Graph = onnxpb.GraphProto
	// Node is one operator application (NodeProto).
	Node = onnxpb.NodeProto
	// Attr is a node attribute (AttributeProto).
	Attr = onnxpb.AttributeProto
	// Tensor is a constant tensor (TensorProto): an initializer or the
	// value of a Constant node.
	Tensor = onnxpb.TensorProto
	// ValueInfo names a graph input, output or intermediate value and
	// gives its type (ValueInfoProto).
	ValueInfo = onnxpb.ValueInfoProto
)

// DataType is an ONNX tensor element type (TensorProto.DataType).
type DataType = onnxpb.TensorProto_DataType

// The element types used by vidmatte's graphs and rewrites.
const (
	Undefined = onnxpb.TensorProto_UNDEFINED
	Float     = onnxpb.TensorProto_FLOAT
	Uint8     = onnxpb.TensorProto_UINT8
	Int8      = onnxpb.TensorProto_INT8
	Int32     = onnxpb.TensorProto_INT32
	Int64     = onnxpb.TensorProto_INT64
	Bool      = onnxpb.TensorProto_BOOL
	Float16   = onnxpb.TensorProto_FLOAT16
	Double    = onnxpb.TensorProto_DOUBLE
)

// AttrType is an ONNX attribute type (AttributeProto.AttributeType).
type AttrType = onnxpb.AttributeProto_AttributeType

// The attribute types the builder writes, and the graph-valued ones the
// rewrites must recognise.
const (
	AttrFloat   = onnxpb.AttributeProto_FLOAT
	AttrInt     = onnxpb.AttributeProto_INT
	AttrString  = onnxpb.AttributeProto_STRING
	AttrTensor  = onnxpb.AttributeProto_TENSOR
	AttrGraph   = onnxpb.AttributeProto_GRAPH
	AttrFloats  = onnxpb.AttributeProto_FLOATS
	AttrInts    = onnxpb.AttributeProto_INTS
	AttrStrings = onnxpb.AttributeProto_STRINGS
	AttrGraphs  = onnxpb.AttributeProto_GRAPHS
)

// Decode parses an ONNX file. The result does not refer to data (protobuf
// copies tensor bytes), so the caller may drop data once it returns.
func Decode(data []byte) (*Model, error) {
	m := &Model{}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("onnx: decoding model: %w", err)
	}
	if m.Graph == nil {
		return nil, errors.New("onnx: decoding model: no graph (is this an ONNX file?)")
	}
	return m, nil
}

// Marshal encodes the model as an ONNX file.
func Marshal(m *Model) ([]byte, error) {
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("onnx: encoding model: %w", err)
	}
	return b, nil
}

// Opset returns the version of the default ("" or "ai.onnx") operator set,
// or 0 when the model does not import it.
func Opset(m *Model) int64 {
	for _, o := range m.GetOpsetImport() {
		if o.GetDomain() == "" || o.GetDomain() == "ai.onnx" {
			return o.GetVersion()
		}
	}
	return 0
}

// AddMetadata appends key/value pairs to the model's metadata_props.
func AddMetadata(m *Model, kv ...[2]string) {
	for _, p := range kv {
		m.MetadataProps = append(m.MetadataProps, &onnxpb.StringStringEntryProto{Key: p[0], Value: p[1]})
	}
}

// Metadata returns the value of the metadata_props entry key (the last one
// when there are several) and whether there is one.
func Metadata(m *Model, key string) (string, bool) {
	v, ok := "", false
	for _, p := range m.GetMetadataProps() {
		if p.GetKey() == key {
			v, ok = p.GetValue(), true
		}
	}
	return v, ok
}

// Dim describes one dimension of a value's shape: a fixed size
// (Value > 0), a symbolic one (Param, e.g. "N"), or unknown (both zero).
type Dim struct {
	Value int64
	Param string
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

func (d Dim) proto() *onnxpb.TensorShapeProto_Dimension {
	switch {
	case d.Param != "":
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: d.Param}}
	case d.Value != 0:
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: d.Value}}
	}
	return &onnxpb.TensorShapeProto_Dimension{}
}

// TensorValue returns the description of a tensor value of the given
// shape (no dims: a scalar).
func TensorValue(name string, t DataType, shape ...Dim) *ValueInfo {
	dims := make([]*onnxpb.TensorShapeProto_Dimension, len(shape))
	for i, d := range shape {
		dims[i] = d.proto()
	}
	return &ValueInfo{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(t), Shape: &onnxpb.TensorShapeProto{Dim: dims}},
	}}}
}

// AnyRankValue returns the description of a tensor value whose rank is
// not known (no shape in its type).
func AnyRankValue(name string, t DataType) *ValueInfo {
	return &ValueInfo{Name: name, Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
		TensorType: &onnxpb.TypeProto_Tensor{ElemType: int32(t)},
	}}}
}

// ElemType returns the element type of a tensor value (Undefined when v
// is not a tensor).
func ElemType(v *ValueInfo) DataType {
	return DataType(v.GetType().GetTensorType().GetElemType())
}

// Shape returns the dimensions of a tensor value; nil when its rank is
// unknown (or v is not a tensor), empty for a scalar.
func Shape(v *ValueInfo) []Dim {
	s := v.GetType().GetTensorType().GetShape()
	if s == nil {
		return nil
	}
	dims := make([]Dim, len(s.Dim))
	for i, d := range s.Dim {
		dims[i] = Dim{Value: d.GetDimValue(), Param: d.GetDimParam()}
	}
	return dims
}

// SetDim replaces dimension i of a tensor value's shape, keeping the
// dimension's denotation.
func SetDim(v *ValueInfo, i int, d Dim) {
	old := v.GetType().GetTensorType().GetShape().GetDim()[i]
	old.Value = d.proto().Value
}

// ShapeString returns the shape as "[N,3,1024,1024]" ("[?]" when the rank
// is unknown).
func ShapeString(v *ValueInfo) string {
	dims := Shape(v)
	if dims == nil {
		return "[?]"
	}
	s := "["
	for i, d := range dims {
		if i > 0 {
			s += ","
		}
		s += d.String()
	}
	return s + "]"
}

// External reports whether the tensor's data is stored outside the model
// file (data_location EXTERNAL).
func External(t *Tensor) bool {
	return t.GetDataLocation() == onnxpb.TensorProto_EXTERNAL
}

// Len returns the number of elements the tensor's dims describe.
func Len(t *Tensor) int64 {
	n := int64(1)
	for _, d := range t.GetDims() {
		n *= d
	}
	return n
}

// Type returns the tensor's element type.
func Type(t *Tensor) DataType { return DataType(t.GetDataType()) }

// RawTensor returns a tensor of element type dt whose data is raw, ONNX's
// little-endian encoding of the elements.
func RawTensor(name string, dt DataType, dims []int64, raw []byte) *Tensor {
	return &Tensor{Name: name, DataType: int32(dt), Dims: dims, RawData: raw}
}

// FloatTensor returns a float32 tensor with the given dims and values.
func FloatTensor(name string, dims []int64, v ...float32) *Tensor {
	raw := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	return RawTensor(name, Float, dims, raw)
}

// Int64Tensor returns an int64 tensor with the given dims and values.
func Int64Tensor(name string, dims []int64, v ...int64) *Tensor {
	raw := make([]byte, 8*len(v))
	for i, n := range v {
		binary.LittleEndian.PutUint64(raw[8*i:], uint64(n))
	}
	return RawTensor(name, Int64, dims, raw)
}

// Int64s returns the values of an int64 (or int32) tensor, from raw_data
// or from the typed field.
func Int64s(t *Tensor) ([]int64, error) {
	if External(t) {
		return nil, fmt.Errorf("onnx: tensor %q: its data is in an external file", t.GetName())
	}
	raw := t.GetRawData()
	switch Type(t) {
	case Int64:
		if raw == nil {
			return append([]int64(nil), t.GetInt64Data()...), nil
		}
		if len(raw)%8 != 0 {
			return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes is not a whole number of int64", t.GetName(), len(raw))
		}
		v := make([]int64, len(raw)/8)
		for i := range v {
			v[i] = int64(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return v, nil
	case Int32:
		if raw == nil {
			v := make([]int64, len(t.GetInt32Data()))
			for i, x := range t.GetInt32Data() {
				v[i] = int64(x)
			}
			return v, nil
		}
		if len(raw)%4 != 0 {
			return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes is not a whole number of int32", t.GetName(), len(raw))
		}
		v := make([]int64, len(raw)/4)
		for i := range v {
			v[i] = int64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
		return v, nil
	}
	return nil, fmt.Errorf("onnx: tensor %q is %s, not an integer tensor", t.GetName(), Type(t))
}

// Floats returns the values of a float32 tensor, from raw_data or from
// float_data.
func Floats(t *Tensor) ([]float32, error) {
	if Type(t) != Float {
		return nil, fmt.Errorf("onnx: tensor %q is %s, not float", t.GetName(), Type(t))
	}
	if External(t) {
		return nil, fmt.Errorf("onnx: tensor %q: its data is in an external file", t.GetName())
	}
	raw := t.GetRawData()
	if raw == nil {
		return append([]float32(nil), t.GetFloatData()...), nil
	}
	if len(raw)%4 != 0 {
		return nil, fmt.Errorf("onnx: tensor %q: %d raw bytes is not a whole number of float32", t.GetName(), len(raw))
	}
	v := make([]float32, len(raw)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v, nil
}

// IntAttr returns an integer attribute.
func IntAttr(name string, v int64) *Attr { return &Attr{Name: name, Type: AttrInt, I: v} }

// FloatAttr returns a float attribute.
func FloatAttr(name string, v float32) *Attr { return &Attr{Name: name, Type: AttrFloat, F: v} }

// StringAttr returns a string attribute.
func StringAttr(name, v string) *Attr { return &Attr{Name: name, Type: AttrString, S: []byte(v)} }

// IntsAttr returns an attribute holding a list of integers.
func IntsAttr(name string, v ...int64) *Attr { return &Attr{Name: name, Type: AttrInts, Ints: v} }

// FloatsAttr returns an attribute holding a list of floats.
func FloatsAttr(name string, v ...float32) *Attr {
	return &Attr{Name: name, Type: AttrFloats, Floats: v}
}

// TensorAttr returns a tensor attribute (the "value" of a Constant node).
func TensorAttr(name string, t *Tensor) *Attr { return &Attr{Name: name, Type: AttrTensor, T: t} }

// NodeAttr returns n's attribute called name, or nil.
func NodeAttr(n *Node, name string) *Attr {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

// Initializer returns g's initializer called name, or nil.
func Initializer(g *Graph, name string) *Tensor {
	for _, t := range g.GetInitializer() {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

// Producer returns the node of g that outputs name, or nil when name is a
// graph input, an initializer or unknown.
func Producer(g *Graph, name string) *Node {
	for _, n := range g.GetNode() {
		for _, o := range n.GetOutput() {
			if o == name {
				return n
			}
		}
	}
	return nil
}

// Constant returns the constant tensor name refers to in g (an
// initializer or the output of a Constant node holding a tensor), or nil.
func Constant(g *Graph, name string) *Tensor {
	if t := Initializer(g, name); t != nil {
		return t
	}
	if n := Producer(g, name); n != nil && n.GetOpType() == "Constant" && n.GetDomain() == "" {
		if a := NodeAttr(n, "value"); a != nil && a.GetType() == AttrTensor {
			return a.GetT()
		}
	}
	return nil
}

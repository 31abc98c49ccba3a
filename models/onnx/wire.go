package onnx

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of onnx.proto (ONNX IR version 8 and later).
const (
	modelIRVersion       = 1
	modelProducerName    = 2
	modelProducerVersion = 3
	modelDomain          = 4
	modelModelVersion    = 5
	modelDocString       = 6
	modelGraph           = 7
	modelOpsetImport     = 8
	modelMetadataProps   = 14

	opsetDomain  = 1
	opsetVersion = 2

	entryKey   = 1
	entryValue = 2

	graphNode        = 1
	graphName        = 2
	graphInitializer = 5
	graphInput       = 11
	graphOutput      = 12
	graphValueInfo   = 13

	nodeInput     = 1
	nodeOutput    = 2
	nodeName      = 3
	nodeOpType    = 4
	nodeAttribute = 5
	nodeDomain    = 7

	attrName    = 1
	attrF       = 2
	attrI       = 3
	attrS       = 4
	attrT       = 5
	attrFloats  = 7
	attrInts    = 8
	attrStrings = 9
	attrType    = 20

	tensorDims         = 1
	tensorDataType     = 2
	tensorFloatData    = 4
	tensorInt32Data    = 5
	tensorInt64Data    = 7
	tensorName         = 8
	tensorRawData      = 9
	tensorDoubleData   = 10
	tensorDataLocation = 14

	valueName = 1
	valueType = 2

	typeTensor = 1

	tensorTypeElem  = 1
	tensorTypeShape = 2

	shapeDim = 1

	dimValue = 1
	dimParam = 2
)

// Marshal encodes the model as an ONNX file.
func (m *Model) Marshal() []byte {
	var graph []byte
	if m.Graph != nil {
		graph = m.Graph.marshal(nil)
	}
	b := make([]byte, 0, len(graph)+1024)
	b = appendInt(b, modelIRVersion, m.IRVersion)
	b = appendString(b, modelProducerName, m.ProducerName)
	b = appendString(b, modelProducerVersion, m.ProducerVersion)
	b = appendString(b, modelDomain, m.Domain)
	b = appendInt(b, modelModelVersion, m.ModelVersion)
	b = appendString(b, modelDocString, m.DocString)
	if m.Graph != nil {
		b = protowire.AppendTag(b, modelGraph, protowire.BytesType)
		b = protowire.AppendBytes(b, graph)
	}
	for _, o := range m.Opsets {
		var ob []byte
		ob = appendString(ob, opsetDomain, o.Domain)
		ob = protowire.AppendTag(ob, opsetVersion, protowire.VarintType)
		ob = protowire.AppendVarint(ob, uint64(o.Version))
		b = appendMessage(b, modelOpsetImport, ob)
	}
	for _, kv := range m.Metadata {
		var eb []byte
		eb = appendString(eb, entryKey, kv[0])
		eb = appendString(eb, entryValue, kv[1])
		b = appendMessage(b, modelMetadataProps, eb)
	}
	return append(b, m.extra...)
}

func (g *Graph) marshal(b []byte) []byte {
	for _, n := range g.Nodes {
		b = appendMessage(b, graphNode, n.marshal(nil))
	}
	b = appendString(b, graphName, g.Name)
	for _, t := range g.Initializers {
		b = appendMessage(b, graphInitializer, t.marshal(nil))
	}
	for _, v := range g.Inputs {
		b = appendMessage(b, graphInput, v.marshal(nil))
	}
	for _, v := range g.Outputs {
		b = appendMessage(b, graphOutput, v.marshal(nil))
	}
	for _, v := range g.ValueInfo {
		b = appendMessage(b, graphValueInfo, v.marshal(nil))
	}
	return append(b, g.extra...)
}

func (n *Node) marshal(b []byte) []byte {
	for _, s := range n.Inputs {
		b = protowire.AppendTag(b, nodeInput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	for _, s := range n.Outputs {
		b = protowire.AppendTag(b, nodeOutput, protowire.BytesType)
		b = protowire.AppendString(b, s)
	}
	b = appendString(b, nodeName, n.Name)
	b = appendString(b, nodeOpType, n.Op)
	for i := range n.Attrs {
		b = appendMessage(b, nodeAttribute, n.Attrs[i].marshal(nil))
	}
	b = appendString(b, nodeDomain, n.Domain)
	return append(b, n.extra...)
}

func (a *Attr) marshal(b []byte) []byte {
	b = appendString(b, attrName, a.Name)
	switch a.Type {
	case AttrFloat:
		b = protowire.AppendTag(b, attrF, protowire.Fixed32Type)
		b = protowire.AppendFixed32(b, math.Float32bits(a.F))
	case AttrInt:
		b = protowire.AppendTag(b, attrI, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(a.I))
	case AttrString:
		b = protowire.AppendTag(b, attrS, protowire.BytesType)
		b = protowire.AppendBytes(b, a.S)
	case AttrTensor:
		if a.T != nil {
			b = appendMessage(b, attrT, a.T.marshal(nil))
		}
	case AttrFloats:
		var p []byte
		for _, f := range a.Floats {
			p = protowire.AppendFixed32(p, math.Float32bits(f))
		}
		b = appendMessage(b, attrFloats, p)
	case AttrInts:
		var p []byte
		for _, v := range a.Ints {
			p = protowire.AppendVarint(p, uint64(v))
		}
		b = appendMessage(b, attrInts, p)
	case AttrStrings:
		for _, s := range a.Strings {
			b = protowire.AppendTag(b, attrStrings, protowire.BytesType)
			b = protowire.AppendBytes(b, s)
		}
	}
	b = protowire.AppendTag(b, attrType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(a.Type))
	return append(b, a.extra...)
}

func (t *Tensor) marshal(b []byte) []byte {
	if len(t.Dims) > 0 {
		var p []byte
		for _, d := range t.Dims {
			p = protowire.AppendVarint(p, uint64(d))
		}
		b = appendMessage(b, tensorDims, p)
	}
	b = protowire.AppendTag(b, tensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(t.Type))
	b = appendString(b, tensorName, t.Name)
	if !t.external {
		b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
		b = protowire.AppendBytes(b, t.Raw)
	}
	return append(b, t.extra...)
}

func (v *ValueInfo) marshal(b []byte) []byte {
	b = appendString(b, valueName, v.Name)
	var tt []byte
	if v.Type != Undefined {
		tt = protowire.AppendTag(tt, tensorTypeElem, protowire.VarintType)
		tt = protowire.AppendVarint(tt, uint64(v.Type))
	}
	if v.Shape != nil || v.hasShape {
		var sb []byte
		for _, d := range v.Shape {
			var db []byte
			if d.Param != "" {
				db = appendString(db, dimParam, d.Param)
			} else if d.Value > 0 {
				db = protowire.AppendTag(db, dimValue, protowire.VarintType)
				db = protowire.AppendVarint(db, uint64(d.Value))
			}
			db = append(db, d.extra...)
			sb = appendMessage(sb, shapeDim, db)
		}
		sb = append(sb, v.shapeExtra...)
		tt = appendMessage(tt, tensorTypeShape, sb)
	}
	tt = append(tt, v.tensorExtra...)
	var typ []byte
	if len(tt) > 0 || v.Type != Undefined {
		typ = appendMessage(typ, typeTensor, tt)
	}
	typ = append(typ, v.typeExtra...)
	if len(typ) > 0 {
		b = appendMessage(b, valueType, typ)
	}
	return append(b, v.extra...)
}

func appendMessage(b []byte, num protowire.Number, m []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, m)
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendInt(b []byte, num protowire.Number, v int64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(v))
}

// Decode parses an ONNX file. Raw tensor data in the result refers to data
// (no copy); fields this package does not model are kept and written back
// by Marshal.
func Decode(data []byte) (*Model, error) {
	m := &Model{}
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, raw []byte) error {
		switch {
		case num == modelIRVersion && typ == protowire.VarintType:
			m.IRVersion = int64(x)
		case num == modelProducerName && typ == protowire.BytesType:
			m.ProducerName = string(v)
		case num == modelProducerVersion && typ == protowire.BytesType:
			m.ProducerVersion = string(v)
		case num == modelDomain && typ == protowire.BytesType:
			m.Domain = string(v)
		case num == modelModelVersion && typ == protowire.VarintType:
			m.ModelVersion = int64(x)
		case num == modelDocString && typ == protowire.BytesType:
			m.DocString = string(v)
		case num == modelGraph && typ == protowire.BytesType:
			g, err := decodeGraph(v)
			if err != nil {
				return fmt.Errorf("graph: %w", err)
			}
			m.Graph = g
		case num == modelOpsetImport && typ == protowire.BytesType:
			var o OpsetImport
			err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, _ []byte) error {
				switch {
				case num == opsetDomain && typ == protowire.BytesType:
					o.Domain = string(v)
				case num == opsetVersion && typ == protowire.VarintType:
					o.Version = int64(x)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("opset_import: %w", err)
			}
			m.Opsets = append(m.Opsets, o)
		case num == modelMetadataProps && typ == protowire.BytesType:
			var kv [2]string
			err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64, _ []byte) error {
				if typ == protowire.BytesType && (num == entryKey || num == entryValue) {
					kv[num-1] = string(v)
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("metadata_props: %w", err)
			}
			m.Metadata = append(m.Metadata, kv)
		default:
			m.extra = append(m.extra, raw...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("onnx: decoding model: %w", err)
	}
	if m.Graph == nil {
		return nil, errors.New("onnx: decoding model: no graph (is this an ONNX file?)")
	}
	return m, nil
}

func decodeGraph(data []byte) (*Graph, error) {
	g := &Graph{}
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64, raw []byte) error {
		if typ != protowire.BytesType {
			g.extra = append(g.extra, raw...)
			return nil
		}
		switch num {
		case graphNode:
			n, err := decodeNode(v)
			if err != nil {
				return fmt.Errorf("node %d: %w", len(g.Nodes), err)
			}
			g.Nodes = append(g.Nodes, n)
		case graphName:
			g.Name = string(v)
		case graphInitializer:
			t, err := decodeTensor(v)
			if err != nil {
				return fmt.Errorf("initializer %d: %w", len(g.Initializers), err)
			}
			g.Initializers = append(g.Initializers, t)
		case graphInput, graphOutput, graphValueInfo:
			vi, err := decodeValueInfo(v)
			if err != nil {
				return fmt.Errorf("value info: %w", err)
			}
			switch num {
			case graphInput:
				g.Inputs = append(g.Inputs, vi)
			case graphOutput:
				g.Outputs = append(g.Outputs, vi)
			default:
				g.ValueInfo = append(g.ValueInfo, vi)
			}
		default:
			g.extra = append(g.extra, raw...)
		}
		return nil
	})
	return g, err
}

func decodeNode(data []byte) (*Node, error) {
	n := &Node{}
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64, raw []byte) error {
		if typ != protowire.BytesType {
			n.extra = append(n.extra, raw...)
			return nil
		}
		switch num {
		case nodeInput:
			n.Inputs = append(n.Inputs, string(v))
		case nodeOutput:
			n.Outputs = append(n.Outputs, string(v))
		case nodeName:
			n.Name = string(v)
		case nodeOpType:
			n.Op = string(v)
		case nodeDomain:
			n.Domain = string(v)
		case nodeAttribute:
			a, err := decodeAttr(v)
			if err != nil {
				return fmt.Errorf("attribute: %w", err)
			}
			n.Attrs = append(n.Attrs, a)
		default:
			n.extra = append(n.extra, raw...)
		}
		return nil
	})
	return n, err
}

func decodeAttr(data []byte) (Attr, error) {
	var a Attr
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, raw []byte) error {
		switch {
		case num == attrName && typ == protowire.BytesType:
			a.Name = string(v)
		case num == attrType && typ == protowire.VarintType:
			a.Type = AttrType(x)
		case num == attrF && typ == protowire.Fixed32Type:
			a.F = math.Float32frombits(uint32(x))
		case num == attrI && typ == protowire.VarintType:
			a.I = int64(x)
		case num == attrS && typ == protowire.BytesType:
			a.S = v
		case num == attrT && typ == protowire.BytesType:
			t, err := decodeTensor(v)
			if err != nil {
				return err
			}
			a.T = t
		case num == attrFloats:
			fs, err := packedFixed32(typ, v, x)
			if err != nil {
				return err
			}
			for _, f := range fs {
				a.Floats = append(a.Floats, math.Float32frombits(f))
			}
		case num == attrInts:
			is, err := packedVarint(typ, v, x)
			if err != nil {
				return err
			}
			for _, i := range is {
				a.Ints = append(a.Ints, int64(i))
			}
		case num == attrStrings && typ == protowire.BytesType:
			a.Strings = append(a.Strings, v)
		default:
			a.extra = append(a.extra, raw...)
		}
		return nil
	})
	return a, err
}

func decodeTensor(data []byte) (*Tensor, error) {
	t := &Tensor{}
	var floats []uint32
	var ints []uint64
	var doubles []uint64
	var typed DataType // which typed field held data, when raw_data did not
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, raw []byte) error {
		switch {
		case num == tensorDims:
			ds, err := packedVarint(typ, v, x)
			if err != nil {
				return err
			}
			for _, d := range ds {
				t.Dims = append(t.Dims, int64(d))
			}
		case num == tensorDataType && typ == protowire.VarintType:
			t.Type = DataType(x)
		case num == tensorName && typ == protowire.BytesType:
			t.Name = string(v)
		case num == tensorRawData && typ == protowire.BytesType:
			t.Raw = v
		case num == tensorFloatData:
			fs, err := packedFixed32(typ, v, x)
			if err != nil {
				return err
			}
			floats = append(floats, fs...)
			typed = Float
		case num == tensorInt64Data:
			is, err := packedVarint(typ, v, x)
			if err != nil {
				return err
			}
			ints = append(ints, is...)
			typed = Int64
		case num == tensorInt32Data:
			is, err := packedVarint(typ, v, x)
			if err != nil {
				return err
			}
			ints = append(ints, is...)
			typed = Int32
		case num == tensorDoubleData:
			ds, err := packedFixed64(typ, v, x)
			if err != nil {
				return err
			}
			doubles = append(doubles, ds...)
			typed = Double
		case num == tensorDataLocation && typ == protowire.VarintType:
			t.external = x == 1
			t.extra = append(t.extra, raw...)
		default:
			t.extra = append(t.extra, raw...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if t.Raw == nil && typed != Undefined {
		// Convert typed storage to raw little-endian bytes, the form every
		// consumer of this package reads.
		switch {
		case typed == Float && t.Type == Float:
			t.Raw = make([]byte, 4*len(floats))
			for i, f := range floats {
				binary.LittleEndian.PutUint32(t.Raw[4*i:], f)
			}
		case typed == Int64 && t.Type == Int64:
			t.Raw = make([]byte, 8*len(ints))
			for i, v := range ints {
				binary.LittleEndian.PutUint64(t.Raw[8*i:], v)
			}
		case typed == Int32 && t.Type == Int32:
			t.Raw = make([]byte, 4*len(ints))
			for i, v := range ints {
				binary.LittleEndian.PutUint32(t.Raw[4*i:], uint32(v))
			}
		case typed == Int32 && (t.Type == Uint8 || t.Type == Int8 || t.Type == Bool):
			t.Raw = make([]byte, len(ints))
			for i, v := range ints {
				t.Raw[i] = byte(v)
			}
		case typed == Int32 && t.Type == Float16:
			t.Raw = make([]byte, 2*len(ints))
			for i, v := range ints {
				binary.LittleEndian.PutUint16(t.Raw[2*i:], uint16(v))
			}
		case typed == Double && t.Type == Double:
			t.Raw = make([]byte, 8*len(doubles))
			for i, v := range doubles {
				binary.LittleEndian.PutUint64(t.Raw[8*i:], v)
			}
		default:
			return nil, fmt.Errorf("tensor %q: %s data stored in a %s field is not supported", t.Name, t.Type, typed)
		}
	}
	if t.Raw == nil && !t.external {
		t.Raw = []byte{}
	}
	return t, nil
}

func decodeValueInfo(data []byte) (ValueInfo, error) {
	var vi ValueInfo
	err := fields(data, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64, raw []byte) error {
		switch {
		case num == valueName && typ == protowire.BytesType:
			vi.Name = string(v)
		case num == valueType && typ == protowire.BytesType:
			return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64, raw []byte) error {
				if num != typeTensor || typ != protowire.BytesType {
					vi.typeExtra = append(vi.typeExtra, raw...)
					return nil
				}
				return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, raw []byte) error {
					switch {
					case num == tensorTypeElem && typ == protowire.VarintType:
						vi.Type = DataType(x)
					case num == tensorTypeShape && typ == protowire.BytesType:
						vi.hasShape = true
						vi.Shape = []Dim{}
						return fields(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64, raw []byte) error {
							if num != shapeDim || typ != protowire.BytesType {
								vi.shapeExtra = append(vi.shapeExtra, raw...)
								return nil
							}
							var d Dim
							err := fields(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64, raw []byte) error {
								switch {
								case num == dimValue && typ == protowire.VarintType:
									d.Value = int64(x)
								case num == dimParam && typ == protowire.BytesType:
									d.Param = string(v)
								default:
									d.extra = append(d.extra, raw...)
								}
								return nil
							})
							vi.Shape = append(vi.Shape, d)
							return err
						})
					default:
						vi.tensorExtra = append(vi.tensorExtra, raw...)
					}
					return nil
				})
			})
		default:
			vi.extra = append(vi.extra, raw...)
		}
		return nil
	})
	return vi, err
}

// fields calls fn for each field of a protobuf message: its number, wire
// type, value (v for length-delimited fields, x for varint and fixed ones)
// and the whole raw field, tag included.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64, raw []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return fmt.Errorf("field %d: %w", num, protowire.ParseError(m))
		}
		raw := b[:n+m]
		val := b[n : n+m]
		var v []byte
		var x uint64
		switch typ {
		case protowire.VarintType:
			x, _ = protowire.ConsumeVarint(val)
		case protowire.Fixed32Type:
			f, _ := protowire.ConsumeFixed32(val)
			x = uint64(f)
		case protowire.Fixed64Type:
			x, _ = protowire.ConsumeFixed64(val)
		case protowire.BytesType:
			v, _ = protowire.ConsumeBytes(val)
		}
		if err := fn(num, typ, v, x, raw); err != nil {
			return err
		}
		b = b[n+m:]
	}
	return nil
}

// packedVarint reads a repeated varint field in either encoding.
func packedVarint(typ protowire.Type, v []byte, x uint64) ([]uint64, error) {
	switch typ {
	case protowire.VarintType:
		return []uint64{x}, nil
	case protowire.BytesType:
		var out []uint64
		for len(v) > 0 {
			u, n := protowire.ConsumeVarint(v)
			if n < 0 {
				return nil, protowire.ParseError(n)
			}
			out = append(out, u)
			v = v[n:]
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected wire type %d for a repeated integer", typ)
}

// packedFixed32 reads a repeated fixed32/float field in either encoding.
func packedFixed32(typ protowire.Type, v []byte, x uint64) ([]uint32, error) {
	switch typ {
	case protowire.Fixed32Type:
		return []uint32{uint32(x)}, nil
	case protowire.BytesType:
		if len(v)%4 != 0 {
			return nil, errors.New("packed float field has a partial element")
		}
		out := make([]uint32, len(v)/4)
		for i := range out {
			out[i] = binary.LittleEndian.Uint32(v[4*i:])
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected wire type %d for a repeated float", typ)
}

// packedFixed64 reads a repeated fixed64/double field in either encoding.
func packedFixed64(typ protowire.Type, v []byte, x uint64) ([]uint64, error) {
	switch typ {
	case protowire.Fixed64Type:
		return []uint64{x}, nil
	case protowire.BytesType:
		if len(v)%8 != 0 {
			return nil, errors.New("packed double field has a partial element")
		}
		out := make([]uint64, len(v)/8)
		for i := range out {
			out[i] = binary.LittleEndian.Uint64(v[8*i:])
		}
		return out, nil
	}
	return nil, fmt.Errorf("unexpected wire type %d for a repeated double", typ)
}

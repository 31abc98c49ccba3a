package onnx

import (
	"fmt"
	"math"
	"slices"
)

// ByteIO says how ByteImageIO rewrites a graph: which float input, if
// any, becomes bytes and how they are normalized, and which float outputs
// become bytes.
type ByteIO struct {
	// Input is the image input ("" leaves the inputs as they are): float,
	// rank known, its channels on Axis.
	Input string
	Axis  int
	// Mean and Std normalize channel c: x = (byte − Mean[c]) / Std[c],
	// one entry a channel.
	Mean, Std []float32
	// Outputs are values in 0..1 that come out as bytes, round(v·255)
	// saturated to 0..255.
	Outputs []string
}

// ByteImageIO rewrites m so that its image input takes bytes and the
// outputs named by io come out as bytes: the normalization a caller did
// before the model and the quantization it did after run inside the graph
// instead (fewer bytes to hand over, and ONNX Runtime's vectorized,
// threaded kernels for the work).
//
// The input keeps its name and shape, with uint8 elements; a
// DequantizeLinear node ((byte − mean)·(1/std), for means that are whole
// numbers of 0..255: exactly what a lookup table of float32(v)·(1/std) −
// mean/std gives when the mean is 0 or std a power of two, within two
// units in the last place of mean/std otherwise) or, for other means,
// Cast, Mul and Add (the table's own float32 operations) turns it into the
// float value every node read before. Each output keeps its name with
// uint8 elements, written by a QuantizeLinear node (scale 1/255, zero
// point 0: round half to even, saturated) from the float value, which
// keeps a new name for the nodes that read it inside the graph.
func ByteImageIO(m *Model, io ByteIO) error {
	g := m.Graph
	if g == nil {
		return fmt.Errorf("onnx: model has no graph")
	}
	for _, name := range io.Outputs {
		j := slices.IndexFunc(g.Output, func(v *ValueInfo) bool { return v.GetName() == name })
		if j < 0 {
			return fmt.Errorf("onnx: the graph has no output %q", name)
		}
		if ElemType(g.Output[j]) != Float {
			return fmt.Errorf("onnx: output %q is %v, not float", name, ElemType(g.Output[j]))
		}
		if Producer(g, name) == nil {
			return fmt.Errorf("onnx: no node computes output %q", name)
		}
	}
	if io.Input != "" {
		// Per-channel DequantizeLinear needs opset 13.
		if err := byteInput(g, io, Opset(m) >= 13); err != nil {
			return err
		}
	}
	// The outputs: the float value gets a new name (for the nodes that
	// read it inside the graph), the output's name goes to the bytes.
	for _, name := range io.Outputs {
		f := uniqueName(g, name+"_float")
		renameUses(g, name, f)
		for _, n := range g.Node {
			for k, o := range n.Output {
				if o == name {
					n.Output[k] = f
				}
			}
		}
		for _, v := range g.ValueInfo {
			if v.GetName() == name {
				v.Name = f
			}
		}
		g.Node = append(g.Node, &Node{OpType: "QuantizeLinear", Name: uniqueNodeName(g, name+"_to_bytes"),
			Input:  []string{f, addConst(g, FloatTensor("", nil, 1.0/255)), addConst(g, RawTensor("", Uint8, nil, []byte{0}))},
			Output: []string{name}})
		j := slices.IndexFunc(g.Output, func(v *ValueInfo) bool { return v.GetName() == name })
		g.Output[j].GetType().GetTensorType().ElemType = int32(Uint8)
	}
	return nil
}

// byteInput rewrites g's image input to take bytes (see ByteImageIO);
// perAxis says the opset has DequantizeLinear along an axis.
func byteInput(g *Graph, io ByteIO, perAxis bool) error {
	i := slices.IndexFunc(g.Input, func(v *ValueInfo) bool { return v.GetName() == io.Input })
	if i < 0 {
		return fmt.Errorf("onnx: the graph has no input %q", io.Input)
	}
	in := g.Input[i]
	if ElemType(in) != Float {
		return fmt.Errorf("onnx: input %q is %v, not float", io.Input, ElemType(in))
	}
	shape := Shape(in)
	if io.Axis < 0 || io.Axis >= len(shape) {
		return fmt.Errorf("onnx: input %q of rank %d has no channel axis %d", io.Input, len(shape), io.Axis)
	}
	ch := len(io.Mean)
	if ch == 0 || len(io.Std) != ch || (shape[io.Axis].Param == "" && shape[io.Axis].Value != int64(ch)) {
		return fmt.Errorf("onnx: input %q %s: %d means and %d stds for channel axis %d", io.Input, ShapeString(in), len(io.Mean), len(io.Std), io.Axis)
	}
	for _, s := range io.Std {
		if s == 0 {
			return fmt.Errorf("onnx: a standard deviation of 0")
		}
	}
	// The float value gets a new name, read by every node that read the
	// input.
	norm := uniqueName(g, io.Input+"_normalized")
	renameUses(g, io.Input, norm)
	var prologue []*Node
	emit := func(op string, inputs []string, out string, attrs ...*Attr) {
		prologue = append(prologue, &Node{OpType: op, Name: uniqueNodeName(g, out+"_node"), Input: inputs, Output: []string{out}, Attribute: attrs})
	}
	same, whole := true, true
	for c := range ch {
		same = same && io.Mean[c] == io.Mean[0] && io.Std[c] == io.Std[0]
		whole = whole && io.Mean[c] >= 0 && io.Mean[c] <= 255 && io.Mean[c] == float32(math.Round(float64(io.Mean[c])))
	}
	if whole && (same || perAxis) {
		scale, zp := make([]float32, ch), make([]byte, ch)
		for c := range ch {
			scale[c], zp[c] = 1/io.Std[c], byte(io.Mean[c])
		}
		if same {
			emit("DequantizeLinear", []string{io.Input, addConst(g, FloatTensor("", nil, scale[0])), addConst(g, RawTensor("", Uint8, nil, zp[:1]))}, norm)
		} else {
			dims := []int64{int64(ch)}
			emit("DequantizeLinear", []string{io.Input, addConst(g, FloatTensor("", dims, scale...)), addConst(g, RawTensor("", Uint8, dims, zp))},
				norm, IntAttr("axis", int64(io.Axis)))
		}
	} else {
		dims := make([]int64, len(shape))
		for k := range dims {
			dims[k] = 1
		}
		dims[io.Axis] = int64(ch)
		sc, off := make([]float32, ch), make([]float32, ch)
		for c := range ch {
			sc[c] = 1 / io.Std[c]
			off[c] = -io.Mean[c] / io.Std[c]
		}
		f := uniqueName(g, io.Input+"_float")
		emit("Cast", []string{io.Input}, f, IntAttr("to", int64(Float)))
		scaled := uniqueName(g, io.Input+"_scaled")
		emit("Mul", []string{f, addConst(g, FloatTensor("", dims, sc...))}, scaled)
		emit("Add", []string{scaled, addConst(g, FloatTensor("", dims, off...))}, norm)
	}
	g.Node = append(prologue, g.Node...)
	in.GetType().GetTensorType().ElemType = int32(Uint8)
	// A graph output that passes the input through passes the bytes.
	for _, v := range g.Output {
		if v.GetName() == io.Input {
			v.GetType().GetTensorType().ElemType = int32(Uint8)
		}
	}
	return nil
}

// addConst adds t as an initializer under a name no value of g has, and
// returns the name.
func addConst(g *Graph, t *Tensor) string {
	t.Name = uniqueName(g, "vidmatte_byte_io")
	g.Initializer = append(g.Initializer, t)
	return t.Name
}

// renameUses makes every node that reads value from read to instead,
// subgraphs included (their nodes may read the outer graph's values).
func renameUses(g *Graph, from, to string) {
	for _, n := range g.Node {
		for k, in := range n.Input {
			if in == from {
				n.Input[k] = to
			}
		}
		for _, a := range n.Attribute {
			if a.G != nil {
				renameSubgraphUses(a.G, from, to)
			}
			for _, sg := range a.Graphs {
				renameSubgraphUses(sg, from, to)
			}
		}
	}
}

// renameSubgraphUses renames the outer value from in a subgraph, unless
// the subgraph declares a value of that name itself (which hides it).
func renameSubgraphUses(g *Graph, from, to string) {
	for _, v := range g.Input {
		if v.GetName() == from {
			return
		}
	}
	if Initializer(g, from) != nil || Producer(g, from) != nil {
		return
	}
	renameUses(g, from, to)
	for _, v := range g.Output {
		if v.GetName() == from {
			v.Name = to
		}
	}
}

// uniqueNodeName returns base, or base with a number, that no node of g
// is called.
func uniqueNodeName(g *Graph, base string) string {
	taken := func(name string) bool {
		return slices.ContainsFunc(g.Node, func(n *Node) bool { return n.GetName() == name })
	}
	name := base
	for i := 2; taken(name); i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

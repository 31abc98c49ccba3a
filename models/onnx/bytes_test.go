package onnx

import (
	"slices"
	"testing"
)

// ByteImageIO on the sample graph: the input turns into bytes read by
// one DequantizeLinear whose output every former reader now reads (the
// graph output that passed x through passes the bytes); the output y turns into bytes
// written by a QuantizeLinear of the float value, which keeps a name of
// its own; no node or initializer name is taken twice; what it cannot
// rewrite it refuses.
func TestByteImageIO(t *testing.T) {
	m := sampleModel()
	if err := ByteImageIO(m, ByteIO{Input: "x", Axis: 1, Mean: []float32{0, 0, 0}, Std: []float32{255, 255, 255}, Outputs: []string{"y"}}); err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if ElemType(g.Input[0]) != Uint8 || g.Input[0].Name != "x" {
		t.Fatalf("input %s is %v", g.Input[0].Name, ElemType(g.Input[0]))
	}
	first := g.Node[0]
	if first.OpType != "DequantizeLinear" || first.Input[0] != "x" {
		t.Fatalf("first node %s(%v)", first.OpType, first.Input)
	}
	for _, n := range g.Node[1:] {
		if slices.Contains(n.Input, "x") {
			t.Errorf("%s still reads the byte input", n.Name)
		}
	}
	if x := g.Output[slices.IndexFunc(g.Output, func(v *ValueInfo) bool { return v.Name == "x" })]; ElemType(x) != Uint8 {
		t.Errorf("the pass-through output x is %v", ElemType(x))
	}
	last := g.Node[len(g.Node)-1]
	if last.OpType != "QuantizeLinear" || last.Output[0] != "y" || Producer(g, last.Input[0]) == nil {
		t.Fatalf("last node %s(%v) -> %v", last.OpType, last.Input, last.Output)
	}
	y := g.Output[slices.IndexFunc(g.Output, func(v *ValueInfo) bool { return v.Name == "y" })]
	if ElemType(y) != Uint8 {
		t.Fatalf("output y is %v", ElemType(y))
	}
	names := map[string]bool{}
	for _, n := range g.Node {
		if names[n.Name] {
			t.Errorf("node name %s twice", n.Name)
		}
		names[n.Name] = true
	}
	values := map[string]bool{}
	for _, i := range g.Initializer {
		if values[i.Name] {
			t.Errorf("initializer %s twice", i.Name)
		}
		values[i.Name] = true
	}
	// Per-channel means that are whole numbers: one DequantizeLinear
	// along the axis; others: Cast, Mul, Add.
	m = sampleModel()
	if err := ByteImageIO(m, ByteIO{Input: "x", Axis: 1, Mean: []float32{0, 128, 255}, Std: []float32{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if n := m.Graph.Node[0]; n.OpType != "DequantizeLinear" || NodeAttr(n, "axis").GetI() != 1 {
		t.Fatalf("per-channel: %s %v", n.OpType, n.Attribute)
	}
	m = sampleModel()
	if err := ByteImageIO(m, ByteIO{Input: "x", Axis: 1, Mean: []float32{0.5, 128, 255}, Std: []float32{1, 2, 3}}); err != nil {
		t.Fatal(err)
	}
	if ops := []string{m.Graph.Node[0].OpType, m.Graph.Node[1].OpType, m.Graph.Node[2].OpType}; !slices.Equal(ops, []string{"Cast", "Mul", "Add"}) {
		t.Fatalf("fractional mean: %v", ops)
	}
	// Outputs alone leave the inputs as they are.
	m = sampleModel()
	if err := ByteImageIO(m, ByteIO{Outputs: []string{"y"}}); err != nil {
		t.Fatal(err)
	}
	if ElemType(m.Graph.Input[0]) != Float || m.Graph.Node[0].OpType == "DequantizeLinear" {
		t.Fatal("an output-only rewrite changed the input")
	}
	for name, io := range map[string]ByteIO{
		"no such input":  {Input: "nope", Axis: 1, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}},
		"wrong channels": {Input: "x", Axis: 1, Mean: []float32{0, 0}, Std: []float32{1, 1}},
		"axis":           {Input: "x", Axis: 4, Mean: []float32{0, 0, 0}, Std: []float32{1, 1, 1}},
		"zero std":       {Input: "x", Axis: 1, Mean: []float32{0, 0, 0}, Std: []float32{1, 0, 1}},
		"no such output": {Outputs: []string{"nope"}},
		"int output":     {Outputs: []string{"k"}},
	} {
		if err := ByteImageIO(sampleModel(), io); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

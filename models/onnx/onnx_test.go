package onnx

import (
	"bytes"
	"encoding/binary"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

func sampleModel() *Model {
	g := NewBuilder("sample")
	x := g.Input("x", Float, Symbolic("N"), Fixed(3), Fixed(4), Fixed(4))
	w := g.Float([]int64{1, 3, 1, 1}, 1, 2, 3)
	c := g.Op("Conv", []string{x, w}, IntsAttr("kernel_shape", 1, 1), IntsAttr("pads", 0, 0, 0, 0))
	s := g.Op("LeakyRelu", []string{c}, FloatAttr("alpha", 0.25))
	r := g.Op("Resize", []string{s, "", g.Float([]int64{4}, 1, 1, 2, 2)}, StringAttr("mode", "linear"))
	k := g.Op("Constant", nil, TensorAttr("value", Int64Tensor("", []int64{2}, 7, -8)))
	g.OpTo("y", "Identity", []string{r})
	g.Output("y", Float, Symbolic("N"), Fixed(1), Fixed(8), Fixed(8))
	g.OpTo("k", "Identity", []string{k})
	g.Output("k", Int64, Fixed(2))
	m := g.Model(17, "test", "1")
	m.DocString = "doc"
	m.Metadata = [][2]string{{"a", "b"}}
	return m
}

func TestRoundTrip(t *testing.T) {
	m := sampleModel()
	data := m.Marshal()
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(back.Marshal(), data) {
		t.Fatal("Decode then Marshal changed the bytes")
	}
	if back.Opset() != 17 || back.IRVersion != 8 || back.DocString != "doc" || back.Metadata[0] != [2]string{"a", "b"} {
		t.Errorf("model fields: %+v", back)
	}
	g := back.Graph
	if g.Inputs[0].ShapeString() != "[N,3,4,4]" || g.Outputs[1].ShapeString() != "[2]" {
		t.Errorf("shapes %s %s", g.Inputs[0].ShapeString(), g.Outputs[1].ShapeString())
	}
	conv := g.Nodes[0]
	if conv.Op != "Conv" || !slices.Equal(conv.Attr("kernel_shape").Ints, []int64{1, 1}) {
		t.Errorf("conv %+v", conv)
	}
	if a := g.Nodes[1].Attr("alpha"); a == nil || a.F != 0.25 || a.Type != AttrFloat {
		t.Errorf("alpha %+v", a)
	}
	if a := g.Nodes[2].Attr("mode"); string(a.S) != "linear" {
		t.Errorf("mode %+v", a)
	}
	k := g.Constant(g.Nodes[3].Outputs[0])
	if v, err := k.Int64s(); err != nil || !slices.Equal(v, []int64{7, -8}) {
		t.Errorf("constant %v %v", v, err)
	}
	if f, err := g.Initializer(conv.Inputs[1]).Floats(); err != nil || !slices.Equal(f, []float32{1, 2, 3}) {
		t.Errorf("weights %v %v", f, err)
	}
}

// TestUnknownFieldsKept: fields this package does not model survive.
func TestUnknownFieldsKept(t *testing.T) {
	data := sampleModel().Marshal()
	// A training_info-like field (20) and a made-up varint field (99).
	data = protowire.AppendTag(data, 20, protowire.BytesType)
	data = protowire.AppendBytes(data, []byte("opaque"))
	data = protowire.AppendTag(data, 99, protowire.VarintType)
	data = protowire.AppendVarint(data, 12345)
	m, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	out := m.Marshal()
	if !bytes.Contains(out, []byte("opaque")) || !bytes.HasSuffix(out, protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 12345)) {
		t.Error("unknown fields were dropped")
	}
}

// TestTypedTensorData: tensors stored in float_data / int64_data (not
// raw_data) decode to the same raw bytes.
func TestTypedTensorData(t *testing.T) {
	var tb []byte
	tb = protowire.AppendTag(tb, tensorDims, protowire.VarintType)
	tb = protowire.AppendVarint(tb, 2)
	tb = protowire.AppendTag(tb, tensorDataType, protowire.VarintType)
	tb = protowire.AppendVarint(tb, uint64(Float))
	var packed []byte
	for _, f := range []float32{1.5, -2} {
		packed = binary.LittleEndian.AppendUint32(packed, math.Float32bits(f))
	}
	tb = protowire.AppendTag(tb, tensorFloatData, protowire.BytesType)
	tb = protowire.AppendBytes(tb, packed)
	tb = protowire.AppendTag(tb, tensorName, protowire.BytesType)
	tb = protowire.AppendString(tb, "w")
	tensor, err := decodeTensor(tb)
	if err != nil {
		t.Fatal(err)
	}
	if f, _ := tensor.Floats(); !slices.Equal(f, []float32{1.5, -2}) {
		t.Errorf("float_data: %v", f)
	}

	tb = nil
	tb = protowire.AppendTag(tb, tensorDataType, protowire.VarintType)
	tb = protowire.AppendVarint(tb, uint64(Int64))
	for _, v := range []int64{-1, 1 << 40} { // unpacked
		tb = protowire.AppendTag(tb, tensorInt64Data, protowire.VarintType)
		tb = protowire.AppendVarint(tb, uint64(v))
	}
	tensor, err = decodeTensor(tb)
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := tensor.Int64s(); !slices.Equal(v, []int64{-1, 1 << 40}) {
		t.Errorf("int64_data: %v", v)
	}
}

func TestDecodeRejectsJunk(t *testing.T) {
	for _, data := range [][]byte{[]byte("not onnx at all"), {0x3a, 0xff, 0xff}, nil} {
		if _, err := Decode(data); err == nil {
			t.Errorf("Decode(%q) succeeded", data)
		}
	}
}

// batchGraph: x [1,3,2,2] → Reshape [1,12] → Relu → Reshape [1,-1,2,2]
// (already has -1: becomes 0) → y; plus a bias Reshape of a constant that
// must stay [1,-1,1,1], and a value_info entry.
func batchGraph() *Model {
	g := NewBuilder("b")
	x := g.Input("x", Float, Fixed(1), Fixed(3), Fixed(2), Fixed(2))
	flat := g.Op("Reshape", []string{x, g.Int64s(1, 12)})
	relu := g.Op("Relu", []string{flat})
	back := g.Op("Reshape", []string{relu, g.Int64s(1, -1, 2, 2)})
	bias := g.Op("Reshape", []string{g.Float([]int64{3}, 1, 2, 3), g.Int64s(1, -1, 1, 1)})
	g.OpTo("y", "Add", []string{back, bias})
	g.Output("y", Float, Fixed(1), Fixed(3), Fixed(2), Fixed(2))
	gr := g.Graph()
	gr.ValueInfo = append(gr.ValueInfo, TensorValue(relu, Float, Fixed(1), Fixed(12)))
	return g.Model(17, "t", "1")
}

func TestMakeBatchDynamic(t *testing.T) {
	m := batchGraph()
	rep, err := MakeBatchDynamic(m, "N")
	if err != nil {
		t.Fatal(err)
	}
	g := m.Graph
	if g.Inputs[0].ShapeString() != "[N,3,2,2]" || g.Outputs[0].ShapeString() != "[N,3,2,2]" {
		t.Errorf("shapes %s → %s", g.Inputs[0].ShapeString(), g.Outputs[0].ShapeString())
	}
	if len(rep.Reshapes) != 2 || rep.ValueInfo != 1 || g.ValueInfo[0].ShapeString() != "[N,12]" {
		t.Errorf("report %+v", rep)
	}
	want := [][]int64{{-1, 12}, {0, -1, 2, 2}, {1, -1, 1, 1}}
	i := 0
	for _, n := range g.Nodes {
		if n.Op != "Reshape" {
			continue
		}
		v, _ := g.Constant(n.Inputs[1]).Int64s()
		if !slices.Equal(v, want[i]) {
			t.Errorf("Reshape %d shape %v, want %v", i, v, want[i])
		}
		i++
	}
	// Re-encoding keeps the rewrite.
	back, err := Decode(m.Marshal())
	if err != nil || back.Graph.Inputs[0].Shape[0].Param != "N" {
		t.Fatalf("re-decoded: %v", err)
	}
}

func TestMakeBatchDynamicRefuses(t *testing.T) {
	g := NewBuilder("r")
	x := g.Input("x", Float, Fixed(1), Fixed(3), Fixed(2), Fixed(2))
	g.OpTo("y", "Resize", []string{x, "", "", g.Int64s(1, 3, 4, 4)})
	g.Output("y", Float, Fixed(1), Fixed(3), Fixed(4), Fixed(4))
	if _, err := MakeBatchDynamic(g.Model(17, "t", "1"), "N"); err == nil || !strings.Contains(err.Error(), "Resize") {
		t.Errorf("Resize with constant sizes: %v", err)
	}
	g = NewBuilder("b2")
	x = g.Input("x", Float, Fixed(2), Fixed(3))
	g.OpTo("y", "Relu", []string{x})
	g.Output("y", Float, Fixed(2), Fixed(3))
	if _, err := MakeBatchDynamic(g.Model(17, "t", "1"), "N"); err == nil || !strings.Contains(err.Error(), "fixed batch of 2") {
		t.Errorf("batch 2 input: %v", err)
	}
}

// TestPruneOutputsUnsorted prunes a graph whose nodes are not listed in
// dependency order (as some converters write them).
func TestPruneOutputsUnsorted(t *testing.T) {
	g := NewBuilder("p")
	x := g.Input("x", Float, Fixed(1))
	w := g.Float([]int64{1}, 2)
	unused := g.Float([]int64{1}, 3)
	a := g.Op("Mul", []string{"late", w}) // uses a value produced later
	g.OpTo("late", "Relu", []string{x})
	g.OpTo("keep", "Identity", []string{a})
	g.OpTo("drop", "Add", []string{x, unused})
	g.Output("keep", Float, Fixed(1))
	g.Output("drop", Float, Fixed(1))
	m := g.Model(17, "t", "1")
	order, err := TopologicalOrder(m.Graph)
	if err != nil {
		t.Fatal(err)
	}
	if pos := slices.Index(order, 1); pos > slices.Index(order, 0) {
		t.Errorf("topological order %v puts the producer after its user", order)
	}
	if err := PruneOutputs(m, "keep"); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, n := range m.Graph.Nodes {
		ops = append(ops, n.Op)
	}
	if !reflect.DeepEqual(ops, []string{"Mul", "Relu", "Identity"}) {
		t.Errorf("kept %v", ops)
	}
	if len(m.Graph.Initializers) != 1 || len(m.Graph.Outputs) != 1 || len(m.Graph.Inputs) != 1 {
		t.Errorf("initializers %d, outputs %d, inputs %d", len(m.Graph.Initializers), len(m.Graph.Outputs), len(m.Graph.Inputs))
	}
	if err := PruneOutputs(m, "nope"); err == nil {
		t.Error("pruned to a missing output")
	}

	cyc := NewBuilder("c")
	cyc.OpTo("a", "Relu", []string{"b"})
	cyc.OpTo("b", "Relu", []string{"a"})
	if _, err := TopologicalOrder(cyc.Graph()); err == nil {
		t.Error("cycle not detected")
	}
}

// TestFuseClips merges a one-sided Clip into the one-sided Clip it reads,
// and leaves a Clip whose output something else reads, or two Clips
// bounding the same side, alone.
func TestFuseClips(t *testing.T) {
	build := func(shared bool, outerMin bool) *Graph {
		b := NewBuilder("g")
		x := b.Input("x", Float, Fixed(4))
		lo, hi := b.Float(nil, 0), b.Float(nil, 1)
		inner := b.Op("Clip", []string{x, "", hi})
		args := []string{inner, lo}
		if !outerMin {
			args = []string{inner, "", hi}
		}
		b.OpTo("y", "Clip", args)
		b.Output("y", Float, Fixed(4))
		if shared {
			b.OpTo("z", "Relu", []string{inner})
			b.Output("z", Float, Fixed(4))
		}
		return b.Graph()
	}
	g := build(false, true)
	if n := FuseClips(g); n != 1 || len(g.Nodes) != 1 {
		t.Fatalf("removed %d, %d nodes left; want 1 and 1", n, len(g.Nodes))
	}
	if got := g.Nodes[0].Inputs; len(got) != 3 || got[0] != "x" || got[1] == "" || got[2] == "" {
		t.Errorf("fused Clip inputs %q, want x, lo, hi", got)
	}
	if n := FuseClips(build(true, true)); n != 0 {
		t.Errorf("fused a Clip whose output is read twice")
	}
	if n := FuseClips(build(false, false)); n != 0 {
		t.Errorf("fused two Clips bounding the same side")
	}
}

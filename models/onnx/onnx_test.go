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
	"google.golang.org/protobuf/proto"

	"vidmatte/models/onnx/onnxpb"
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
	g.OutputAnyRank("x", Float)
	m := g.Model(17, "test", "1")
	m.DocString = "doc"
	AddMetadata(m, [2]string{"a", "b"})
	return m
}

func marshal(t *testing.T, m *Model) []byte {
	t.Helper()
	b, err := Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTrip(t *testing.T) {
	m := sampleModel()
	data := marshal(t, m)
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(marshal(t, back), data) {
		t.Fatal("Decode then Marshal changed the bytes")
	}
	if !proto.Equal(back, m) {
		t.Fatal("Decode(Marshal(m)) differs from m")
	}
	if v, ok := Metadata(back, "a"); Opset(back) != 17 || back.IrVersion != 8 || back.DocString != "doc" || !ok || v != "b" {
		t.Errorf("model fields: %v", back)
	}
	g := back.Graph
	if ShapeString(g.Input[0]) != "[N,3,4,4]" || ShapeString(g.Output[1]) != "[2]" || ShapeString(g.Output[2]) != "[?]" {
		t.Errorf("shapes %s %s %s", ShapeString(g.Input[0]), ShapeString(g.Output[1]), ShapeString(g.Output[2]))
	}
	if ElemType(g.Output[1]) != Int64 || ElemType(g.Output[2]) != Float {
		t.Errorf("element types %s %s", ElemType(g.Output[1]), ElemType(g.Output[2]))
	}
	conv := g.Node[0]
	if conv.OpType != "Conv" || !slices.Equal(NodeAttr(conv, "kernel_shape").Ints, []int64{1, 1}) {
		t.Errorf("conv %v", conv)
	}
	if a := NodeAttr(g.Node[1], "alpha"); a == nil || a.F != 0.25 || a.Type != AttrFloat {
		t.Errorf("alpha %v", a)
	}
	if a := NodeAttr(g.Node[2], "mode"); string(a.S) != "linear" {
		t.Errorf("mode %v", a)
	}
	k := Constant(g, g.Node[3].Output[0])
	if v, err := Int64s(k); err != nil || !slices.Equal(v, []int64{7, -8}) {
		t.Errorf("constant %v %v", v, err)
	}
	if f, err := Floats(Initializer(g, conv.Input[1])); err != nil || !slices.Equal(f, []float32{1, 2, 3}) {
		t.Errorf("weights %v %v", f, err)
	}
}

// TestUnknownFieldsKept: fields the ONNX version of onnxpb does not know
// survive Decode and Marshal, at the model level and inside a tensor.
func TestUnknownFieldsKept(t *testing.T) {
	m := sampleModel()
	w := m.Graph.Initializer[0]
	var unk []byte
	unk = protowire.AppendTag(unk, 99, protowire.BytesType)
	unk = protowire.AppendBytes(unk, []byte("opaque-tensor"))
	w.ProtoReflect().SetUnknown(unk)
	data := marshal(t, m)
	// A made-up length-delimited field (98) and varint field (99).
	data = protowire.AppendTag(data, 98, protowire.BytesType)
	data = protowire.AppendBytes(data, []byte("opaque"))
	data = protowire.AppendTag(data, 99, protowire.VarintType)
	data = protowire.AppendVarint(data, 12345)
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	out := marshal(t, back)
	if !bytes.Contains(out, []byte("opaque")) || !bytes.Contains(out, []byte("opaque-tensor")) ||
		!bytes.HasSuffix(out, protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 12345)) {
		t.Error("unknown fields were dropped")
	}
}

// TestTypedTensorData: tensors stored in float_data / int64_data /
// int32_data (not raw_data), packed or not, read as the same values; a
// tensor whose data is external is refused, not read as empty.
func TestTypedTensorData(t *testing.T) {
	var tb []byte
	tb = protowire.AppendTag(tb, 1, protowire.VarintType) // dims
	tb = protowire.AppendVarint(tb, 2)
	tb = protowire.AppendTag(tb, 2, protowire.VarintType) // data_type
	tb = protowire.AppendVarint(tb, uint64(Float))
	var packed []byte
	for _, f := range []float32{1.5, -2} {
		packed = binary.LittleEndian.AppendUint32(packed, math.Float32bits(f))
	}
	tb = protowire.AppendTag(tb, 4, protowire.BytesType) // float_data
	tb = protowire.AppendBytes(tb, packed)
	tb = protowire.AppendTag(tb, 8, protowire.BytesType) // name
	tb = protowire.AppendString(tb, "w")
	tensor := &Tensor{}
	if err := proto.Unmarshal(tb, tensor); err != nil {
		t.Fatal(err)
	}
	if f, err := Floats(tensor); err != nil || !slices.Equal(f, []float32{1.5, -2}) {
		t.Errorf("float_data: %v %v", f, err)
	}

	tb = nil
	tb = protowire.AppendTag(tb, 2, protowire.VarintType)
	tb = protowire.AppendVarint(tb, uint64(Int64))
	for _, v := range []int64{-1, 1 << 40} { // int64_data, unpacked
		tb = protowire.AppendTag(tb, 7, protowire.VarintType)
		tb = protowire.AppendVarint(tb, uint64(v))
	}
	tensor = &Tensor{}
	if err := proto.Unmarshal(tb, tensor); err != nil {
		t.Fatal(err)
	}
	if v, err := Int64s(tensor); err != nil || !slices.Equal(v, []int64{-1, 1 << 40}) {
		t.Errorf("int64_data: %v %v", v, err)
	}
	i32 := &Tensor{DataType: int32(Int32), Int32Data: []int32{-3, 4}}
	if v, err := Int64s(i32); err != nil || !slices.Equal(v, []int64{-3, 4}) {
		t.Errorf("int32_data: %v %v", v, err)
	}
	if v, err := Int64s(RawTensor("r", Int32, []int64{2}, []byte{0xfd, 0xff, 0xff, 0xff, 4, 0, 0, 0})); err != nil || !slices.Equal(v, []int64{-3, 4}) {
		t.Errorf("int32 raw: %v %v", v, err)
	}
	ext := &Tensor{Name: "e", DataType: int32(Float), Dims: []int64{2}, DataLocation: onnxpb.TensorProto_EXTERNAL,
		ExternalData: []*onnxpb.StringStringEntryProto{{Key: "location", Value: "w.bin"}}}
	if !External(ext) {
		t.Error("external tensor not reported as external")
	}
	if _, err := Floats(ext); err == nil {
		t.Error("read the values of an external tensor")
	}
	// An external initializer survives Decode and Marshal with its location.
	m := sampleModel()
	m.Graph.Initializer = append(m.Graph.Initializer, ext)
	back, err := Decode(marshal(t, m))
	if err != nil {
		t.Fatal(err)
	}
	if e := Initializer(back.Graph, "e"); e == nil || !External(e) || len(e.ExternalData) != 1 ||
		e.ExternalData[0].Value != "w.bin" || e.RawData != nil {
		t.Errorf("external initializer after a round trip: %v", e)
	}
	if _, err := Floats(RawTensor("odd", Float, []int64{1}, []byte{1, 2, 3})); err == nil {
		t.Error("3 raw bytes read as float32 values")
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
	if ShapeString(g.Input[0]) != "[N,3,2,2]" || ShapeString(g.Output[0]) != "[N,3,2,2]" {
		t.Errorf("shapes %s → %s", ShapeString(g.Input[0]), ShapeString(g.Output[0]))
	}
	if len(rep.Reshapes) != 2 || rep.ValueInfo != 1 || ShapeString(g.ValueInfo[0]) != "[N,12]" {
		t.Errorf("report %+v", rep)
	}
	want := [][]int64{{-1, 12}, {0, -1, 2, 2}, {1, -1, 1, 1}}
	i := 0
	for _, n := range g.Node {
		if n.OpType != "Reshape" {
			continue
		}
		v, _ := Int64s(Constant(g, n.Input[1]))
		if !slices.Equal(v, want[i]) {
			t.Errorf("Reshape %d shape %v, want %v", i, v, want[i])
		}
		i++
	}
	// Re-encoding keeps the rewrite.
	back, err := Decode(marshal(t, m))
	if err != nil || Shape(back.Graph.Input[0])[0].Param != "N" {
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
	for _, n := range m.Graph.Node {
		ops = append(ops, n.OpType)
	}
	if !reflect.DeepEqual(ops, []string{"Mul", "Relu", "Identity"}) {
		t.Errorf("kept %v", ops)
	}
	if len(m.Graph.Initializer) != 1 || len(m.Graph.Output) != 1 || len(m.Graph.Input) != 1 {
		t.Errorf("initializers %d, outputs %d, inputs %d", len(m.Graph.Initializer), len(m.Graph.Output), len(m.Graph.Input))
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
	if n := FuseClips(g); n != 1 || len(g.Node) != 1 {
		t.Fatalf("removed %d, %d nodes left; want 1 and 1", n, len(g.Node))
	}
	if got := g.Node[0].Input; len(got) != 3 || got[0] != "x" || got[1] == "" || got[2] == "" {
		t.Errorf("fused Clip inputs %q, want x, lo, hi", got)
	}
	if n := FuseClips(build(true, true)); n != 0 {
		t.Errorf("fused a Clip whose output is read twice")
	}
	if n := FuseClips(build(false, false)); n != 0 {
		t.Errorf("fused two Clips bounding the same side")
	}
}

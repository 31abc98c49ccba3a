package onnx

import (
	"fmt"

	"vidmatte/models/onnx/onnxpb"
)

// Builder assembles a graph node by node, naming intermediate values
// itself. It is how vidmatte writes the models it generates.
type Builder struct {
	g    *Graph
	next int
}

// NewBuilder starts an empty graph called name.
func NewBuilder(name string) *Builder {
	return &Builder{g: &Graph{Name: name}}
}

// Input declares a graph input and returns its name.
func (b *Builder) Input(name string, t DataType, shape ...Dim) string {
	b.g.Input = append(b.g.Input, TensorValue(name, t, shape...))
	return name
}

// InputAnyRank declares a graph input whose rank is not fixed (no shape in
// its type) and returns its name.
func (b *Builder) InputAnyRank(name string, t DataType) string {
	b.g.Input = append(b.g.Input, AnyRankValue(name, t))
	return name
}

// Output declares value as a graph output.
func (b *Builder) Output(value string, t DataType, shape ...Dim) {
	b.g.Output = append(b.g.Output, TensorValue(value, t, shape...))
}

// OutputAnyRank declares value as a graph output whose rank is not known.
func (b *Builder) OutputAnyRank(value string, t DataType) {
	b.g.Output = append(b.g.Output, AnyRankValue(value, t))
}

// Const adds t as an initializer under a fresh name and returns the name.
// The graph takes t: its name is replaced, and the caller must not change
// it afterwards.
func (b *Builder) Const(t *Tensor) string {
	t.Name = b.fresh("const")
	b.g.Initializer = append(b.g.Initializer, t)
	return t.Name
}

// Float adds a float32 constant of the given dims (nil for a scalar).
func (b *Builder) Float(dims []int64, v ...float32) string {
	return b.Const(FloatTensor("", dims, v...))
}

// Int64s adds a one-dimensional int64 constant.
func (b *Builder) Int64s(v ...int64) string {
	return b.Const(Int64Tensor("", []int64{int64(len(v))}, v...))
}

// Op appends a node with one output and returns the output's name.
func (b *Builder) Op(op string, inputs []string, attrs ...*Attr) string {
	out := b.fresh(op)
	b.OpTo(out, op, inputs, attrs...)
	return out
}

// OpTo appends a node whose one output is called out (for values that are
// graph outputs) and returns out.
func (b *Builder) OpTo(out, op string, inputs []string, attrs ...*Attr) string {
	b.g.Node = append(b.g.Node, &Node{
		OpType:    op,
		Name:      out + "_node",
		Input:     inputs,
		Output:    []string{out},
		Attribute: attrs,
	})
	return out
}

// OpN appends a node with n outputs (Split, for one) and returns their
// names.
func (b *Builder) OpN(op string, inputs []string, n int, attrs ...*Attr) []string {
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.fresh(op)
	}
	b.g.Node = append(b.g.Node, &Node{
		OpType:    op,
		Name:      outs[0] + "_node",
		Input:     inputs,
		Output:    outs,
		Attribute: attrs,
	})
	return outs
}

// Graph returns the graph built so far.
func (b *Builder) Graph() *Graph { return b.g }

// Model wraps the graph in a model that imports the default operator set
// at version opset, with IR version 8 (what ONNX Runtime 1.14 and newer
// read).
func (b *Builder) Model(opset int64, producer, version string) *Model {
	return &Model{
		IrVersion:       8,
		ProducerName:    producer,
		ProducerVersion: version,
		OpsetImport:     []*onnxpb.OperatorSetIdProto{{Domain: "", Version: opset}},
		Graph:           b.g,
	}
}

func (b *Builder) fresh(prefix string) string {
	b.next++
	return fmt.Sprintf("%s_%d", prefix, b.next)
}

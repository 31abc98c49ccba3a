package onnx

import "fmt"

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
	b.g.Inputs = append(b.g.Inputs, TensorValue(name, t, shape...))
	return name
}

// Output declares value as a graph output.
func (b *Builder) Output(value string, t DataType, shape ...Dim) {
	b.g.Outputs = append(b.g.Outputs, TensorValue(value, t, shape...))
}

// Const adds t as an initializer under a fresh name and returns the name.
func (b *Builder) Const(t *Tensor) string {
	c := *t
	c.Name = b.fresh("const")
	b.g.Initializers = append(b.g.Initializers, &c)
	return c.Name
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
func (b *Builder) Op(op string, inputs []string, attrs ...Attr) string {
	out := b.fresh(op)
	b.OpTo(out, op, inputs, attrs...)
	return out
}

// OpTo appends a node whose one output is called out (for values that are
// graph outputs) and returns out.
func (b *Builder) OpTo(out, op string, inputs []string, attrs ...Attr) string {
	b.g.Nodes = append(b.g.Nodes, &Node{
		Op:      op,
		Name:    out + "_node",
		Inputs:  inputs,
		Outputs: []string{out},
		Attrs:   attrs,
	})
	return out
}

// Graph returns the graph built so far.
func (b *Builder) Graph() *Graph { return b.g }

// Model wraps the graph in a model that imports the default operator set
// at version opset, with IR version 8 (what ONNX Runtime 1.14 and newer
// read).
func (b *Builder) Model(opset int64, producer, version string) *Model {
	return &Model{
		IRVersion:       8,
		ProducerName:    producer,
		ProducerVersion: version,
		Opsets:          []OpsetImport{{Domain: "", Version: opset}},
		Graph:           b.g,
	}
}

func (b *Builder) fresh(prefix string) string {
	b.next++
	return fmt.Sprintf("%s_%d", prefix, b.next)
}

// OpN appends a node with n outputs (Split, for one) and returns their
// names.
func (b *Builder) OpN(op string, inputs []string, n int, attrs ...Attr) []string {
	outs := make([]string, n)
	for i := range outs {
		outs[i] = b.fresh(op)
	}
	b.g.Nodes = append(b.g.Nodes, &Node{
		Op:      op,
		Name:    outs[0] + "_node",
		Inputs:  inputs,
		Outputs: outs,
		Attrs:   attrs,
	})
	return outs
}

// InputAnyRank declares a graph input whose rank is not fixed (no shape in
// its type) and returns its name.
func (b *Builder) InputAnyRank(name string, t DataType) string {
	b.g.Inputs = append(b.g.Inputs, ValueInfo{Name: name, Type: t})
	return name
}

package onnx

import (
	"fmt"
	"slices"
)

// BatchRewrite reports what MakeBatchDynamic changed.
type BatchRewrite struct {
	// Inputs and Outputs name the graph values whose first dimension
	// became symbolic.
	Inputs  []string
	Outputs []string
	// Reshapes names the Reshape nodes whose hard-coded batch size was
	// replaced by an inferred one.
	Reshapes []string
	// ValueInfo counts the intermediate shape annotations whose first
	// dimension became symbolic too (those of values computed from a graph
	// input).
	ValueInfo int
}

// MakeBatchDynamic rewrites m so that its batch dimension (the first
// dimension of every graph input and output) is the symbolic param instead
// of a fixed 1:
//   - graph inputs and outputs get param as their first dimension;
//   - intermediate value_info annotations of values computed from a graph
//     input get param as their first dimension too;
//   - a Reshape of batch-carrying data (computed from a graph input) whose
//     constant target shape starts with 1 gets -1 there (or 0, "copy the
//     input's dimension", when the shape already has a -1).
//
// It fails, leaving m unusable, when the graph hard-codes the batch in a
// way it cannot rewrite: an input or output whose batch is larger than 1,
// a Resize with constant output sizes of batch-carrying data, or a Reshape
// with allowzero set. The caller should then keep the fixed-batch model.
func MakeBatchDynamic(m *Model, param string) (BatchRewrite, error) {
	var rep BatchRewrite
	g := m.Graph
	if g == nil {
		return rep, fmt.Errorf("onnx: model has no graph")
	}
	if param == "" {
		return rep, fmt.Errorf("onnx: empty batch dimension name")
	}
	inits := map[string]bool{}
	for _, t := range g.Initializer {
		inits[t.Name] = true
	}
	fix := func(v *ValueInfo, what string) (bool, error) {
		shape := Shape(v)
		if len(shape) == 0 {
			return false, nil
		}
		d := shape[0]
		switch {
		case d.Param != "":
			return false, nil
		case d.Value > 1:
			return false, fmt.Errorf("onnx: %s %q has a fixed batch of %d", what, v.GetName(), d.Value)
		}
		SetDim(v, 0, Symbolic(param))
		return true, nil
	}
	for i := range g.Input {
		if inits[g.Input[i].Name] {
			continue // an initializer listed as an input: a constant, not data
		}
		changed, err := fix(g.Input[i], "input")
		if err != nil {
			return rep, err
		}
		if changed {
			rep.Inputs = append(rep.Inputs, g.Input[i].Name)
		}
	}
	for i := range g.Output {
		changed, err := fix(g.Output[i], "output")
		if err != nil {
			return rep, err
		}
		if changed {
			rep.Outputs = append(rep.Outputs, g.Output[i].Name)
		}
	}

	// Values computed from a graph input carry the batch. Nodes are
	// visited in dependency order: files written by some converters do not
	// list them topologically.
	batched := map[string]bool{}
	for _, in := range g.Input {
		if !inits[in.Name] {
			batched[in.Name] = true
		}
	}
	order, err := TopologicalOrder(g)
	if err != nil {
		return rep, err
	}
	for _, idx := range order {
		n := g.Node[idx]
		carries := false
		for _, in := range n.Input {
			if batched[in] {
				carries = true
				break
			}
		}
		if !carries {
			continue
		}
		for _, out := range n.Output {
			batched[out] = true
		}
		if n.Domain != "" && n.Domain != "ai.onnx" {
			continue
		}
		switch n.OpType {
		case "Reshape":
			if len(n.Input) < 2 || !batched[n.Input[0]] {
				continue
			}
			shape := Constant(g, n.Input[1])
			if shape == nil {
				continue // computed at run time, from the data's own shape
			}
			dims, err := Int64s(shape)
			if err != nil {
				return rep, fmt.Errorf("onnx: Reshape %q: %w", n.Name, err)
			}
			if len(dims) < 2 || dims[0] != 1 {
				continue
			}
			if a := NodeAttr(n, "allowzero"); a != nil && a.I != 0 {
				return rep, fmt.Errorf("onnx: Reshape %q hard-codes batch 1 with allowzero set", n.Name)
			}
			nd := slices.Clone(dims)
			if slices.Contains(dims, -1) {
				nd[0] = 0
			} else {
				nd[0] = -1
			}
			t := Int64Tensor(uniqueName(g, n.Input[1]+"_dynbatch"), []int64{int64(len(nd))}, nd...)
			g.Initializer = append(g.Initializer, t)
			n.Input[1] = t.Name
			rep.Reshapes = append(rep.Reshapes, n.Name)
		case "Resize", "Upsample":
			if n.OpType == "Resize" && len(n.Input) >= 4 && n.Input[3] != "" {
				if sizes := Constant(g, n.Input[3]); sizes != nil {
					if v, err := Int64s(sizes); err == nil && len(v) > 0 && v[0] == 1 {
						return rep, fmt.Errorf("onnx: Resize %q has constant output sizes with batch 1", n.Name)
					}
				}
			}
		}
	}
	for _, v := range g.ValueInfo {
		if shape := Shape(v); batched[v.GetName()] && len(shape) > 0 && shape[0] == Fixed(1) {
			SetDim(v, 0, Symbolic(param))
			rep.ValueInfo++
		}
	}
	return rep, nil
}

// PruneOutputs keeps only the named graph outputs and removes the nodes
// and initializers that no longer contribute to any output. Graphs with
// control-flow subgraphs keep all their nodes (their outer-scope uses are
// not visible here); only the outputs are dropped.
func PruneOutputs(m *Model, keep ...string) error {
	g := m.Graph
	var outs []*ValueInfo
	for _, name := range keep {
		i := slices.IndexFunc(g.Output, func(v *ValueInfo) bool { return v.GetName() == name })
		if i < 0 {
			return fmt.Errorf("onnx: the graph has no output %q", name)
		}
		outs = append(outs, g.Output[i])
	}
	g.Output = outs
	for _, n := range g.Node {
		for _, a := range n.Attribute {
			// A subgraph, or fields of a newer ONNX that might hold one.
			if a.G != nil || len(a.Graphs) > 0 || a.Type == AttrGraph || a.Type == AttrGraphs ||
				len(a.ProtoReflect().GetUnknown()) > 0 {
				return nil
			}
		}
	}
	producer := map[string]int{}
	for i, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = i
		}
	}
	needed := map[string]bool{}
	used := make([]bool, len(g.Node))
	var work []string
	for _, o := range g.Output {
		needed[o.Name] = true
		work = append(work, o.Name)
	}
	for len(work) > 0 {
		v := work[len(work)-1]
		work = work[:len(work)-1]
		i, ok := producer[v]
		if !ok || used[i] {
			continue
		}
		used[i] = true
		for _, in := range g.Node[i].Input {
			if in != "" && !needed[in] {
				needed[in] = true
				work = append(work, in)
			}
		}
	}
	kept := make([]*Node, 0, len(g.Node))
	for i, n := range g.Node {
		if used[i] {
			kept = append(kept, n)
		}
	}
	g.Node = kept
	isInit := map[string]bool{}
	for _, t := range g.Initializer {
		isInit[t.Name] = true
	}
	inits := g.Initializer[:0]
	for _, t := range g.Initializer {
		if needed[t.Name] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	ins := g.Input[:0]
	for _, v := range g.Input {
		// Real inputs stay even when unused (callers bind them by name);
		// initializers listed as inputs go with their initializer.
		if needed[v.Name] || !isInit[v.Name] {
			ins = append(ins, v)
		}
	}
	g.Input = ins
	return nil
}

func uniqueName(g *Graph, base string) string {
	name := base
	for i := 2; Initializer(g, name) != nil || Producer(g, name) != nil; i++ {
		name = fmt.Sprintf("%s_%d", base, i)
	}
	return name
}

// TopologicalOrder returns the indices of g's nodes in an order where every
// node comes after the nodes producing its inputs. ONNX asks for files to
// list nodes that way, but not every converter does.
func TopologicalOrder(g *Graph) ([]int, error) {
	producer := map[string]int{}
	for i, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = i
		}
	}
	waiting := make([]int, len(g.Node))
	users := make([][]int, len(g.Node))
	var ready []int
	for i, n := range g.Node {
		deps := map[int]bool{}
		for _, in := range n.Input {
			if p, ok := producer[in]; ok && in != "" && p != i {
				deps[p] = true
			}
		}
		waiting[i] = len(deps)
		for p := range deps {
			users[p] = append(users[p], i)
		}
		if len(deps) == 0 {
			ready = append(ready, i)
		}
	}
	order := make([]int, 0, len(g.Node))
	for len(ready) > 0 {
		i := ready[0]
		ready = ready[1:]
		order = append(order, i)
		for _, u := range users[i] {
			waiting[u]--
			if waiting[u] == 0 {
				ready = append(ready, u)
			}
		}
	}
	if len(order) != len(g.Node) {
		return nil, fmt.Errorf("onnx: the graph has a cycle")
	}
	return order, nil
}

// FuseClips merges a Clip that bounds one side into the one-sided Clip
// that produces its input, when nothing else reads that input: a clamp
// written as two Clips becomes one pass over the tensor. It returns the
// number of Clips removed.
func FuseClips(g *Graph) int {
	readers := map[string]int{}
	for _, n := range g.Node {
		for _, in := range n.Input {
			readers[in]++
		}
	}
	for _, o := range g.Output {
		readers[o.Name]++
	}
	bound := func(n *Node, i int) string {
		if i < len(n.Input) {
			return n.Input[i]
		}
		return ""
	}
	producer := map[string]*Node{}
	for _, n := range g.Node {
		for _, o := range n.Output {
			producer[o] = n
		}
	}
	removed := map[*Node]bool{}
	for _, outer := range g.Node {
		if outer.OpType != "Clip" || outer.Domain != "" || len(outer.Input) == 0 {
			continue
		}
		inner := producer[outer.Input[0]]
		if inner == nil || inner.OpType != "Clip" || inner.Domain != "" || removed[inner] ||
			len(inner.Input) == 0 || readers[outer.Input[0]] != 1 {
			continue
		}
		lo, hi := bound(outer, 1), bound(outer, 2)
		ilo, ihi := bound(inner, 1), bound(inner, 2)
		switch {
		case lo == "" && ilo != "" && ihi == "":
			lo = ilo
		case hi == "" && ihi != "" && ilo == "":
			hi = ihi
		default:
			continue
		}
		outer.Input = []string{inner.Input[0], lo, hi}
		if hi == "" {
			outer.Input = outer.Input[:2]
		}
		removed[inner] = true
	}
	if len(removed) == 0 {
		return 0
	}
	kept := g.Node[:0]
	for _, n := range g.Node {
		if !removed[n] {
			kept = append(kept, n)
		}
	}
	g.Node = kept
	return len(removed)
}

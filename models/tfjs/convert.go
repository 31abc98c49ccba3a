package tfjs

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"vidmatte/models/onnx"
)

// Opset is the ONNX operator set the converted graphs import.
const Opset = 17

// Options steers a conversion.
type Options struct {
	// Name is the ONNX graph's name ("tfjs" when empty).
	Name string
	// Outputs are the outputs to build, by signature key ("pha") or tensor
	// name ("Identity_1:0"); empty means every signature output. Only what
	// they depend on is converted.
	Outputs []string
	// Below states, for folding Switch/Merge control flow, that a scalar
	// input (by placeholder name) always stays strictly below a bound:
	// Equal(input, c) with c >= bound is then false. RVM's graph branches
	// on downsample_ratio == 1; {"downsample_ratio": 1} folds it for every
	// ratio below 1.
	Below map[string]float64
	// InputShapes declares the shape of inputs the model leaves open
	// (by placeholder name; -1 for a dynamic size). RVM's
	// downsample_ratio has no rank in the model; declared as [1], ONNX
	// Runtime's shape inference can follow the resize sizes computed
	// from it (left without a rank, it rejects the graph).
	InputShapes map[string][]int64
}

// Error is a conversion failure tied to a node of the source graph.
type Error struct {
	Node string // the source node's name
	Op   string // its TensorFlow op
	Msg  string
}

func (e *Error) Error() string {
	return fmt.Sprintf("tfjs: node %q (%s): %s", e.Node, e.Op, e.Msg)
}

// UnsupportedOpError is returned for an op the converter does not map.
type UnsupportedOpError struct {
	Node, Op string
}

func (e *UnsupportedOpError) Error() string {
	return fmt.Sprintf("tfjs: unsupported TensorFlow op %q (node %q)", e.Op, e.Node)
}

// Ops returns the TensorFlow ops the converter maps, sorted.
func Ops() []string {
	var ops []string
	for op := range opTable {
		ops = append(ops, op)
	}
	ops = append(ops, "Const", "Placeholder", "Identity", "NoOp", "Switch", "Merge", "SpaceToBatchND", "BatchToSpaceND")
	sort.Strings(ops)
	return ops
}

// ref is one output of a node: "name" or "name:k".
type ref struct {
	node string
	port int
}

func (r ref) String() string {
	if r.port == 0 {
		return r.node
	}
	return fmt.Sprintf("%s:%d", r.node, r.port)
}

func parseRef(s string) ref {
	if i := strings.LastIndexByte(s, ':'); i > 0 {
		if p, err := strconv.Atoi(s[i+1:]); err == nil && p >= 0 {
			return ref{s[:i], p}
		}
	}
	return ref{s, 0}
}

// value is a converted tensor: its name in the ONNX graph and its element
// type.
type value struct {
	name string
	dt   onnx.DataType
}

type converter struct {
	m    *Model
	opts Options
	b    *onnx.Builder

	dead   map[ref]bool
	vis    map[ref]bool
	vals   map[string][]value
	active map[string]bool
	// batchOne is set when the image input was declared with batch 1 and
	// the converted graph makes it dynamic: constant Reshape targets then
	// get -1 for their leading 1.
	batchOne bool
	// chans memoizes channels; users counts each node's readers.
	chans map[ref]int64
	users map[string]int
}

// Convert converts m to an ONNX model (opset 17).
func Convert(m *Model, opts Options) (*onnx.Model, error) {
	if m.byName == nil {
		m.byName = map[string]*Node{}
		for _, n := range m.Nodes {
			m.byName[n.Name] = n
		}
	}
	name := opts.Name
	if name == "" {
		name = "tfjs"
	}
	c := &converter{
		m: m, opts: opts, b: onnx.NewBuilder(name),
		dead: map[ref]bool{}, vis: map[ref]bool{}, vals: map[string][]value{}, active: map[string]bool{},
	}
	type want struct {
		key   string
		r     ref
		shape []int64
	}
	var wants []want
	if len(opts.Outputs) == 0 {
		for _, o := range m.Outputs {
			wants = append(wants, want{o.Key, parseRef(o.Name), o.Shape})
		}
		if len(wants) == 0 {
			return nil, fmt.Errorf("tfjs: the model has no signature outputs; name the outputs to convert")
		}
	} else {
		for _, o := range opts.Outputs {
			w := want{key: o, r: parseRef(o)}
			for _, s := range m.Outputs {
				if s.Key == o || s.Name == o {
					w = want{s.Key, parseRef(s.Name), s.Shape}
				}
			}
			wants = append(wants, w)
		}
	}
	// Placeholders first, in name order, so that the inputs keep a stable
	// order and an unused input is still declared.
	var phs []*Node
	for _, n := range m.Nodes {
		if n.Op == "Placeholder" {
			phs = append(phs, n)
		}
	}
	sort.Slice(phs, func(i, j int) bool { return phs[i].Name < phs[j].Name })
	for _, n := range phs {
		if err := c.placeholder(n); err != nil {
			return nil, err
		}
	}
	used := map[string]bool{}
	for _, w := range wants {
		if _, ok := m.byName[w.r.node]; !ok {
			return nil, fmt.Errorf("tfjs: output %q: no node %q in the graph", w.key, w.r.node)
		}
		d, err := c.isDead(w.r)
		if err != nil {
			return nil, err
		}
		if d {
			return nil, fmt.Errorf("tfjs: output %q is not computed under the control-flow assumptions given (Options.Below)", w.key)
		}
		v, err := c.emit(w.r)
		if err != nil {
			return nil, err
		}
		key := strings.TrimSuffix(w.key, ":0")
		key = strings.ReplaceAll(key, ":", "_")
		if used[key] {
			return nil, fmt.Errorf("tfjs: output %q is requested twice", w.key)
		}
		if _, isInput := c.vals[key]; isInput && c.m.byName[key] != nil && c.m.byName[key].Op == "Placeholder" {
			return nil, fmt.Errorf("tfjs: output %q has the name of an input; ONNX needs distinct names", key)
		}
		used[key] = true
		c.b.OpTo(key, "Identity", []string{v.name})
		var shape []onnx.Dim
		if w.shape != nil {
			shape = make([]onnx.Dim, len(w.shape))
			for i, d := range w.shape {
				switch {
				case i == 0 && (d < 0 || c.batchOne):
					shape[i] = onnx.Symbolic("N")
				case d > 0:
					shape[i] = onnx.Fixed(d)
				}
			}
			c.b.Output(key, v.dt, shape...)
		} else {
			c.b.OutputAnyRank(key, v.dt)
		}
	}
	onnx.FuseClips(c.b.Graph())
	return c.b.Model(Opset, "vidmatte-tfjs", "1"), nil
}

func (c *converter) node(r ref) (*Node, error) {
	n, ok := c.m.byName[r.node]
	if !ok {
		return nil, fmt.Errorf("tfjs: reference to a missing node %q", r.node)
	}
	return n, nil
}

// dataInputs returns n's inputs other than control inputs ("^name").
func dataInputs(n *Node) []string {
	var in []string
	for _, s := range n.Inputs {
		if !strings.HasPrefix(s, "^") {
			in = append(in, s)
		}
	}
	return in
}

func errf(n *Node, format string, args ...any) error {
	return &Error{Node: n.Name, Op: n.Op, Msg: fmt.Sprintf(format, args...)}
}

// isDead reports whether r is never computed once the control flow is
// folded: an untaken Switch output, and everything that needs one (a Merge
// needs only one live input).
func (c *converter) isDead(r ref) (bool, error) {
	if d, ok := c.dead[r]; ok {
		return d, nil
	}
	if c.vis[r] {
		return false, fmt.Errorf("tfjs: the graph has a cycle through %q (loops are not supported)", r.node)
	}
	c.vis[r] = true
	defer delete(c.vis, r)
	n, err := c.node(r)
	if err != nil {
		return false, err
	}
	in := dataInputs(n)
	var d bool
	switch n.Op {
	case "Switch":
		if len(in) != 2 {
			return false, errf(n, "needs 2 inputs, has %d", len(in))
		}
		if d, err = c.isDead(parseRef(in[0])); err != nil {
			return false, err
		}
		if !d {
			p, err := c.predicate(parseRef(in[1]))
			if err != nil {
				return false, errf(n, "%v", err)
			}
			d = (r.port == 1) != p
		}
	case "Merge":
		d = true
		for _, s := range in {
			x, err := c.isDead(parseRef(s))
			if err != nil {
				return false, err
			}
			d = d && x
		}
	default:
		for _, s := range in {
			x, err := c.isDead(parseRef(s))
			if err != nil {
				return false, err
			}
			if x {
				d = true
				break
			}
		}
	}
	c.dead[r] = d
	return d, nil
}

// predicate folds a Switch predicate to a constant.
func (c *converter) predicate(r ref) (bool, error) {
	n, err := c.node(r)
	if err != nil {
		return false, err
	}
	in := dataInputs(n)
	switch n.Op {
	case "Identity", "Squeeze", "Switch":
		if len(in) == 0 {
			break
		}
		return c.predicate(parseRef(in[0]))
	case "LogicalNot":
		p, err := c.predicate(parseRef(in[0]))
		return !p, err
	case "Const":
		t := c.m.Weights[n.Name]
		if t != nil && t.DType == Bool && len(t.B) == 1 {
			return t.B[0], nil
		}
	case "Equal", "NotEqual":
		if len(in) != 2 {
			break
		}
		for i := range 2 {
			k := c.constOf(parseRef(in[i]))
			p := c.source(parseRef(in[1-i]))
			if k == nil || k.Len() != 1 || p == nil || p.Op != "Placeholder" {
				continue
			}
			bound, ok := c.opts.Below[p.Name]
			if !ok {
				return false, fmt.Errorf("its predicate %q compares input %q with a constant; fold it by giving a bound for %q in Options.Below", r.node, p.Name, p.Name)
			}
			var kv float64
			if k.DType == Float32 {
				kv = float64(k.F[0])
			} else if k.DType == Int32 {
				kv = float64(k.I[0])
			}
			if kv < bound {
				return false, fmt.Errorf("its predicate %q compares input %q with %g, below the bound %g it was given: the outcome is not fixed", r.node, p.Name, kv, bound)
			}
			return n.Op == "NotEqual", nil
		}
	}
	return false, fmt.Errorf("cannot fold the predicate %q (%s) to a constant", r.node, n.Op)
}

// source follows Identity nodes (and Switch nodes, which pass their data
// through on the live port) back to the node that computes r.
func (c *converter) source(r ref) *Node {
	for range 64 {
		n, ok := c.m.byName[r.node]
		if !ok {
			return nil
		}
		if n.Op != "Identity" && n.Op != "Switch" {
			return n
		}
		in := dataInputs(n)
		if len(in) == 0 {
			return nil
		}
		r = parseRef(in[0])
	}
	return nil
}

// constOf returns r's value when r is a Const (possibly behind Identity
// nodes), or nil.
func (c *converter) constOf(r ref) *Tensor {
	n := c.source(r)
	if n == nil || n.Op != "Const" {
		return nil
	}
	return c.m.Weights[n.Name]
}

// emit converts r and returns its value.
func (c *converter) emit(r ref) (value, error) {
	n, err := c.node(r)
	if err != nil {
		return value{}, err
	}
	vs, ok := c.vals[n.Name]
	if !ok {
		if c.active[n.Name] {
			return value{}, fmt.Errorf("tfjs: the graph has a cycle through %q (loops are not supported)", n.Name)
		}
		c.active[n.Name] = true
		vs, err = c.convertNode(n, r)
		delete(c.active, n.Name)
		if err != nil {
			return value{}, err
		}
		c.vals[n.Name] = vs
	}
	if r.port >= len(vs) {
		return value{}, errf(n, "has no output %d", r.port)
	}
	return vs[r.port], nil
}

// in converts the i-th data input of n.
func (c *converter) in(n *Node, i int) (value, error) {
	in := dataInputs(n)
	if i >= len(in) {
		return value{}, errf(n, "needs at least %d inputs, has %d", i+1, len(in))
	}
	return c.emit(parseRef(in[i]))
}

// constIn returns the i-th data input of n, which must be a constant.
func (c *converter) constIn(n *Node, i int, what string) (*Tensor, error) {
	in := dataInputs(n)
	if i >= len(in) {
		return nil, errf(n, "needs at least %d inputs, has %d", i+1, len(in))
	}
	t := c.constOf(parseRef(in[i]))
	if t == nil {
		return nil, errf(n, "its %s (input %d, %q) must be a constant", what, i, in[i])
	}
	return t, nil
}

func (c *converter) convertNode(n *Node, r ref) ([]value, error) {
	switch n.Op {
	case "Const":
		t, ok := c.m.Weights[n.Name]
		if !ok {
			return nil, errf(n, "no value for this constant in the weights manifest")
		}
		return []value{c.constant(t)}, nil
	case "Placeholder":
		vs, ok := c.vals[n.Name]
		if !ok {
			return nil, errf(n, "placeholder not declared")
		}
		return vs, nil
	case "Identity", "StopGradient", "Snapshot":
		v, err := c.in(n, 0)
		return []value{v}, err
	case "Switch":
		// Only the live port is ever asked for (isDead): it passes its
		// data through.
		v, err := c.in(n, 0)
		if err != nil {
			return nil, err
		}
		return []value{v, v}, nil
	case "Merge":
		for i, s := range dataInputs(n) {
			d, err := c.isDead(parseRef(s))
			if err != nil {
				return nil, err
			}
			if !d {
				v, err := c.emit(parseRef(s))
				if err != nil {
					return nil, err
				}
				return []value{v, {name: c.b.Const(onnx.Int64Tensor("", nil, int64(i))), dt: onnx.Int64}}, nil
			}
		}
		return nil, errf(n, "no live input")
	case "BatchToSpaceND":
		return c.dilatedConv(n)
	case "SpaceToBatchND":
		return nil, errf(n, "SpaceToBatchND is supported only as the start of a dilated convolution (SpaceToBatchND → convolution → BatchToSpaceND)")
	case "NoOp":
		return nil, errf(n, "a NoOp has no value")
	}
	f, ok := opTable[n.Op]
	if !ok {
		return nil, &UnsupportedOpError{Node: n.Name, Op: n.Op}
	}
	return f(c, n)
}

// constant adds t as an initializer; int32 becomes int64.
func (c *converter) constant(t *Tensor) value {
	dims := t.Shape
	if len(dims) == 0 {
		dims = nil
	}
	switch t.DType {
	case Float32:
		return value{c.b.Float(dims, t.F...), onnx.Float}
	case Int32:
		return value{c.b.Const(onnx.Int64Tensor("", dims, t.I...)), onnx.Int64}
	}
	raw := make([]byte, len(t.B))
	for i, b := range t.B {
		if b {
			raw[i] = 1
		}
	}
	return value{c.b.Const(onnx.RawTensor("", onnx.Bool, dims, raw)), onnx.Bool}
}

func (c *converter) ints(v ...int64) value { return value{c.b.Int64s(v...), onnx.Int64} }

func (c *converter) scalarInt(v int64) value {
	return value{c.b.Const(onnx.Int64Tensor("", nil, v)), onnx.Int64}
}

// placeholder declares a graph input: float stays float, integers become
// int64. The leading (batch) dimension is dynamic, and so is every size
// the model leaves open.
func (c *converter) placeholder(n *Node) error {
	dt, err := onnxType(n, n.Attr["dtype"].Type)
	if err != nil {
		return err
	}
	sh := n.Attr["shape"].Shape
	d := sh.dims()
	if o, ok := c.opts.InputShapes[n.Name]; ok {
		d, sh = o, &shapeJSON{}
	}
	if sh == nil || sh.UnknownRank {
		c.b.InputAnyRank(n.Name, dt)
	} else {
		dims := make([]onnx.Dim, len(d))
		for i, x := range d {
			switch {
			case i == 0 && len(d) == 4:
				if x == 1 {
					c.batchOne = true
				}
				dims[i] = onnx.Symbolic("N")
			case x < 0:
				dims[i] = onnx.Symbolic(fmt.Sprintf("%s_%d", n.Name, i))
			default:
				dims[i] = onnx.Fixed(x)
			}
		}
		c.b.Input(n.Name, dt, dims...)
	}
	c.vals[n.Name] = []value{{n.Name, dt}}
	return nil
}

func onnxType(n *Node, tf string) (onnx.DataType, error) {
	switch tf {
	case "DT_FLOAT":
		return onnx.Float, nil
	case "DT_INT32", "DT_INT64":
		return onnx.Int64, nil
	case "DT_BOOL":
		return onnx.Bool, nil
	}
	return 0, errf(n, "unsupported element type %q (float32, int32, int64 and bool are)", tf)
}

// ConvertFile loads the graph model at path (model.json) and returns the
// converted ONNX file's bytes with the node count.
func ConvertFile(path string, opts Options) ([]byte, int, error) {
	m, err := Load(path)
	if err != nil {
		return nil, 0, err
	}
	om, err := Convert(m, opts)
	if err != nil {
		return nil, 0, err
	}
	data, err := onnx.Marshal(om)
	if err != nil {
		return nil, 0, err
	}
	return data, len(om.Graph.Node), nil
}

const maxInt64 = math.MaxInt64

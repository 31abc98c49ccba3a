package tfjs

// A channel split of a computed tensor is pushed down to the tensors it
// is computed from: each part is computed from the matching channels of
// the operands (elementwise ops, resizes) or taken whole from a channel
// concatenation, so the split's input is never computed whole. RVM ends
// with split(A↑ · concat(src, mean(src)) + b↑, [3, 1]), where ↑ is a
// bilinear resize to the frame's size: pushed down, A and b are sliced
// before their resize, at the model's low resolution, and the
// full-resolution concatenation and split are gone.

// singleUse says whether r's node (and every Identity or Switch between
// it and the node that computes it) feeds one input of one node only, so
// that computing it in parts computes nothing twice.
func (c *converter) singleUse(r ref) bool {
	if c.users == nil {
		c.users = map[string]int{}
		for _, n := range c.m.Nodes {
			for _, in := range dataInputs(n) {
				c.users[parseRef(in).node]++
			}
		}
		for _, o := range c.m.Outputs {
			c.users[parseRef(o.Name).node]++
		}
	}
	for range 64 {
		n := c.m.byName[r.node]
		if n == nil || c.users[n.Name] != 1 {
			return false
		}
		if n.Op != "Identity" && n.Op != "Switch" {
			return true
		}
		in := dataInputs(n)
		if len(in) == 0 {
			return false
		}
		r = parseRef(in[0])
	}
	return false
}

// pushSplit returns the parts of a channel split of r into sizes, each
// computed by channelSlice, or nil when r is not computed by an op the
// split can be pushed through (the caller then splits r itself).
func (c *converter) pushSplit(r ref, sizes []int64) ([]value, error) {
	src := c.source(r)
	if src == nil || !c.singleUse(r) {
		return nil, nil
	}
	switch src.Op {
	case "Add", "AddV2", "Sub", "Mul", "RealDiv", "ResizeBilinear":
	default:
		return nil, nil
	}
	var total int64
	for _, s := range sizes {
		total += s
	}
	if c.channels(r) != total {
		return nil, nil
	}
	vs := make([]value, len(sizes))
	var off int64
	for i, s := range sizes {
		v, err := c.channelSlice(r, off, s)
		if err != nil {
			return nil, err
		}
		vs[i] = v
		off += s
	}
	return vs, nil
}

// channelSlice emits channels [off, off+n) of r, whose channel count is
// known.
func (c *converter) channelSlice(r ref, off, n int64) (value, error) {
	total := c.channels(r)
	if off == 0 && n == total {
		return c.emit(r)
	}
	src := c.source(r)
	in := dataInputs(src)
	switch src.Op {
	case "ConcatV2":
		if !c.isChannelAxis(in[len(in)-1]) {
			break
		}
		var at int64
		for _, p := range in[:len(in)-1] {
			k := c.channels(parseRef(p))
			if k == 0 {
				break
			}
			if off >= at && off+n <= at+k {
				return c.channelSlice(parseRef(p), off-at, n)
			}
			at += k
		}
	case "Add", "AddV2", "Sub", "Mul", "RealDiv":
		if !c.singleUse(r) || len(in) != 2 {
			break
		}
		var args [2]value
		ok := true
		for i := range 2 {
			k, p := c.channels(parseRef(in[i])), parseRef(in[i])
			var err error
			switch {
			case k == total:
				args[i], err = c.channelSlice(p, off, n)
			case k == 1 || c.isScalar(in[i]):
				args[i], err = c.emit(p) // broadcast along the channels
			default:
				ok = false
			}
			if err != nil {
				return value{}, err
			}
		}
		if !ok || args[0].dt != args[1].dt {
			break
		}
		op := map[string]string{"Add": "Add", "AddV2": "Add", "Sub": "Sub", "Mul": "Mul", "RealDiv": "Div"}[src.Op]
		return value{c.b.Op(op, names(args[0], args[1])), args[0].dt}, nil
	case "ResizeBilinear":
		if !c.singleUse(r) {
			break
		}
		x, err := c.channelSlice(parseRef(in[0]), off, n)
		if err != nil {
			return value{}, err
		}
		return c.resize(src, x, n)
	}
	v, err := c.emit(r)
	if err != nil {
		return value{}, err
	}
	return value{c.b.Op("Slice", []string{v.name, c.b.Int64s(off), c.b.Int64s(off + n), c.b.Int64s(3)}), v.dt}, nil
}

package tfjs

// channels returns the size of the last (channel) axis of the 4-D NHWC
// tensor r, when the graph fixes it, or 0. It follows the ops that keep
// or compute the channel count (convolutions by their filters,
// elementwise ops, pools, resizes, crops, channel concats and splits)
// back to constants and declared input shapes. Results are memoized.
func (c *converter) channels(r ref) int64 {
	if c.chans == nil {
		c.chans = map[ref]int64{}
	}
	if v, ok := c.chans[r]; ok {
		return v
	}
	c.chans[r] = 0 // a cycle or an unknown op reads as unknown
	v := c.channelsOf(r)
	c.chans[r] = v
	return v
}

func (c *converter) channelsOf(r ref) int64 {
	n := c.source(r)
	if n == nil {
		return 0
	}
	in := dataInputs(n)
	arg := func(i int) int64 {
		if i >= len(in) {
			return 0
		}
		return c.channels(parseRef(in[i]))
	}
	last := func(s []int64) int64 {
		if len(s) != 4 || s[3] <= 0 {
			return 0
		}
		return s[3]
	}
	switch n.Op {
	case "Placeholder":
		d := n.Attr["shape"].Shape.dims()
		if o, ok := c.opts.InputShapes[n.Name]; ok {
			d = o
		}
		return last(d)
	case "Const":
		if t := c.m.Weights[n.Name]; t != nil {
			return last(t.Shape)
		}
	case "Conv2D", "_FusedConv2D":
		if t := c.constOf(parseRef(in[1])); t != nil && len(t.Shape) == 4 {
			return t.Shape[3]
		}
	case "DepthwiseConv2dNative", "FusedDepthwiseConv2dNative":
		if t := c.constOf(parseRef(in[1])); t != nil && len(t.Shape) == 4 {
			return t.Shape[2] * t.Shape[3]
		}
	case "Relu", "Relu6", "Sigmoid", "Tanh", "Square", "AvgPool", "MaxPool", "ResizeBilinear", "BiasAdd", "Cast":
		return arg(0)
	case "Merge":
		for i := range in {
			if dead, err := c.isDead(parseRef(in[i])); err == nil && !dead {
				return arg(i)
			}
		}
	case "Add", "AddV2", "Sub", "Mul", "RealDiv", "Minimum", "Maximum":
		a, b := arg(0), arg(1)
		switch {
		case a > 0 && (a == b || c.isScalar(in[1])):
			return a
		case b > 0 && c.isScalar(in[0]):
			return b
		}
	case "Mean":
		if len(in) == 2 && n.Attr["keep_dims"].B {
			t := c.constOf(parseRef(in[1]))
			if t == nil || t.DType != Int32 {
				break
			}
			channelAxis := false
			for _, a := range t.I {
				channelAxis = channelAxis || a == 3 || a == -1
			}
			if channelAxis {
				return 1
			}
			return arg(0)
		}
	case "BroadcastTo":
		// To the shape of another tensor (RVM broadcasts its initial
		// states to the features' shape).
		if len(in) == 2 {
			if sh := c.source(parseRef(in[1])); sh != nil && sh.Op == "Shape" {
				if k := c.channels(parseRef(dataInputs(sh)[0])); k > 0 {
					return k
				}
			}
		}
	case "Slice":
		// A crop: the channel axis begins at 0 and runs to the end.
		if len(in) == 3 && c.lastEntry(in[1]) == 0 && c.lastEntry(in[2]) == -1 {
			return arg(0)
		}
	case "ConcatV2":
		if len(in) < 3 || !c.isChannelAxis(in[len(in)-1]) {
			return 0
		}
		var sum int64
		for i := range len(in) - 1 {
			k := arg(i)
			if k == 0 {
				return 0
			}
			sum += k
		}
		return sum
	case "Split":
		if len(in) == 2 && c.isChannelAxis(in[0]) {
			if k, parts := arg(1), int64(n.Attr["num_split"].I); k > 0 && parts > 0 && k%parts == 0 {
				return k / parts
			}
		}
	case "SplitV":
		if len(in) == 3 && c.isChannelAxis(in[2]) {
			if t := c.constOf(parseRef(in[1])); t != nil && t.DType == Int32 && r.port < len(t.I) && t.I[r.port] > 0 {
				return t.I[r.port]
			}
		}
	}
	return 0
}

// isScalar says whether s is a constant of one element.
func (c *converter) isScalar(s string) bool {
	t := c.constOf(parseRef(s))
	return t != nil && t.Len() == 1
}

// isChannelAxis says whether s is the constant axis 3 or -1.
func (c *converter) isChannelAxis(s string) bool {
	t := c.constOf(parseRef(s))
	return t != nil && t.DType == Int32 && len(t.I) == 1 && (t.I[0] == 3 || t.I[0] == -1)
}

// lastEntry returns the last entry of the 4-vector s when it is fixed (a
// constant, or a Pack whose last input is one), or the smallest int64.
func (c *converter) lastEntry(s string) int64 {
	const unknown = -1 << 63
	r := parseRef(s)
	if t := c.constOf(r); t != nil {
		if t.DType == Int32 && len(t.I) == 4 {
			return t.I[3]
		}
		return unknown
	}
	n := c.source(r)
	if n == nil || n.Op != "Pack" || n.Attr["axis"].I != 0 {
		return unknown
	}
	in := dataInputs(n)
	if len(in) != 4 {
		return unknown
	}
	if t := c.constOf(parseRef(in[3])); t != nil && t.DType == Int32 && len(t.I) == 1 {
		return t.I[0]
	}
	return unknown
}

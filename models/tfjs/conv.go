package tfjs

import (
	"fmt"

	"vidmatte/models/onnx"
)

// The graph stays NHWC; convolutions and pools, which ONNX defines on
// NCHW, are wrapped in these two Transposes (ONNX Runtime cancels the
// pairs between consecutive convolutions).
func (c *converter) toNCHW(x string) string {
	return c.b.Op("Transpose", []string{x}, onnx.IntsAttr("perm", 0, 3, 1, 2))
}

func (c *converter) toNHWC(x string) string {
	return c.b.Op("Transpose", []string{x}, onnx.IntsAttr("perm", 0, 2, 3, 1))
}

// hw returns the H and W entries of an NHWC 4-vector attribute (strides,
// dilations, ksize), def when it is absent.
func hw(n *Node, name string, def int64) ([]int64, error) {
	v := n.Attr[name].Ints()
	if len(v) == 0 {
		return []int64{def, def}, nil
	}
	if len(v) != 4 || v[0] != 1 || v[3] != 1 {
		return nil, errf(n, "%s %v: only NHWC values [1, h, w, 1] are supported", name, v)
	}
	return []int64{v[1], v[2]}, nil
}

func checkNHWC(n *Node) error {
	if f := string(n.Attr["data_format"].S); f != "" && f != "NHWC" {
		return errf(n, "data_format %q is not supported (NHWC is)", f)
	}
	return nil
}

// padAttrs returns the ONNX padding attributes for TensorFlow's padding
// attribute: SAME is SAME_UPPER (the extra row or column at the end, as
// TensorFlow does), VALID none, EXPLICIT the given pairs.
func padAttrs(n *Node) ([]*onnx.Attr, error) {
	switch p := string(n.Attr["padding"].S); p {
	case "SAME":
		return []*onnx.Attr{onnx.StringAttr("auto_pad", "SAME_UPPER")}, nil
	case "VALID":
		return nil, nil
	case "EXPLICIT":
		e := n.Attr["explicit_paddings"].Ints()
		if len(e) != 8 || e[0] != 0 || e[1] != 0 || e[6] != 0 || e[7] != 0 {
			return nil, errf(n, "explicit_paddings %v: only H and W may be padded", e)
		}
		return []*onnx.Attr{onnx.IntsAttr("pads", e[2], e[4], e[3], e[5])}, nil
	default:
		return nil, errf(n, "padding %q is not supported", p)
	}
}

// convWeights converts a TensorFlow filter to ONNX's layout: Conv2D's
// [kh, kw, ci, co] to [co, ci, kh, kw]; a depthwise [kh, kw, c, m] to
// [c·m, 1, kh, kw] (group c: output channel c·m + k, as TensorFlow orders
// them).
func convWeights(n *Node, t *Tensor, depthwise bool) (*onnx.Tensor, int64, error) {
	if t.DType != Float32 || len(t.Shape) != 4 {
		return nil, 0, errf(n, "filter must be a float 4-D constant, is %s %v", t.DType, t.Shape)
	}
	kh, kw, ci, co := t.Shape[0], t.Shape[1], t.Shape[2], t.Shape[3]
	out := make([]float32, len(t.F))
	if depthwise {
		// co is the channel multiplier.
		for y := range kh {
			for x := range kw {
				for ch := range ci {
					for m := range co {
						out[((ch*co+m)*kh+y)*kw+x] = t.F[((y*kw+x)*ci+ch)*co+m]
					}
				}
			}
		}
		return onnx.FloatTensor("", []int64{ci * co, 1, kh, kw}, out...), ci, nil
	}
	for y := range kh {
		for x := range kw {
			for i := range ci {
				for o := range co {
					out[((o*ci+i)*kh+y)*kw+x] = t.F[((y*kw+x)*ci+i)*co+o]
				}
			}
		}
	}
	return onnx.FloatTensor("", []int64{co, ci, kh, kw}, out...), 1, nil
}

// conv2D converts Conv2D, DepthwiseConv2dNative and their fused forms
// (a bias and an activation).
func conv2D(c *converter, n *Node) ([]value, error) {
	xs, fts, err := c.concatSplit(n)
	if err != nil {
		return nil, err
	}
	if xs != nil {
		return c.conv(n, xs, fts, nil)
	}
	x, err := c.in(n, 0)
	if err != nil {
		return nil, err
	}
	return c.conv(n, []value{x}, nil, nil)
}

// concatSplit splits a convolution of a channel concatenation whose
// channel count is not a multiple of 8 (RVM's decoder convolves its
// features concatenated with the 3-channel downsampled frame: 35, 59,
// 107 and 171 channels) into one convolution per part, summed, which is
// the same convolution. ONNX Runtime's blocked (NCHWc) convolutions need
// channel counts in multiples of its block; an odd count falls back to a
// generic convolution about twice as slow per operation, and the
// concatenation itself is gone. (Convolving the parts of 8·k channels
// together instead measured the same.) It returns the parts and their
// slices of the filter, or none to convert n whole.
func (c *converter) concatSplit(n *Node) (xs []value, fts []*Tensor, err error) {
	if n.Op != "Conv2D" && n.Op != "_FusedConv2D" {
		return nil, nil, nil
	}
	in := dataInputs(n)
	cat := c.source(parseRef(in[0]))
	ft := c.constOf(parseRef(in[1]))
	if cat == nil || cat.Op != "ConcatV2" || ft == nil || ft.DType != Float32 || len(ft.Shape) != 4 {
		return nil, nil, nil
	}
	parts := dataInputs(cat)
	if len(parts) < 3 || !c.isChannelAxis(parts[len(parts)-1]) {
		return nil, nil, nil
	}
	parts = parts[:len(parts)-1]
	kh, kw, ci, co := ft.Shape[0], ft.Shape[1], ft.Shape[2], ft.Shape[3]
	if ci%8 == 0 {
		return nil, nil, nil
	}
	widths := make([]int64, len(parts))
	var total int64
	aligned := false
	for i, p := range parts {
		widths[i] = c.channels(parseRef(p))
		if widths[i] == 0 {
			return nil, nil, nil
		}
		aligned = aligned || widths[i]%8 == 0
		total += widths[i]
	}
	if total != ci || !aligned {
		return nil, nil, nil
	}
	var off int64
	for i, p := range parts {
		x, err := c.emit(parseRef(p))
		if err != nil {
			return nil, nil, err
		}
		k := widths[i]
		t := &Tensor{DType: Float32, Shape: []int64{kh, kw, k, co}, F: make([]float32, 0, kh*kw*k*co)}
		for y := range kh * kw {
			t.F = append(t.F, ft.F[(y*ci+off)*co:(y*ci+off+k)*co]...)
		}
		xs, fts = append(xs, x), append(fts, t)
		off += k
	}
	return xs, fts, nil
}

// conv emits n's convolution of xs[0], or, with filters given, the sum of
// the convolutions of each xs[i] by fts[i] (slices of n's filter along its
// input channels). dilation overrides n's dilations (the dilated
// convolution a SpaceToBatchND pair encodes).
func (c *converter) conv(n *Node, xs []value, fts []*Tensor, dilation []int64) ([]value, error) {
	if err := checkNHWC(n); err != nil {
		return nil, err
	}
	depthwise := n.Op == "DepthwiseConv2dNative" || n.Op == "FusedDepthwiseConv2dNative"
	ft, err := c.constIn(n, 1, "filter")
	if err != nil {
		return nil, err
	}
	if fts == nil {
		fts = []*Tensor{ft}
	}
	ws := make([]*onnx.Tensor, len(fts))
	var group int64
	for i, t := range fts {
		if ws[i], group, err = convWeights(n, t, depthwise); err != nil {
			return nil, err
		}
	}
	w := ws[0]
	strides, err := hw(n, "strides", 1)
	if err != nil {
		return nil, err
	}
	dil, err := hw(n, "dilations", 1)
	if err != nil {
		return nil, err
	}
	if dilation != nil {
		if dil[0] != 1 || dil[1] != 1 {
			return nil, errf(n, "a dilated convolution inside SpaceToBatchND")
		}
		dil = dilation
	}
	attrs, err := padAttrs(n)
	if err != nil {
		return nil, err
	}
	attrs = append(attrs,
		onnx.IntsAttr("kernel_shape", w.Dims[2], w.Dims[3]),
		onnx.IntsAttr("strides", strides...),
		onnx.IntsAttr("dilations", dil...),
		onnx.IntAttr("group", group))
	var bias string
	var act []string
	if n.Op == "_FusedConv2D" || n.Op == "FusedDepthwiseConv2dNative" {
		ops := n.Attr["fused_ops"].Strings()
		nargs := int(n.Attr["num_args"].I)
		if len(ops) == 0 || ops[0] != "BiasAdd" || nargs != 1 {
			return nil, errf(n, "fused ops %v with %d arguments are not supported (BiasAdd, then an optional activation)", ops, nargs)
		}
		bt, err := c.constIn(n, 2, "bias")
		if err != nil {
			return nil, err
		}
		if bt.DType != Float32 || int64(len(bt.F)) != w.Dims[0] {
			return nil, errf(n, "bias of %d values for %d output channels", len(bt.F), w.Dims[0])
		}
		bias = c.b.Float([]int64{w.Dims[0]}, bt.F...)
		act = ops[1:]
	}
	var y string
	for i, x := range xs {
		inputs := []string{c.toNCHW(x.name), c.b.Const(ws[i])}
		if i == 0 && bias != "" {
			inputs = append(inputs, bias)
		}
		yi := c.b.Op("Conv", inputs, attrs...)
		if i == 0 {
			y = yi
		} else {
			y = c.b.Op("Add", []string{y, yi})
		}
	}
	for _, a := range act {
		switch a {
		case "Relu":
			y = c.b.Op("Relu", []string{y})
		case "Relu6":
			y = c.b.Op("Clip", []string{y, c.b.Float(nil, 0), c.b.Float(nil, 6)})
		case "Sigmoid":
			y = c.b.Op("Sigmoid", []string{y})
		case "Elu":
			y = c.b.Op("Elu", []string{y})
		case "LeakyRelu":
			y = c.b.Op("LeakyRelu", []string{y}, onnx.FloatAttr("alpha", float32(n.Attr["leakyrelu_alpha"].F)))
		default:
			return nil, errf(n, "fused activation %q is not supported", a)
		}
	}
	return []value{{c.toNHWC(y), onnx.Float}}, nil
}

// dilatedConv converts SpaceToBatchND → convolution → BatchToSpaceND, how
// TensorFlow writes a dilated convolution with VALID padding, into one
// dilated convolution of the SpaceToBatchND's input. The paddings and
// crops (computed from the input's shape) only round the size up to a
// multiple of the rate and cut the extra off again, so they are dropped.
func (c *converter) dilatedConv(n *Node) ([]value, error) {
	in := dataInputs(n)
	if len(in) != 3 {
		return nil, errf(n, "needs 3 inputs")
	}
	convRef := parseRef(in[0])
	cn := c.m.byName[convRef.node]
	if cn == nil || convRef.port != 0 || (cn.Op != "Conv2D" && cn.Op != "_FusedConv2D" && cn.Op != "DepthwiseConv2dNative" && cn.Op != "FusedDepthwiseConv2dNative") {
		return nil, errf(n, "BatchToSpaceND is supported only as the end of a dilated convolution (SpaceToBatchND → convolution → BatchToSpaceND)")
	}
	cin := dataInputs(cn)
	sr := parseRef(cin[0])
	sn := c.m.byName[sr.node]
	if sn == nil || sn.Op != "SpaceToBatchND" || sr.port != 0 {
		return nil, errf(n, "its convolution %q does not read a SpaceToBatchND", cn.Name)
	}
	block, err := c.constIn(n, 1, "block shape")
	if err != nil {
		return nil, err
	}
	sblock, err := c.constIn(sn, 1, "block shape")
	if err != nil {
		return nil, err
	}
	if block.DType != Int32 || len(block.I) != 2 || sblock.DType != Int32 || fmt.Sprint(block.I) != fmt.Sprint(sblock.I) {
		return nil, errf(n, "block shapes %v and %v of the SpaceToBatchND %q differ or are not 2-D", block.I, sblock.I, sn.Name)
	}
	if p := string(cn.Attr["padding"].S); p != "VALID" {
		return nil, errf(cn, "padding %q inside SpaceToBatchND/BatchToSpaceND (VALID is supported)", p)
	}
	if s, _ := hw(cn, "strides", 1); s == nil || s[0] != 1 || s[1] != 1 {
		return nil, errf(cn, "strides inside SpaceToBatchND/BatchToSpaceND")
	}
	x, err := c.in(sn, 0)
	if err != nil {
		return nil, err
	}
	return c.conv(cn, []value{x}, nil, block.I)
}

// convTranspose converts Conv2DBackpropInput (the gradient of a
// convolution, Keras's Conv2DTranspose). The output size follows the
// input (input·stride for SAME), so the constant input_sizes, written
// for one size and batch 1, are not used.
func convTranspose(c *converter, n *Node) ([]value, error) {
	if err := checkNHWC(n); err != nil {
		return nil, err
	}
	ft, err := c.constIn(n, 1, "filter")
	if err != nil {
		return nil, err
	}
	x, err := c.in(n, 2)
	if err != nil {
		return nil, err
	}
	if ft.DType != Float32 || len(ft.Shape) != 4 {
		return nil, errf(n, "filter must be a float 4-D constant")
	}
	// TensorFlow [kh, kw, out, in] → ONNX [in, out, kh, kw].
	kh, kw, co, ci := ft.Shape[0], ft.Shape[1], ft.Shape[2], ft.Shape[3]
	w := make([]float32, len(ft.F))
	for y := range kh {
		for xx := range kw {
			for o := range co {
				for i := range ci {
					w[((i*co+o)*kh+y)*kw+xx] = ft.F[((y*kw+xx)*co+o)*ci+i]
				}
			}
		}
	}
	strides, err := hw(n, "strides", 1)
	if err != nil {
		return nil, err
	}
	dil, err := hw(n, "dilations", 1)
	if err != nil {
		return nil, err
	}
	if dil[0] != 1 || dil[1] != 1 {
		return nil, errf(n, "dilated transposed convolutions are not supported")
	}
	var pads []int64
	switch p := string(n.Attr["padding"].S); p {
	case "VALID":
		pads = []int64{0, 0, 0, 0}
	case "SAME":
		// The forward convolution from in·s to in pads k − s in total,
		// the smaller half first.
		th, tw := max(kh-strides[0], 0), max(kw-strides[1], 0)
		pads = []int64{th / 2, tw / 2, th - th/2, tw - tw/2}
	default:
		return nil, errf(n, "padding %q is not supported", p)
	}
	y := c.b.Op("ConvTranspose", []string{c.toNCHW(x.name), c.b.Float([]int64{ci, co, kh, kw}, w...)},
		onnx.IntsAttr("kernel_shape", kh, kw), onnx.IntsAttr("strides", strides...), onnx.IntsAttr("pads", pads...))
	return []value{{c.toNHWC(y), onnx.Float}}, nil
}

// avgPool converts AvgPool; SAME padding averages over the pixels inside
// the image only, as TensorFlow does (count_include_pad 0).
func avgPool(c *converter, n *Node) ([]value, error) {
	if err := checkNHWC(n); err != nil {
		return nil, err
	}
	x, err := c.in(n, 0)
	if err != nil {
		return nil, err
	}
	k, err := hw(n, "ksize", 1)
	if err != nil {
		return nil, err
	}
	s, err := hw(n, "strides", 1)
	if err != nil {
		return nil, err
	}
	attrs, err := padAttrs(n)
	if err != nil {
		return nil, err
	}
	attrs = append(attrs, onnx.IntsAttr("kernel_shape", k...), onnx.IntsAttr("strides", s...), onnx.IntAttr("count_include_pad", 0))
	y := c.b.Op("AveragePool", []string{c.toNCHW(x.name)}, attrs...)
	return []value{{c.toNHWC(y), onnx.Float}}, nil
}

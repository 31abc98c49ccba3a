package codec

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/asticode/go-astiav"
)

// graphInput describes one video source of a filter graph: its label in the
// graph description and the frames it will be given.
type graphInput struct {
	label  string
	width  int
	height int
	format astiav.PixelFormat
	tb     Rational
}

// videoGraph is a configured FFmpeg filter graph with buffer sources and one
// buffer sink labelled "out". It owns its C objects until free.
type videoGraph struct {
	g    *astiav.FilterGraph
	srcs []*astiav.FilterContext
	sink *astiav.FilterContext
}

// newVideoGraph builds the graph described by desc (FFmpeg filtergraph
// syntax) between the labelled inputs and the output label "out". threads
// is the number of slice threads filters may use (0 = one per core).
func newVideoGraph(desc string, inputs []graphInput, threads int) (*videoGraph, error) {
	return newGraph(desc, threads, "buffersink", func(g *astiav.FilterGraph) ([]*astiav.FilterContext, error) {
		buffer := astiav.FindFilterByName("buffer")
		var srcs []*astiav.FilterContext
		for _, in := range inputs {
			tb := in.tb
			if !tb.Valid() {
				tb = Rational{1, 90000}
			}
			args := astiav.FilterArgs{
				"video_size":   strconv.Itoa(in.width) + "x" + strconv.Itoa(in.height),
				"pix_fmt":      strconv.Itoa(int(in.format)),
				"time_base":    tb.String(),
				"pixel_aspect": "1/1",
			}
			src, err := g.NewFilterContext(buffer, in.label, args)
			if err != nil {
				return srcs, fmt.Errorf("creating the %s source: %w", in.label, err)
			}
			srcs = append(srcs, src)
		}
		return srcs, nil
	}, labels(inputs))
}

func labels(inputs []graphInput) []string {
	out := make([]string, len(inputs))
	for i, in := range inputs {
		out[i] = in.label
	}
	return out
}

// newGraph builds a filter graph whose sources are made by makeSrcs (named
// by labels) and whose sink is the named sink filter.
func newGraph(desc string, threads int, sinkName string, makeSrcs func(*astiav.FilterGraph) ([]*astiav.FilterContext, error), names []string) (*videoGraph, error) {
	g := astiav.AllocFilterGraph()
	if g == nil {
		return nil, errors.New("allocating a filter graph")
	}
	g.SetThreadCount(threads)
	vg := &videoGraph{g: g}
	fail := func(err error) (*videoGraph, error) {
		vg.free()
		return nil, err
	}
	srcs, err := makeSrcs(g)
	vg.srcs = srcs
	if err != nil {
		return fail(err)
	}
	sink, err := g.NewFilterContext(astiav.FindFilterByName(sinkName), "out", nil)
	if err != nil {
		return fail(fmt.Errorf("creating the sink: %w", err))
	}
	vg.sink = sink

	// The graph's open inputs are fed by the sources (FFmpeg calls that
	// list "outputs"); its open output feeds the sink ("inputs").
	var outputs *astiav.FilterInOut
	for i := len(srcs) - 1; i >= 0; i-- {
		o := astiav.AllocFilterInOut()
		o.SetName(names[i])
		o.SetFilterContext(srcs[i])
		o.SetPadIdx(0)
		o.SetNext(outputs)
		outputs = o
	}
	inputs := astiav.AllocFilterInOut()
	inputs.SetName("out")
	inputs.SetFilterContext(sink)
	inputs.SetPadIdx(0)
	inputs.SetNext(nil)
	err = g.Parse(desc, inputs, outputs)
	inputs.Free()
	if outputs != nil {
		outputs.Free()
	}
	if err != nil {
		return fail(fmt.Errorf("parsing filter graph %q: %w", desc, err))
	}
	if err := g.Configure(); err != nil {
		return fail(fmt.Errorf("configuring filter graph %q: %w", desc, err))
	}
	return vg, nil
}

// push gives frame f to source i; the graph takes f's references and leaves
// f blank. A nil f ends that source.
func (vg *videoGraph) push(i int, f *astiav.Frame) error {
	return vg.srcs[i].BuffersrcAddFrame(f, astiav.NewBuffersrcFlags())
}

// pushRef gives source i a new reference to f; f is left untouched.
func (vg *videoGraph) pushRef(i int, f *astiav.Frame) error {
	return vg.srcs[i].BuffersrcAddFrame(f, astiav.NewBuffersrcFlags(astiav.BuffersrcFlagKeepRef))
}

// pull takes the next output frame into f: astiav.ErrEagain when the graph
// needs more input, astiav.ErrEof when it is finished.
func (vg *videoGraph) pull(f *astiav.Frame) error {
	return vg.sink.BuffersinkGetFrame(f, astiav.NewBuffersinkFlags())
}

// free releases the graph and its filters. Safe on nil and twice.
func (vg *videoGraph) free() {
	if vg == nil || vg.g == nil {
		return
	}
	// Free the filters made here first: the binding keeps a registry entry
	// for each, which only their own Free removes.
	for _, src := range vg.srcs {
		src.Free()
	}
	if vg.sink != nil {
		vg.sink.Free()
	}
	vg.g.Free()
	vg.g = nil
	vg.srcs = nil
	vg.sink = nil
}

package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"vidmatte"
)

// object is a JSON object being validated field by field: every field is
// taken by name and type-checked, and whatever is left over is an unknown
// field. Errors name the field by its dotted path.
type object struct {
	path   string
	fields map[string]json.RawMessage
	taken  map[string]bool
}

// parseObject parses data as one JSON object.
func parseObject(data []byte, path string) (*object, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		if path == "" {
			if len(data) == 0 {
				return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "the request body must be a JSON object")
			}
			if !json.Valid(data) {
				return nil, malformed(data)
			}
			return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "the request body must be a JSON object")
		}
		return nil, vidmatte.FieldErrorf(path, "must be an object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, malformed(data)
	}
	if err := checkDuplicates(data, path); err != nil {
		return nil, err
	}
	return &object{path: path, fields: fields, taken: map[string]bool{}}, nil
}

func malformed(data []byte) error {
	var se *json.SyntaxError
	err := json.Unmarshal(data, new(any))
	if errors.As(err, &se) {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	if err != nil {
		return vidmatte.Errorf(vidmatte.CodeInvalid, "malformed JSON: %s", err.Error())
	}
	return vidmatte.Errorf(vidmatte.CodeInvalid, "malformed JSON")
}

// checkDuplicates refuses an object that names a field twice, which would
// otherwise be silently resolved to the last value.
func checkDuplicates(data []byte, path string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if _, err := dec.Token(); err != nil {
		return malformed(data)
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return malformed(data)
		}
		name, _ := t.(string)
		if seen[name] {
			return vidmatte.FieldErrorf(join(path, name), "given more than once")
		}
		seen[name] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return malformed(data)
		}
	}
	return nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// take returns a field's raw value; null counts as absent.
func (o *object) take(name string) (json.RawMessage, bool) {
	o.taken[name] = true
	raw, ok := o.fields[name]
	if !ok || string(raw) == "null" {
		return nil, false
	}
	return raw, true
}

// has reports whether a field is present and not null, without taking it.
func (o *object) has(name string) bool {
	raw, ok := o.fields[name]
	return ok && string(raw) != "null"
}

// done refuses any field not taken.
func (o *object) done() error {
	var unknown []string
	for name := range o.fields {
		if !o.taken[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return vidmatte.FieldErrorf(join(o.path, vidmatte.SafeText(unknown[0])), "unknown field")
}

func (o *object) str(name string, maxLen int) (string, bool, error) {
	raw, ok := o.take(name)
	if !ok {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, vidmatte.FieldErrorf(join(o.path, name), "must be a string")
	}
	if len(s) > maxLen {
		return "", false, vidmatte.FieldErrorf(join(o.path, name), "longer than %d characters", maxLen)
	}
	return s, true, nil
}

func (o *object) boolean(name string) (bool, bool, error) {
	raw, ok := o.take(name)
	if !ok {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		return false, false, vidmatte.FieldErrorf(join(o.path, name), "must be true or false")
	}
	return b, true, nil
}

func (o *object) number(name string) (float64, bool, error) {
	raw, ok := o.take(name)
	if !ok {
		return 0, false, nil
	}
	var f float64
	if err := json.Unmarshal(raw, &f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false, vidmatte.FieldErrorf(join(o.path, name), "must be a number")
	}
	return f, true, nil
}

func (o *object) integer(name string, lo, hi int) (int, bool, error) {
	f, ok, err := o.number(name)
	if !ok || err != nil {
		return 0, ok, err
	}
	if f != math.Trunc(f) {
		return 0, false, vidmatte.FieldErrorf(join(o.path, name), "must be an integer")
	}
	if f < float64(lo) || f > float64(hi) {
		return 0, false, vidmatte.FieldErrorf(join(o.path, name), "must be between %d and %d", lo, hi)
	}
	return int(f), true, nil
}

func (o *object) object(name string) (*object, bool, error) {
	raw, ok := o.take(name)
	if !ok {
		return nil, false, nil
	}
	sub, err := parseObject(raw, join(o.path, name))
	if err != nil {
		return nil, false, err
	}
	return sub, true, nil
}

// jobRequest is a validated job create or start body. Nil pointers are
// fields the client left out.
type jobRequest struct {
	VideoURL    string
	Model       *string
	Format      *vidmatte.OutputFormat
	Background  *vidmatte.Background
	Composition *vidmatte.Composition
	WebhookURL  string
	AutoStart   bool
	Metadata    map[string]string
}

// maxURL bounds every URL field.
const maxURL = 2048

// parseJobRequest validates a create body (create true) or a start body
// (only model, output_format, background or its flat aliases, composition).
func parseJobRequest(body []byte, create bool) (*jobRequest, error) {
	req := &jobRequest{AutoStart: true}
	if !create && len(bytes.TrimSpace(body)) == 0 {
		return req, nil
	}
	o, err := parseObject(body, "")
	if err != nil {
		return nil, err
	}
	if create {
		u, ok, err := o.str("video_url", maxURL)
		if err != nil {
			return nil, err
		}
		if !ok || strings.TrimSpace(u) == "" {
			return nil, vidmatte.FieldErrorf("video_url", "required")
		}
		if err := checkHTTPURL(u, "video_url"); err != nil {
			return nil, err
		}
		req.VideoURL = u
		if w, ok, err := o.str("webhook_url", maxURL); err != nil {
			return nil, err
		} else if ok {
			if err := checkHTTPURL(w, "webhook_url"); err != nil {
				return nil, err
			}
			req.WebhookURL = w
		}
		if b, ok, err := o.boolean("auto_start"); err != nil {
			return nil, err
		} else if ok {
			req.AutoStart = b
		}
		if m, ok, err := o.object("metadata"); err != nil {
			return nil, err
		} else if ok {
			if req.Metadata, err = parseMetadata(m); err != nil {
				return nil, err
			}
		}
	}
	if m, ok, err := o.str("model", 128); err != nil {
		return nil, err
	} else if ok {
		m = strings.TrimSpace(m)
		if m == "" {
			return nil, vidmatte.FieldErrorf("model", "must not be empty")
		}
		req.Model = &m
	}
	if f, ok, err := o.str("output_format", 32); err != nil {
		return nil, err
	} else if ok {
		of := vidmatte.OutputFormat(f)
		if !of.Valid() {
			return nil, vidmatte.FieldErrorf("output_format", "unknown format %q; valid: %s", vidmatte.SafeText(f), formatList())
		}
		req.Format = &of
	}
	if req.Background, err = parseBackgroundFields(o); err != nil {
		return nil, err
	}
	if c, ok, err := o.object("composition"); err != nil {
		return nil, err
	} else if ok {
		if req.Composition, err = parseComposition(c); err != nil {
			return nil, err
		}
	}
	if err := o.done(); err != nil {
		return nil, err
	}
	return req, nil
}

func formatList() string {
	names := make([]string, len(vidmatte.OutputFormats))
	for i, f := range vidmatte.OutputFormats {
		names[i] = string(f)
	}
	return strings.Join(names, ", ")
}

// checkHTTPURL accepts an absolute http(s) URL with a host.
func checkHTTPURL(s, field string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return vidmatte.FieldErrorf(field, "must be an absolute http or https URL without credentials")
	}
	return nil
}

func parseMetadata(o *object) (map[string]string, error) {
	if len(o.fields) > vidmatte.MaxMetadataPairs {
		return nil, vidmatte.FieldErrorf("metadata", "at most %d pairs", vidmatte.MaxMetadataPairs)
	}
	m := make(map[string]string, len(o.fields))
	names := make([]string, 0, len(o.fields))
	for name := range o.fields {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if name == "" || len(name) > vidmatte.MaxMetadataKeyLen {
			return nil, vidmatte.FieldErrorf("metadata", "keys must be 1 to %d characters", vidmatte.MaxMetadataKeyLen)
		}
		v, _, err := o.str(name, vidmatte.MaxMetadataValueLen)
		if err != nil {
			return nil, err
		}
		if !o.has(name) {
			return nil, vidmatte.FieldErrorf(join("metadata", vidmatte.SafeText(name)), "must be a string")
		}
		m[name] = v
	}
	return m, nil
}

// parseBackgroundFields reads background, or its flat aliases bg_type and
// bg_color; giving both forms is refused.
func parseBackgroundFields(o *object) (*vidmatte.Background, error) {
	flat := o.has("bg_type") || o.has("bg_color")
	bo, ok, err := o.object("background")
	if err != nil {
		return nil, err
	}
	if ok {
		if flat {
			return nil, vidmatte.FieldErrorf("bg_type", "give either background or bg_type/bg_color, not both")
		}
		return parseBackground(bo)
	}
	t, hasType, err := o.str("bg_type", 32)
	if err != nil {
		return nil, err
	}
	raw, hasColor := o.take("bg_color")
	if !hasType && !hasColor {
		return nil, nil
	}
	if !hasType {
		t = "custom"
	}
	switch t {
	case "transparent":
		if hasColor {
			return nil, vidmatte.FieldErrorf("bg_color", "not allowed with bg_type transparent")
		}
		return &vidmatte.Background{Type: vidmatte.BackgroundTransparent}, nil
	case "green", "white", "black", "blue":
		if hasColor {
			return nil, vidmatte.FieldErrorf("bg_color", "only allowed with bg_type custom")
		}
		c := vidmatte.NamedColors[t]
		return &vidmatte.Background{Type: vidmatte.BackgroundColor, Color: &c}, nil
	case "custom":
		if !hasColor {
			return nil, vidmatte.FieldErrorf("bg_color", "required with bg_type custom")
		}
		c, err := parseColor(raw, "bg_color")
		if err != nil {
			return nil, err
		}
		return &vidmatte.Background{Type: vidmatte.BackgroundColor, Color: c}, nil
	}
	return nil, vidmatte.FieldErrorf("bg_type", "unknown type %q; valid: transparent, green, white, black, blue, custom", vidmatte.SafeText(t))
}

func parseBackground(o *object) (*vidmatte.Background, error) {
	t, ok, err := o.str("type", 32)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, vidmatte.FieldErrorf("background.type", "required")
	}
	b := &vidmatte.Background{Type: vidmatte.BackgroundType(t)}
	switch b.Type {
	case vidmatte.BackgroundTransparent, vidmatte.BackgroundBlur:
	case vidmatte.BackgroundColor:
		raw, ok := o.take("color")
		if !ok {
			return nil, vidmatte.FieldErrorf("background.color", "required with type color")
		}
		if b.Color, err = parseColor(raw, "background.color"); err != nil {
			return nil, err
		}
	case vidmatte.BackgroundImage:
		u, ok, err := o.str("image_url", maxURL)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, vidmatte.FieldErrorf("background.image_url", "required with type image")
		}
		if err := checkHTTPURL(u, "background.image_url"); err != nil {
			return nil, err
		}
		b.ImageURL = u
	default:
		return nil, vidmatte.FieldErrorf("background.type", "unknown type %q; valid: transparent, color, image, blur", vidmatte.SafeText(t))
	}
	if err := o.done(); err != nil {
		return nil, err
	}
	return b, nil
}

// parseColor reads [r,g,b] in 0..1 or "#rrggbb".
func parseColor(raw json.RawMessage, field string) (*[3]float64, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		c, err := vidmatte.ParseHexColor(s)
		if err != nil {
			return nil, vidmatte.FieldErrorf(field, "must be \"#rrggbb\" or [r, g, b] with each in 0..1")
		}
		return &c, nil
	}
	var arr []json.RawMessage
	if json.Unmarshal(raw, &arr) != nil || len(arr) != 3 {
		return nil, vidmatte.FieldErrorf(field, "must be \"#rrggbb\" or [r, g, b] with each in 0..1")
	}
	var c [3]float64
	for i, e := range arr {
		var f float64
		if json.Unmarshal(e, &f) != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return nil, vidmatte.FieldErrorf(fmt.Sprintf("%s[%d]", field, i), "must be a number in 0..1")
		}
		c[i] = f
	}
	return &c, nil
}

func parseComposition(o *object) (*vidmatte.Composition, error) {
	c := &vidmatte.Composition{}
	if co, ok, err := o.object("canvas"); err != nil {
		return nil, err
	} else if ok {
		w, okw, err := co.integer("width", math.MinInt32, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		h, okh, err := co.integer("height", math.MinInt32, math.MaxInt32)
		if err != nil {
			return nil, err
		}
		if !okw {
			return nil, vidmatte.FieldErrorf("composition.canvas.width", "required")
		}
		if !okh {
			return nil, vidmatte.FieldErrorf("composition.canvas.height", "required")
		}
		if err := co.done(); err != nil {
			return nil, err
		}
		c.Canvas = &vidmatte.Canvas{Width: w, Height: h}
	}
	if fo, ok, err := o.object("foreground"); err != nil {
		return nil, err
	} else if ok {
		p := &vidmatte.ForegroundPlacement{}
		if a, ok, err := fo.str("anchor", 32); err != nil {
			return nil, err
		} else if ok {
			p.Anchor = vidmatte.Anchor(a)
		}
		if sc, ok, err := fo.number("scale"); err != nil {
			return nil, err
		} else if ok {
			p.Scale = sc
		}
		if oo, ok, err := fo.object("offset"); err != nil {
			return nil, err
		} else if ok {
			x, _, err := oo.integer("x", math.MinInt32, math.MaxInt32)
			if err != nil {
				return nil, err
			}
			y, _, err := oo.integer("y", math.MinInt32, math.MaxInt32)
			if err != nil {
				return nil, err
			}
			if err := oo.done(); err != nil {
				return nil, err
			}
			p.Offset = &vidmatte.Offset{X: x, Y: y}
		}
		if err := fo.done(); err != nil {
			return nil, err
		}
		c.Foreground = p
	}
	if err := o.done(); err != nil {
		return nil, err
	}
	if c.Canvas == nil && c.Foreground == nil {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// query is a URL query being validated: each parameter given at most once,
// none unknown.
type query struct {
	v     url.Values
	taken map[string]bool
}

// parseQuery parses a raw query string strictly.
func parseQuery(raw string) (*query, error) {
	v, err := url.ParseQuery(raw)
	if err != nil {
		return nil, vidmatte.Errorf(vidmatte.CodeInvalid, "malformed query string")
	}
	for name, vals := range v {
		if len(vals) > 1 {
			return nil, vidmatte.FieldErrorf(vidmatte.SafeText(name), "given more than once")
		}
	}
	return &query{v: v, taken: map[string]bool{}}, nil
}

func (q *query) integer(name string, def, lo, hi int) (int, error) {
	q.taken[name] = true
	s, ok := q.v[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(s[0])
	if err != nil {
		return 0, vidmatte.FieldErrorf(name, "must be an integer")
	}
	if n < lo || n > hi {
		return 0, vidmatte.FieldErrorf(name, "must be between %d and %d", lo, hi)
	}
	return n, nil
}

func (q *query) str(name string) (string, bool) {
	q.taken[name] = true
	s, ok := q.v[name]
	if !ok {
		return "", false
	}
	return s[0], true
}

func (q *query) done() error {
	var unknown []string
	for name := range q.v {
		if !q.taken[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return vidmatte.FieldErrorf(vidmatte.SafeText(unknown[0]), "unknown query parameter")
}

// jobListQuery is a validated GET /v1/jobs query.
type jobListQuery struct {
	Limit, Offset int
	Status        vidmatte.Status
}

func parseJobListQuery(raw string) (*jobListQuery, error) {
	q, err := parseQuery(raw)
	if err != nil {
		return nil, err
	}
	out := &jobListQuery{}
	if out.Limit, err = q.integer("limit", 20, 1, 100); err != nil {
		return nil, err
	}
	if out.Offset, err = q.integer("offset", 0, 0, math.MaxInt32); err != nil {
		return nil, err
	}
	if s, ok := q.str("status"); ok {
		out.Status = vidmatte.Status(s)
		if !out.Status.Valid() {
			return nil, vidmatte.FieldErrorf("status", "unknown status %q; valid: pending, queued, processing, completed, failed, canceled", vidmatte.SafeText(s))
		}
	}
	return out, q.done()
}

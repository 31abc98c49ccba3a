package api

import (
	"net/http"
	"slices"
	"sort"
	"strings"

	"vidmatte"
)

// route is one method and path pattern of the contract. A pattern segment
// written {name} matches any one non-empty segment.
type route struct {
	method  string
	pattern string
	parts   []string
	auth    bool // needs X-Api-Key
	handler func(w http.ResponseWriter, r *http.Request, p params)
}

// params are the values of a matched route's {name} segments.
type params map[string]string

// router matches a request to a route. Unknown paths are a structured 404
// and known paths with another method a structured 405 with Allow, never
// Go's plain-text defaults.
type router struct {
	routes []*route
}

func (rt *router) add(method, pattern string, auth bool, h func(http.ResponseWriter, *http.Request, params)) {
	rt.routes = append(rt.routes, &route{
		method:  method,
		pattern: pattern,
		parts:   strings.Split(strings.Trim(pattern, "/"), "/"),
		auth:    auth,
		handler: h,
	})
}

// match returns the route for the request, its parameters, and the methods
// allowed on the path when only the method is wrong.
func (rt *router) match(method, path string) (*route, params, []string) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if path == "/" {
		segs = []string{""}
	}
	var allowed []string
	for _, r := range rt.routes {
		p, ok := matchParts(r.parts, segs)
		if !ok {
			continue
		}
		if r.method == method || (method == http.MethodHead && r.method == http.MethodGet) {
			return r, p, nil
		}
		if !slices.Contains(allowed, r.method) {
			allowed = append(allowed, r.method)
		}
	}
	sort.Strings(allowed)
	return nil, nil, allowed
}

func matchParts(parts, segs []string) (params, bool) {
	if len(parts) != len(segs) {
		return nil, false
	}
	var p params
	for i, part := range parts {
		if strings.HasPrefix(part, "{") && strings.HasSuffix(part, "}") {
			if segs[i] == "" {
				return nil, false
			}
			if p == nil {
				p = params{}
			}
			p[part[1:len(part)-1]] = segs[i]
			continue
		}
		if part != segs[i] {
			return nil, false
		}
	}
	return p, true
}

// errNoRoute and errBadMethod are the answers of unknown routes.
func errNoRoute(path string) error {
	return vidmatte.Errorf(vidmatte.CodeNotFound, "no such route: %s", vidmatte.SafeText(path))
}

func errBadMethod(method string, allowed []string) error {
	return vidmatte.Errorf(vidmatte.CodeMethodNotAllowed, "method %s not allowed here; allowed: %s", vidmatte.SafeText(method), strings.Join(allowed, ", "))
}

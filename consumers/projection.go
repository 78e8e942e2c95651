package consumers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"time"
)

// ErrNotFound is what a query handler returns (wrapped) when the read model
// has nothing for the query; the HTTP helper answers 404.
var ErrNotFound = errors.New("consumers: not found")

// ErrUnknownQuery is returned by Ask for a query type with no handler.
var ErrUnknownQuery = errors.New("consumers: no handler for query")

// Projection answers typed queries over the read model a projector builds
// (Evento's Projection). Register handlers with Query, ask with Ask or over
// HTTP with Handler.
type Projection struct {
	name    string
	runner  *Runner // the projector keeping the read model; nil: no waits
	queries map[reflect.Type]query
	byName  map[string]reflect.Type
}

type query struct {
	fn func(ctx context.Context, q any) (any, error)
}

// NewProjection returns a projection named name over the read model kept by
// runner, which consistent reads wait for. runner may be nil when the
// projection needs no read-your-writes.
func NewProjection(name string, runner *Runner) *Projection {
	return &Projection{name: name, runner: runner, queries: map[reflect.Type]query{}, byName: map[string]reflect.Type{}}
}

// Query registers fn to answer queries of type Q. Over HTTP the query is
// named by Q's Go type name: POST /<Name> with Q as JSON.
func Query[Q, V any](p *Projection, fn func(ctx context.Context, q Q) (V, error)) {
	t := reflect.TypeFor[Q]()
	p.queries[t] = query{fn: func(ctx context.Context, q any) (any, error) { return fn(ctx, q.(Q)) }}
	p.byName[t.Name()] = t
}

// AskOption configures one Ask.
type AskOption func(*askConfig)

type askConfig struct {
	consistent bool
	keys       []string
}

// Consistent makes Ask wait until the projector has handled every event
// committed before the call (Runner.CatchUp): read-your-writes after
// aggregates.Invoker.Send. With keys (the aggregate ids concerned), only
// their partitions are waited for.
func Consistent(keys ...string) AskOption {
	return func(c *askConfig) { c.consistent, c.keys = true, keys }
}

// Ask runs the query handler registered for Q. ctx bounds a Consistent wait.
func Ask[V, Q any](ctx context.Context, p *Projection, q Q, opts ...AskOption) (V, error) {
	var zero V
	v, err := p.ask(ctx, q, opts...)
	if err != nil {
		return zero, err
	}
	out, ok := v.(V)
	if !ok {
		return zero, fmt.Errorf("consumers: projection %s: query %T answers %T, not %T", p.name, q, v, zero)
	}
	return out, nil
}

func (p *Projection) ask(ctx context.Context, q any, opts ...AskOption) (any, error) {
	var cfg askConfig
	for _, o := range opts {
		o(&cfg)
	}
	h, ok := p.queries[reflect.TypeOf(q)]
	if !ok {
		return nil, fmt.Errorf("%w %T in projection %s", ErrUnknownQuery, q, p.name)
	}
	if cfg.consistent {
		if p.runner == nil {
			return nil, fmt.Errorf("consumers: projection %s has no projector runner to wait for; pass it to NewProjection", p.name)
		}
		if err := p.runner.CatchUp(ctx, cfg.keys...); err != nil {
			return nil, err
		}
	}
	return h.fn(ctx, q)
}

// Handler serves the projection's queries over HTTP:
//
//	GET  /            the query names
//	POST /<Query>     the query as JSON -> 200 and the answer as JSON
//
// Add ?consistent=true (and optionally &key=<aggregate id>, repeatable) to
// wait for the projector first, bounded by ?timeout= (a Go duration,
// default 5s; 504 when it passes). Errors are JSON {"error": "..."}: 400
// for a malformed query, 404 for an unknown query or ErrNotFound, 500
// otherwise.
func (p *Projection) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		names := slices.Sorted(maps.Keys(p.byName))
		writeJSON(w, http.StatusOK, map[string]any{"projection": p.name, "queries": names})
	})
	mux.HandleFunc("POST /{query}", p.serveQuery)
	return mux
}

func (p *Projection) serveQuery(w http.ResponseWriter, req *http.Request) {
	t, ok := p.byName[req.PathValue("query")]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no query %q in projection %s; GET / lists them", req.PathValue("query"), p.name))
		return
	}
	qv := reflect.New(t)
	dec := json.NewDecoder(http.MaxBytesReader(w, req.Body, 1<<20))
	dec.DisallowUnknownFields()
	// An empty body is a query without fields.
	if err := dec.Decode(qv.Interface()); err != nil && !errors.Is(err, io.EOF) {
		writeError(w, http.StatusBadRequest, fmt.Errorf("query %s: %w", t.Name(), err))
		return
	}
	var opts []AskOption
	ctx := req.Context()
	if c := req.URL.Query().Get("consistent"); c == "true" || c == "1" {
		opts = append(opts, Consistent(req.URL.Query()["key"]...))
		timeout := 5 * time.Second
		if s := req.URL.Query().Get("timeout"); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				writeError(w, http.StatusBadRequest, fmt.Errorf("timeout %q: want a positive Go duration such as 2s", s))
				return
			}
			timeout = d
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	v, err := p.ask(ctx, qv.Elem().Interface(), opts...)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, v)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, err)
	default:
		writeError(w, http.StatusInternalServerError, err)
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": strings.TrimSpace(err.Error())})
}

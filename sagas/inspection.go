package sagas

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/recq/recq/sagas/store"
)

// InspectHandler serves a saga group's instances as JSON, for `recq sagas
// --http` (how a saga on memory stores is looked into):
//
//	GET /sagas/{group}                 the running instances (?ended=true: the ended ones;
//	                                   ?association=key=value: the one it leads to)
//	GET /sagas/{group}/{id}            one instance
//
// Errors are {"error": "..."} with 400 or 404 (500 when the store fails).
func InspectHandler(group string, r store.Reader) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, code int, msg string) {
		writeJSON(w, code, map[string]string{"error": msg})
	}
	mine := func(w http.ResponseWriter, req *http.Request) bool {
		if g := req.PathValue("group"); g != group {
			fail(w, http.StatusNotFound, fmt.Sprintf("no saga group %q here (this serves %s)", g, group))
			return false
		}
		return true
	}
	mux.HandleFunc("GET /sagas/{group}", func(w http.ResponseWriter, req *http.Request) {
		if !mine(w, req) {
			return
		}
		q := req.URL.Query()
		f := store.Filter{Association: q.Get("association"), Ended: q.Get("ended") == "true"}
		if f.Association != "" && !strings.Contains(f.Association, "=") {
			fail(w, http.StatusBadRequest, fmt.Sprintf("association %q: want key=value", f.Association))
			return
		}
		ins, err := r.List(req.Context(), group, f)
		if err != nil {
			fail(w, http.StatusInternalServerError, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, append([]*store.Instance{}, ins...))
	})
	mux.HandleFunc("GET /sagas/{group}/{id}", func(w http.ResponseWriter, req *http.Request) {
		if !mine(w, req) {
			return
		}
		in, err := r.Load(req.Context(), group, req.PathValue("id"))
		switch {
		case err != nil:
			fail(w, http.StatusInternalServerError, err.Error())
		case in == nil:
			fail(w, http.StatusNotFound, fmt.Sprintf("no instance %q in saga %s", req.PathValue("id"), group))
		default:
			writeJSON(w, http.StatusOK, in)
		}
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// NewInspectClient reads the instances an InspectHandler serves at base
// (the URL the handler is mounted at, without /sagas). hc nil: a client
// with a 10 s timeout.
func NewInspectClient(base string, hc *http.Client) store.Reader {
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	return inspectClient{base: strings.TrimSuffix(base, "/"), hc: hc}
}

type inspectClient struct {
	base string
	hc   *http.Client
}

func (c inspectClient) get(ctx context.Context, path string, q url.Values, v any) (found bool, err error) {
	u := c.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("sagas: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return false, fmt.Errorf("sagas: cannot reach the saga service at %s: %w (is it running, and is the URL right?)", c.base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return false, fmt.Errorf("sagas: read %s: %w", u, err)
	}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			return false, fmt.Errorf("sagas: %s answered what is not saga instances: %w", u, err)
		}
		return true, nil
	}
	var e struct{ Error string }
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = strings.TrimSpace(string(body))
	}
	if resp.StatusCode == http.StatusNotFound && strings.HasPrefix(e.Error, "no instance") {
		return false, nil
	}
	return false, fmt.Errorf("sagas: %s: %s: %w", u, resp.Status, errors.New(e.Error))
}

func (c inspectClient) Load(ctx context.Context, group, id string) (*store.Instance, error) {
	var in store.Instance
	found, err := c.get(ctx, "/sagas/"+url.PathEscape(group)+"/"+url.PathEscape(id), nil, &in)
	if !found {
		return nil, err
	}
	return &in, nil
}

func (c inspectClient) List(ctx context.Context, group string, f store.Filter) ([]*store.Instance, error) {
	q := url.Values{}
	if f.Association != "" {
		q.Set("association", f.Association)
	}
	if f.Ended {
		q.Set("ended", "true")
	}
	var out []*store.Instance
	_, err := c.get(ctx, "/sagas/"+url.PathEscape(group), q, &out)
	return out, err
}

package todo

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/consumers"
	"github.com/recq/recq/health"
	"github.com/recq/recq/streams"
)

// maxBody bounds a request's JSON.
const maxBody = 64 << 10

// Handler serves the HTTP API, the page at / and GET /healthz (200 when
// every component is ready, else 503 with their reports).
//
// Commands go through the invoker and answer once the runner committed
// them; reads ask the projection consistently (it waits for the projector
// to have handled what was committed before), so a GET after a 2xx sees
// the change. An Idempotency-Key header makes a request's command id (and,
// for a creation, the new id): a client retrying after a timeout with the
// same key changes nothing twice.
func (s *System) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /lists", s.createList)
	mux.HandleFunc("GET /lists", s.findLists)
	mux.HandleFunc("GET /lists/{id}", s.getList)
	mux.HandleFunc("PATCH /lists/{id}", s.renameList)
	mux.HandleFunc("DELETE /lists/{id}", func(w http.ResponseWriter, r *http.Request) { s.command(w, r, DeleteList{}) })
	mux.HandleFunc("POST /lists/{id}/items", s.addItem)
	mux.HandleFunc("POST /lists/{id}/items/{item}/check", func(w http.ResponseWriter, r *http.Request) {
		s.command(w, r, CheckItem{ItemID: r.PathValue("item")})
	})
	mux.HandleFunc("POST /lists/{id}/items/{item}/uncheck", func(w http.ResponseWriter, r *http.Request) {
		s.command(w, r, UncheckItem{ItemID: r.PathValue("item")})
	})
	mux.HandleFunc("DELETE /lists/{id}/items/{item}", func(w http.ResponseWriter, r *http.Request) {
		s.command(w, r, RemoveItem{ItemID: r.PathValue("item")})
	})
	mux.HandleFunc("GET /lists/{id}/events", s.serveEvents)
	ready := health.Handler(s.Components()...)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/readyz"
		ready.ServeHTTP(w, r)
	})
	mux.Handle("GET /health/", http.StripPrefix("/health", ready))
	mux.HandleFunc("GET /{$}", servePage)
	return mux
}

func (s *System) createList(w http.ResponseWriter, r *http.Request) {
	var in struct{ Title, Owner string }
	if !readJSON(w, r, &in) {
		return
	}
	// The list's number comes from the id sequence, under a command id of
	// the request's key: a retry gets the same number, so the same list.
	n, ok := s.sendAs(w, r, "ids", IDsName, "lists", IssueID{})
	if !ok {
		return
	}
	id := listID(n)
	if s.send(w, r, id, CreateList{Title: in.Title, Owner: in.Owner}) {
		writeJSON(w, http.StatusCreated, map[string]string{"id": id})
	}
}

func (s *System) renameList(w http.ResponseWriter, r *http.Request) {
	var in struct{ Title string }
	if readJSON(w, r, &in) {
		s.command(w, r, RenameList{Title: in.Title})
	}
}

func (s *System) addItem(w http.ResponseWriter, r *http.Request) {
	var in struct{ Text string }
	if !readJSON(w, r, &in) {
		return
	}
	item := newID("I", r)
	if s.send(w, r, r.PathValue("id"), AddItem{ItemID: item, Text: in.Text}) {
		writeJSON(w, http.StatusCreated, map[string]string{"id": item})
	}
}

// command sends cmd to the list in the path and answers 204.
func (s *System) command(w http.ResponseWriter, r *http.Request, cmd any) {
	if s.send(w, r, r.PathValue("id"), cmd) {
		w.WriteHeader(http.StatusNoContent)
	}
}

// send sends cmd to list, bounded by the command timeout, and answers the
// failure itself; it reports whether the command was accepted (or had been
// with this idempotency key).
func (s *System) send(w http.ResponseWriter, r *http.Request, list string, cmd any) bool {
	_, ok := s.sendAs(w, r, "", Name, list, cmd)
	return ok
}

// sendAs sends cmd to the aggregate id of type agg under the command id
// the request's Idempotency-Key and step make (a random one without a
// key), and returns the version the command brought it to.
func (s *System) sendAs(w http.ResponseWriter, r *http.Request, step, agg, id string, cmd any) (int64, bool) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
	defer cancel()
	var opts []aggregates.SendOption
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		opts = append(opts, aggregates.WithCommandID(digest(step, r.Method, r.URL.Path, key)))
	}
	res, err := s.invoker.Send(ctx, agg, id, cmd, opts...)
	if err == nil {
		return res.Version, true
	}
	code, status := rejectionCode(err)
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
		err = fmt.Errorf("the command was not confirmed in %s: %w (retry with the same Idempotency-Key: it is applied once)", s.cfg.CommandTimeout, err)
	}
	writeError(w, status, code, err)
	return 0, false
}

// rejectionCode maps a Send error to the API's code and status.
func rejectionCode(err error) (string, int) {
	var rej *aggregates.RejectedError
	switch code := aggregates.Code(err); code {
	case "not_found":
		return code, http.StatusNotFound
	case "deleted", "conflict":
		return code, http.StatusConflict
	case "undecodable", "unknown_command", "unknown_event":
		return "bad_request", http.StatusBadRequest
	case "rejected":
		errors.As(err, &rej)
		for _, c := range rejections {
			if rej.Err.Error() == c.err.Error() {
				return c.code, c.status
			}
		}
		return "rejected", http.StatusUnprocessableEntity
	}
	return "unavailable", http.StatusServiceUnavailable
}

var rejections = []struct {
	err    error
	code   string
	status int
}{
	{ErrNoTitle, "no_title", http.StatusUnprocessableEntity},
	{ErrNoText, "no_text", http.StatusUnprocessableEntity},
	{ErrNoItemID, "no_item_id", http.StatusUnprocessableEntity},
	{ErrAlreadyExists, "already_exists", http.StatusConflict},
	{ErrDuplicateItem, "duplicate_item", http.StatusConflict},
	{ErrNoSuchItem, "no_such_item", http.StatusNotFound},
	{ErrFull, "full", http.StatusUnprocessableEntity},
}

func (s *System) getList(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	v, err := ask[ListView](s, r, ListByID{ID: id}, consumers.Consistent(id))
	if err == nil {
		writeJSON(w, http.StatusOK, v)
	} else {
		s.readFailed(w, err)
	}
}

func (s *System) findLists(w http.ResponseWriter, r *http.Request) {
	var (
		vs  []ListView
		err error
	)
	if owner := r.URL.Query().Get("owner"); owner != "" {
		vs, err = ask[[]ListView](s, r, ListsByOwner{Owner: owner}, consumers.Consistent())
	} else {
		vs, err = ask[[]ListView](s, r, SearchLists{Text: r.URL.Query().Get("q")}, consumers.Consistent())
	}
	if err == nil {
		writeJSON(w, http.StatusOK, vs)
	} else {
		s.readFailed(w, err)
	}
}

// ask asks the projection, its wait bounded by the command timeout.
func ask[V, Q any](s *System, r *http.Request, q Q, opts ...consumers.AskOption) (V, error) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CommandTimeout)
	defer cancel()
	return consumers.Ask[V](ctx, s.projection, q, opts...)
}

func (s *System) readFailed(w http.ResponseWriter, err error) {
	if errors.Is(err, consumers.ErrNotFound) {
		writeError(w, http.StatusNotFound, "not_found", errors.New("no such list"))
		return
	}
	w.Header().Set("Retry-After", "1")
	writeError(w, http.StatusServiceUnavailable, "unavailable", fmt.Errorf("the read model did not answer in %s: %w", s.cfg.CommandTimeout, err))
}

// newID is a new item id: derived from the request's Idempotency-Key, so
// a retry names the same one, or random.
func newID(prefix string, r *http.Request) string {
	if key := r.Header.Get("Idempotency-Key"); key != "" {
		return prefix + digest("id", r.URL.Path, key)[:16]
	}
	return prefix + streams.NewID()
}

func digest(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:])
}

// readJSON decodes the request's JSON into v, or answers 400.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad_request", fmt.Errorf("the body must be a JSON object with the documented fields (at most %d KiB): %w", maxBody>>10, err))
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code string, err error) {
	writeJSON(w, status, map[string]string{"error": err.Error(), "code": code})
}

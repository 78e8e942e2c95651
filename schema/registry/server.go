package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
)

// DefaultMaxRequestBytes is the request body limit used unless
// [WithMaxRequestBytes] says otherwise.
const DefaultMaxRequestBytes = 1 << 20

// maxWriteAttempts bounds how often one request re-reads and decides again
// after losing a race for the log, so a misbehaving Store cannot spin a
// request forever.
const maxWriteAttempts = 100

// Server is a Confluent-compatible schema registry (REST API v1, Avro only)
// that keeps its data in a [Store]. It is safe for concurrent use, and any
// number of Servers may share one log.
type Server struct {
	store    Store
	users    map[string]string
	maxBytes int64
	log      *slog.Logger
	handler  http.Handler

	// done is cancelled by Close: it stops in-flight store calls and makes
	// new requests fail fast.
	done      context.Context
	closeDone context.CancelFunc

	// mu guards st and pos, and is held across a whole read-decide-write
	// cycle so that requests served by one Server never race each other for
	// the log (races between Servers are settled by Store.Write).
	mu  sync.Mutex
	st  *state
	pos int64
}

// Option configures a [Server].
type Option func(*Server) error

// WithAuth requires HTTP basic authentication with one of users (user name
// to password) on every request; others get 401 with error code 40101.
// See [LoadAuthFile] for reading users from a file.
func WithAuth(users map[string]string) Option {
	return func(s *Server) error {
		if len(users) == 0 {
			return errors.New("WithAuth: no users given; omit the option to serve without authentication")
		}
		s.users = make(map[string]string, len(users))
		for u, p := range users {
			s.users[u] = p
		}
		return nil
	}
}

// WithMaxRequestBytes limits request bodies to n bytes (default
// [DefaultMaxRequestBytes]); larger requests get 413.
func WithMaxRequestBytes(n int64) Option {
	return func(s *Server) error {
		if n <= 0 {
			return fmt.Errorf("WithMaxRequestBytes: limit must be positive, got %d", n)
		}
		s.maxBytes = n
		return nil
	}
}

// WithLogger sets the logger for failed requests, recovered panics and
// undecodable log records (default: slog.Default()).
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) error {
		if l == nil {
			return errors.New("WithLogger: nil logger")
		}
		s.log = l
		return nil
	}
}

// New returns a Server on store. It reads nothing yet: every request first
// catches up with the log, so the first request after start-up pays for
// reading it.
func New(store Store, opts ...Option) (*Server, error) {
	if store == nil {
		return nil, errors.New("registry.New: nil store")
	}
	s := &Server{
		store:    store,
		maxBytes: DefaultMaxRequestBytes,
		log:      slog.Default(),
		st:       newState(),
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, fmt.Errorf("registry.New: %w", err)
		}
	}
	s.done, s.closeDone = context.WithCancel(context.Background())
	s.handler = s.routes()
	return s, nil
}

// Handler returns the HTTP handler serving the REST API.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Close makes the server refuse new requests (503, error code 50001) and
// cancels the store calls of requests in flight. It does not close the
// store, which belongs to the caller.
func (s *Server) Close() error {
	s.closeDone()
	return nil
}

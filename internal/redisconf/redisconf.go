// Package redisconf holds what recq's Redis stores (consumer state, dedupe,
// snapshots) share when they are made: their options applied and checked,
// and a name for the server in error messages.
package redisconf

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Build applies opts to a zero config and checks it and the client; pkg
// prefixes the errors ("state", "dedupe", "snapshot").
func Build[C any, O ~func(*C)](pkg string, c redis.UniversalClient, opts []O, validate func(C) error) (C, error) {
	var cfg C
	if c == nil {
		return cfg, errors.New(pkg + ": NewRedis: nil Redis client")
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg, validate(cfg)
}

// Addr names c's server for error messages.
func Addr(c redis.UniversalClient) string {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().Addr
	case *redis.ClusterClient:
		return strings.Join(c.Options().Addrs, ",")
	}
	return "(address unknown)"
}

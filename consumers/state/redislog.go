package state

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
)

// RedisLogger adapts l to go-redis's logger, so the client's own messages
// (connection pool warnings during an outage, say) come out as recq's log
// lines do, at Warn level with source=go-redis, instead of in a format of
// their own:
//
//	redis.SetLogger(state.RedisLogger(slog.Default()))
//
// go-redis's logger is process-wide, so the program sets it, once.
func RedisLogger(l *slog.Logger) interface {
	Printf(ctx context.Context, format string, v ...any)
} {
	return redisLogger{l.With("source", "go-redis")}
}

type redisLogger struct{ l *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	r.l.WarnContext(ctx, strings.TrimSpace(fmt.Sprintf(format, v...)))
}

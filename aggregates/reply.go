package aggregates

import (
	"errors"
	"fmt"
)

// The reply protocol: what a runner answers a command with, on the
// command's recq-reply-to topic, keyed by the command id, as JSON. An
// Invoker turns a rejection's code back into this package's sentinels.

// Reply is what the runner answers a command with, on the command's
// recq-reply-to topic, keyed by the command id.
type Reply struct {
	Version   int64  `json:"version,omitempty"`   // the aggregate's version after the command
	Events    int    `json:"events"`              // how many events it caused
	Duplicate bool   `json:"duplicate,omitempty"` // the command id was handled before
	Code      string `json:"code,omitempty"`      // rejection: not_found, deleted, conflict, rejected, unknown_command, undecodable
	Error     string `json:"error,omitempty"`
}

var codes = []struct {
	code string
	err  error
}{
	{"not_found", ErrNotFound},
	{"deleted", ErrDeleted},
	{"conflict", ErrConflict},
	{"unknown_command", ErrUnknownCommand},
	{"unknown_event", ErrUnknownEvent},
	{"undecodable", ErrUndecodable},
}

func rejection(err error) Reply {
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return Reply{Code: c.code, Error: err.Error()}
		}
	}
	var rej *RejectedError
	if errors.As(err, &rej) {
		return Reply{Code: "rejected", Error: rej.Err.Error()}
	}
	return Reply{Code: "rejected", Error: err.Error()}
}

// replyErr is the error an invoker returns for a rejection.
func replyErr(rp Reply) error {
	for _, c := range codes {
		if c.code == rp.Code {
			return fmt.Errorf("%s: %w", rp.Error, c.err)
		}
	}
	return &RejectedError{Err: errors.New(rp.Error)}
}

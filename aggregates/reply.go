package aggregates

import (
	"errors"
	"fmt"
	"strings"
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

// Code is the reply code a Send error stands for: not_found, deleted,
// conflict, unknown_command, unknown_event, undecodable, rejected (a
// handler's own refusal), or "" for an error that is no answer (no reply,
// a broker that refused the command). Clients map it to their own
// statuses (an HTTP API, a CLI's JSON).
func Code(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	var rej *RejectedError
	if errors.As(err, &rej) {
		return "rejected"
	}
	return ""
}

// replyErr is the error an invoker returns for a rejection: the runner's
// message, matching the code's sentinel with errors.Is.
func replyErr(rp Reply) error {
	for _, c := range codes {
		if c.code == rp.Code {
			return &answered{msg: rp.Error, sentinel: c.err}
		}
	}
	return &RejectedError{Err: errors.New(rp.Error)}
}

// answered is a runner's rejection: its message already names the
// sentinel's rule, so the sentinel is not said twice.
type answered struct {
	msg      string
	sentinel error
}

func (a *answered) Error() string {
	if strings.Contains(a.msg, a.sentinel.Error()) {
		return a.msg
	}
	return fmt.Sprintf("%s: %v", a.msg, a.sentinel)
}

func (a *answered) Unwrap() error { return a.sentinel }

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/recq/recq/aggregates"
	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

func newSendCmd(g *globals) *cobra.Command {
	var (
		commandID string
		expect    int64
		out       = outputFlag("table")
	)
	cmd := &cobra.Command{
		Use:   "send AGGREGATE ID TYPE [JSON|-]",
		Short: "Send a command to an aggregate and print its reply",
		Long: `Send a command to the aggregate ID of type AGGREGATE, as a Go service's
aggregates.Invoker does, and wait for the runner's reply: the aggregate's
version after the command and how many events it caused, or why it was
rejected (exit 1).

TYPE is the command's payload type: the full name of its Avro record
(namespace.name, what the recq-type header carries), e.g. todo.CreateList
for the todolist aggregate of examples/todo.
The command is a JSON object, given as the argument or on standard input
(when the argument is - or absent), encoded with the latest schema
registered for TYPE on the aggregate's commands topic: subject
<AGGREGATE>.commands-<TYPE>. Missing fields take their defaults, unknown
ones are refused. A runner registers its commands' schemas; recq schema
list shows them.

--command-id sets the command's id (default: a new UUIDv7). A command id is
handled once: sent again, the reply says duplicate and nothing new is
written, so a send that timed out can be retried safely with the id it
printed. --timeout bounds the wait for the reply. -o json prints the reply
as one JSON object on stdout, a rejection too (with "code" and "error").`,
		Example: `  recq send todolist list-1 todo.CreateList '{"title":"groceries","owner":"ann"}'
  echo '{"item_id":"i-1","text":"milk"}' | recq send todolist list-1 todo.AddItem --command-id add-milk-1
  recq send todolist list-1 todo.AddItem '{"item_id":"i-2","text":"eggs"}' --expect-version 2 -o json`,
		Args: args(cobra.RangeArgs(3, 4)),
		RunE: func(cmd *cobra.Command, a []string) error {
			agg, id, typ := a[0], a[1], a[2]
			value, err := commandJSON(cmd, a)
			if err != nil {
				return err
			}
			payload, err := encodeCommand(cmd.Context(), g, agg, typ, value)
			if err != nil {
				return err
			}
			adm, ctx, done, err := g.admin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if _, err := adm.DescribeTopic(ctx, aggregates.CommandsTopic(agg)); errors.Is(err, streams.ErrTopicNotFound) {
				return fmt.Errorf("aggregate %s has no commands topic %s: is the name right? Its runner creates its topics (see: recq topic list)", agg, aggregates.CommandsTopic(agg))
			} else if err != nil {
				return err
			}
			iv, err := aggregates.NewInvoker(ctx, g.brokerList(), encodedCodec{})
			if err != nil {
				return err
			}
			defer iv.Close()
			var opts []aggregates.SendOption
			if commandID != "" {
				opts = append(opts, aggregates.WithCommandID(commandID))
			}
			if cmd.Flags().Changed("expect-version") {
				opts = append(opts, aggregates.ExpectVersion(expect))
			}
			res, err := iv.Send(ctx, agg, id, encodedCommand{typ: typ, value: payload}, opts...)
			reply := sendReply{CommandID: res.CommandID, Aggregate: agg, ID: id, Type: typ,
				Version: res.Version, Events: res.Events, Duplicate: res.Duplicate}
			if err != nil {
				return sendFailed(cmd.OutOrStdout(), out, g, reply, err)
			}
			return render(cmd.OutOrStdout(), out, reply, func(w io.Writer) {
				at := ""
				if reply.Version > 0 {
					at = fmt.Sprintf(" is at version %d", reply.Version)
				}
				if reply.Duplicate {
					fmt.Fprintf(w, "duplicate: command %s was handled before; %s %s%s, nothing new was written\n", reply.CommandID, agg, id, at)
					return
				}
				fmt.Fprintf(w, "accepted: %s %s%s (%s); command id %s\n", agg, id, at, plural(reply.Events, "event"), reply.CommandID)
			})
		},
	}
	cmd.Flags().StringVar(&commandID, "command-id", "", "the command's id (default: a new UUIDv7); the same id again is handled once")
	cmd.Flags().Int64Var(&expect, "expect-version", 0, "reject the command unless the aggregate is at this version")
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

// sendReply is what recq send prints: the runner's reply.
type sendReply struct {
	CommandID string `json:"command_id"`
	Aggregate string `json:"aggregate"`
	ID        string `json:"id"`
	Type      string `json:"type"`
	Version   int64  `json:"version"`
	Events    int    `json:"events"`
	Duplicate bool   `json:"duplicate"`
	Code      string `json:"code,omitempty"`  // a rejection (not_found, deleted, conflict, unknown_command, undecodable, rejected) or no_reply
	Error     string `json:"error,omitempty"` // why it was rejected, or why there is no reply
}

// commandJSON is the command's JSON: the fourth argument, or stdin when it
// is "-" or absent.
func commandJSON(cmd *cobra.Command, a []string) ([]byte, error) {
	var value []byte
	if len(a) == 4 && a[3] != "-" {
		value = []byte(a[3])
	} else {
		in := cmd.InOrStdin()
		if f, ok := in.(*os.File); ok && len(a) == 3 {
			if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
				return nil, usagef("send: give the command as JSON, e.g. '{}', or on standard input (see 'recq send --help')")
			}
		}
		b, err := io.ReadAll(io.LimitReader(in, maxLine+1))
		if err != nil {
			return nil, fmt.Errorf("send: reading the command from stdin: %w", err)
		}
		if len(b) > maxLine {
			return nil, usagef("send: the command on stdin is larger than %d MiB", maxLine>>20)
		}
		value = b
	}
	value = bytes.TrimSpace(value)
	if !json.Valid(value) || len(value) == 0 || value[0] != '{' {
		return nil, usagef("send: the command must be a JSON object, got %.80q (see 'recq send --help')", value)
	}
	return value, nil
}

// encodeCommand encodes the command with the schema registered for typ on
// the aggregate's commands topic, saying which types there are when typ
// has none.
func encodeCommand(ctx context.Context, g *globals, agg, typ string, value []byte) ([]byte, error) {
	enc, err := g.jsonEncoder(ctx)
	if err != nil {
		return nil, err
	}
	topic := aggregates.CommandsTopic(agg)
	subject := schema.SubjectFor(topic, typ)
	payload, err := enc.encode(ctx, subject, value)
	switch {
	case errors.Is(err, schema.ErrSchemaNotRegistered):
		known := commandTypes(ctx, enc, topic)
		if len(known) == 0 {
			return nil, fmt.Errorf("the registry has no command schemas for aggregate %s (no subject %s-*): is the name right, and has its runner started once? (see: recq schema list)", agg, topic)
		}
		return nil, fmt.Errorf("aggregate %s has no command type %s (no subject %s); its command types are: %s. TYPE is the Avro full name, namespace.name",
			agg, typ, subject, strings.Join(known, ", "))
	case err != nil:
		return nil, fmt.Errorf("command %s does not fit its schema (subject %s): %w", typ, subject, err)
	}
	return payload, nil
}

// commandTypes lists the command types registered on a commands topic.
func commandTypes(ctx context.Context, enc *jsonEncoder, topic string) []string {
	subjects, err := enc.cl.Subjects(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, s := range subjects {
		if t, ok := strings.CutPrefix(s, topic+"-"); ok {
			out = append(out, t)
		}
	}
	return out
}

// sendFailed reports a rejection or a missing reply (exit 1), and with -o
// json prints it on stdout as well.
func sendFailed(w io.Writer, out outputFlag, g *globals, reply sendReply, err error) error {
	what := fmt.Sprintf("%s %s", reply.Aggregate, reply.ID)
	var rej *aggregates.RejectedError
	switch code := aggregates.Code(err); {
	case errors.As(err, &rej):
		reply.Code, reply.Error = code, rej.Err.Error()
		err = fmt.Errorf("%s rejected %s: %s (command id %s)", what, reply.Type, reply.Error, reply.CommandID)
	case code != "":
		msg := err.Error()
		reply.Code, reply.Error = code, msg
		err = fmt.Errorf("%s rejected %s (%s): %s (command id %s)", what, reply.Type, code, msg, reply.CommandID)
	case errors.Is(err, context.DeadlineExceeded):
		reply.Code = "no_reply"
		err = fmt.Errorf("no reply from %s within %v to command %s: it may still be handled. Is the %s runner running? (see: recq groups describe %s.runner) "+
			"Send again with --command-id %s to find out: a command id is handled once", what, g.timeout, reply.CommandID, reply.Aggregate, reply.Aggregate, reply.CommandID)
		reply.Error = err.Error()
	default:
		return err
	}
	if out == "json" {
		if jerr := render(w, out, reply, nil); jerr != nil {
			return jerr
		}
	}
	return err
}

// encodedCommand is a command encoded already (by the registry's schema
// for its type), which encodedCodec hands to the invoker as it is.
type encodedCommand struct {
	typ   string
	value []byte
}

// encodedCodec is the invoker's codec for commands that come as JSON with
// a type name instead of as Go values.
type encodedCodec struct{}

func (encodedCodec) Encode(_ context.Context, _ string, v any) ([]byte, string, error) {
	c, ok := v.(encodedCommand)
	if !ok {
		return nil, "", fmt.Errorf("recq send: cannot encode %T", v)
	}
	return c.value, c.typ, nil
}

func (encodedCodec) Decode(context.Context, string, []byte, any) error {
	return errors.New("recq send: decodes nothing")
}

func (encodedCodec) TypeName(v any) (string, error) {
	c, ok := v.(encodedCommand)
	if !ok {
		return "", fmt.Errorf("recq send: no type name for %T", v)
	}
	return c.typ, nil
}

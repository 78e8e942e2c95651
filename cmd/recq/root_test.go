package main

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// walk calls fn on every visible command under root, root included.
func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		if !c.Hidden {
			walk(c, fn)
		}
	}
}

// Every command that runs something shows how in its --help.
func TestEveryLeafHasExample(t *testing.T) {
	leaves := 0
	walk(newRootCmd(), func(c *cobra.Command) {
		if c.HasSubCommands() {
			return
		}
		leaves++
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%q has no Example in its --help", c.CommandPath())
		}
	})
	if leaves < 20 {
		t.Fatalf("walked only %d leaf commands: is the tree built?", leaves)
	}
}

// execute runs the command tree with args and returns its error.
func execute(args ...string) error {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	return root.ExecuteContext(context.Background())
}

// A word that names no subcommand of a group is a wrong call (exit 2),
// for every group, at every depth; the group alone still shows its help.
func TestUnknownSubcommand(t *testing.T) {
	walk(newRootCmd(), func(c *cobra.Command) {
		if !c.HasSubCommands() {
			return
		}
		path := strings.Fields(c.CommandPath())[1:]
		err := execute(append(path, "nosuch")...)
		var ue usageError
		if !errors.As(err, &ue) {
			t.Errorf("%s nosuch: want a usage error, got %v", c.CommandPath(), err)
			return
		}
		want := `unknown command "nosuch" for "` + c.CommandPath() + `" (see ` + c.CommandPath() + ` --help)`
		if err.Error() != want {
			t.Errorf("%s nosuch:\n got %s\nwant %s", c.CommandPath(), err, want)
		}
		if err := execute(path...); err != nil {
			t.Errorf("%s alone: want its help, got %v", c.CommandPath(), err)
		}
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topic", "craete"}, `unknown command "craete" for "recq topic" (see recq topic --help); did you mean "create"?`},
		{[]string{"consum"}, `unknown command "consum" for "recq" (see recq --help); did you mean "consume"?`},
		{[]string{"help", "topic", "craete"}, `unknown command "craete" for "recq topic" (see recq topic --help)`},
		// The flag is unknown to `topic` because the command is.
		{[]string{"topic", "craete", "orders", "--partitions", "3"}, `unknown command "craete" for "recq topic"`},
	} {
		err := execute(tc.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want a usage error starting %q", tc.args, err, tc.want)
		}
	}
	var ue usageError
	if err := execute("topic", "list", "--bogus"); !errors.As(err, &ue) || err.Error() != "unknown flag: --bogus" {
		t.Errorf("unknown flag of a leaf: %v", err)
	}
}

func TestPlural(t *testing.T) {
	for n, want := range map[int]string{0: "0 records", 1: "1 record", 2: "2 records"} {
		if got := plural(n, "record"); got != want {
			t.Errorf("plural(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestAssignedText(t *testing.T) {
	if got := assignedText(map[string][]int32{"payments": {1}, "orders": {0, 1, 2}}); got != "orders: 0,1,2; payments: 1" {
		t.Errorf("got %q", got)
	}
	if got := assignedText(nil); got != "-" {
		t.Errorf("nothing assigned: got %q", got)
	}
}

func TestAvroFullName(t *testing.T) {
	for avsc, want := range map[string]string{
		`{"type":"record","name":"OrderPlaced","namespace":"shop","fields":[]}`:      "shop.OrderPlaced",
		`{"type":"record","name":"shop.v2.OrderPlaced","namespace":"x","fields":[]}`: "shop.v2.OrderPlaced",
		`{"type":"record","name":"Bare","fields":[]}`:                                "Bare",
		`{"type":"enum","name":"Color","namespace":"paint","symbols":["RED"]}`:       "paint.Color",
		`"string"`:                          "",
		`{"type":"array","items":"string"}`: "",
		`["null","string"]`:                 "",
	} {
		if got := avroFullName(avsc); got != want {
			t.Errorf("avroFullName(%s) = %q, want %q", avsc, got, want)
		}
	}
}

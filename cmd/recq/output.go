package main

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
)

// outputFlag is the --output flag of listing commands.
type outputFlag string

func (o *outputFlag) String() string { return string(*o) }
func (o *outputFlag) Type() string   { return "table|json" }
func (o *outputFlag) Set(s string) error {
	if s != "table" && s != "json" {
		return fmt.Errorf("want table or json, got %q", s)
	}
	*o = outputFlag(s)
	return nil
}

// render writes v as indented JSON, or calls table with a tab writer.
func render(w io.Writer, o outputFlag, v any, table func(tw io.Writer)) error {
	if o == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

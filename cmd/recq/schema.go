package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/sr"
)

const defaultRegistry = "http://localhost:8081"

// registryClient returns a client for --registry, failing fast with a clear
// message when nothing answers there.
func (g *globals) registryClient(ctx context.Context) (*sr.Client, error) {
	url := strings.TrimRight(g.registry, "/")
	if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
		url = "http://" + url
	}
	opts := []sr.ClientOpt{sr.URLs(url), sr.HTTPClient(&http.Client{Timeout: g.timeout})}
	if auth := os.Getenv("RECQ_REGISTRY_AUTH"); auth != "" {
		user, pass, ok := strings.Cut(auth, ":")
		if !ok {
			return nil, usagef("RECQ_REGISTRY_AUTH: want user:password")
		}
		opts = append(opts, sr.BasicAuth(user, pass))
	}
	cl, err := sr.NewClient(opts...)
	if err != nil {
		return nil, usagef("--registry %q: %v", g.registry, err)
	}
	if _, err := cl.SupportedTypes(ctx); err != nil {
		var re *sr.ResponseError
		if errors.As(err, &re) {
			return nil, fmt.Errorf("schema registry at %s: %s", url, re.Message)
		}
		return nil, fmt.Errorf("cannot reach the schema registry at %s (is 'recq dev' running? set --registry or RECQ_REGISTRY)", url)
	}
	return cl, nil
}

// withRegistry runs fn with a registry client that has answered.
func (g *globals) withRegistry(cmd *cobra.Command, fn func(ctx context.Context, cl *sr.Client) error) error {
	cl, err := g.registryClient(cmd.Context())
	if err != nil {
		return err
	}
	return fn(cmd.Context(), cl)
}

// registryErr turns a registry error response into one readable line.
func registryErr(err error) error {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return fmt.Errorf("schema registry: %s (error %d)", re.Message, re.ErrorCode)
	}
	return err
}

func newSchemaCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schema",
		Short: "Register, inspect and check Avro schemas in the schema registry",
		Long: `Work with the schema registry (--registry, else $RECQ_REGISTRY, else
` + defaultRegistry + `; basic auth from $RECQ_REGISTRY_AUTH=user:password).

Subjects follow TopicRecordNameStrategy: <topic>-<record full name>, e.g.
orders-shop.OrderPlaced. New versions are checked against the subject's
compatibility level (BACKWARD unless configured otherwise).`,
	}
	cmd.AddCommand(newSchemaRegisterCmd(g), newSchemaListCmd(g), newSchemaGetCmd(g), newSchemaCheckCmd(g),
		newSchemaConfigCmd(g), newSchemaDeleteCmd(g))
	return cmd
}

// readSchemaFile reads an .avsc file.
func readSchemaFile(path string) (sr.Schema, error) {
	if path == "" {
		return sr.Schema{}, usagef("--file is required")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return sr.Schema{}, fmt.Errorf("schema file: %w", err)
	}
	return sr.Schema{Schema: string(b), Type: sr.TypeAvro}, nil
}

// parseVersion reads a version argument: a number or "latest".
func parseVersion(s string) (int, error) {
	if s == "latest" {
		return -1, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return 0, usagef("--version: want a version number (1, 2, ...) or latest, got %q", s)
	}
	return v, nil
}

func newSchemaRegisterCmd(g *globals) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:     "register SUBJECT --file SCHEMA.avsc",
		Short:   "Register a schema under a subject (same schema again: same id and version)",
		Example: `  recq schema register orders-shop.OrderPlaced --file order_placed.avsc`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := readSchemaFile(file)
			if err != nil {
				return err
			}
			return g.withRegistry(cmd, func(ctx context.Context, cl *sr.Client) error {
				ss, err := cl.CreateSchema(ctx, a[0], s)
				if err != nil {
					return registryErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "registered %s version %d (schema id %d)\n", a[0], ss.Version, ss.ID)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the Avro schema (.avsc) to register")
	return cmd
}

func newSchemaListCmd(g *globals) *cobra.Command {
	var deleted bool
	out := outputFlag("table")
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List subjects with their latest version and schema id",
		Example: `  recq schema list
  recq schema list --deleted -o json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withRegistry(cmd, func(ctx context.Context, cl *sr.Client) error {
				if deleted {
					ctx = sr.WithParams(ctx, sr.ShowDeleted)
				}
				subjects, err := cl.Subjects(ctx)
				if err != nil {
					return registryErr(err)
				}
				latest := make([]subjectJSON, 0, len(subjects))
				for _, s := range subjects {
					ss, err := cl.SchemaByVersion(ctx, s, -1)
					if err != nil {
						return registryErr(err)
					}
					latest = append(latest, subjectJSON{Subject: ss.Subject, Version: ss.Version, ID: ss.ID})
				}
				return render(cmd.OutOrStdout(), out, latest, func(w io.Writer) {
					fmt.Fprintln(w, "SUBJECT\tLATEST\tID")
					for _, ss := range latest {
						fmt.Fprintf(w, "%s\t%d\t%d\n", ss.Subject, ss.Version, ss.ID)
					}
				})
			})
		},
	}
	cmd.Flags().BoolVar(&deleted, "deleted", false, "include soft-deleted subjects")
	cmd.Flags().VarP(&out, "output", "o", "output format: table or json")
	return cmd
}

func newSchemaGetCmd(g *globals) *cobra.Command {
	version := "latest"
	cmd := &cobra.Command{
		Use:   "get SUBJECT",
		Short: "Print a version of a subject's schema (default: the latest)",
		Long: `Print one version of a subject as JSON: subject, version, id and the schema
itself (as a JSON object, so it pipes into jq).`,
		Example: `  recq schema get orders-shop.OrderPlaced
  recq schema get orders-shop.OrderPlaced --version 1 | jq .schema`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			v, err := parseVersion(version)
			if err != nil {
				return err
			}
			return g.withRegistry(cmd, func(ctx context.Context, cl *sr.Client) error {
				ss, err := cl.SchemaByVersion(ctx, a[0], v)
				if err != nil {
					return registryErr(err)
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(struct {
					Subject string          `json:"subject"`
					Version int             `json:"version"`
					ID      int             `json:"id"`
					Schema  json.RawMessage `json:"schema"`
				}{ss.Subject, ss.Version, ss.ID, json.RawMessage(ss.Schema.Schema)})
			})
		},
	}
	cmd.Flags().StringVar(&version, "version", version, "version number or latest")
	return cmd
}

func newSchemaCheckCmd(g *globals) *cobra.Command {
	var file string
	version := "latest"
	cmd := &cobra.Command{
		Use:   "check SUBJECT --file SCHEMA.avsc",
		Short: "Check whether a schema could be registered (exit 1 and the reasons if not)",
		Long: `Check a schema against a subject under the subject's compatibility level
without registering it. Exit 0 when compatible; exit 1 with the registry's
reasons when not, so CI can gate schema changes.`,
		Example: `  recq schema check orders-shop.OrderPlaced --file order_placed_v2.avsc`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			s, err := readSchemaFile(file)
			if err != nil {
				return err
			}
			v, err := parseVersion(version)
			if err != nil {
				return err
			}
			return g.withRegistry(cmd, func(ctx context.Context, cl *sr.Client) error {
				res, err := cl.CheckCompatibility(sr.WithParams(ctx, sr.Verbose), a[0], v, s)
				if err != nil {
					return registryErr(err)
				}
				if !res.Is {
					return fmt.Errorf("%s is NOT compatible with %s version %s: %s", file, a[0], version, strings.Join(res.Messages, "; "))
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s is compatible with %s version %s\n", file, a[0], version)
				return nil
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the Avro schema (.avsc) to check")
	cmd.Flags().StringVar(&version, "version", version, "version to check against: a number or latest")
	return cmd
}

func newSchemaConfigCmd(g *globals) *cobra.Command {
	var level string
	cmd := &cobra.Command{
		Use:   "config [SUBJECT]",
		Short: "Show or set the compatibility level (global, or of one subject)",
		Long: `Without --level, print the compatibility level of SUBJECT (or the global
default). With --level, set it. Levels: NONE, BACKWARD (default), BACKWARD_TRANSITIVE,
FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE.

A subject without a level of its own is checked under the global one; recq
says so, and says when the subject has no schemas at all (a misspelt
name, or one not registered yet).`,
		Example: `  recq schema config
  recq schema config orders-shop.OrderPlaced --level FULL_TRANSITIVE`,
		Args: args(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			var lvl sr.CompatibilityLevel
			if level != "" {
				if err := lvl.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
					return usagef("--level %q: want NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL or FULL_TRANSITIVE", level)
				}
			}
			return g.withRegistry(cmd, func(ctx context.Context, cl *sr.Client) error {
				w := cmd.OutOrStdout()
				if level != "" {
					res := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: lvl}, a...)
					if err := res[0].Err; err != nil {
						return registryErr(err)
					}
					fmt.Fprintf(w, "%s: %s\n", scopeName(a), res[0].Level)
					return nil
				}
				res := cl.Compatibility(ctx, a...)
				switch err, code := res[0].Err, registryCode(res[0].Err); {
				case err == nil:
					fmt.Fprintf(w, "%s: %s\n", scopeName(a), res[0].Level)
					return nil
				case len(a) == 0 || code != codeSubjectNotFound && code != codeSubjectLevelNotSet:
					return registryErr(err)
				}
				// The subject has no level of its own (Confluent: 40401, or
				// 40408 in newer registries): the global one applies.
				global := cl.Compatibility(ctx)
				if err := global[0].Err; err != nil {
					return registryErr(err)
				}
				note := "no level of its own; the global level applies"
				if _, err := cl.SubjectVersions(ctx, a[0]); registryCode(err) == codeSubjectNotFound {
					note = fmt.Sprintf("subject %s has no schemas; the global level applies", a[0])
				} else if err != nil {
					return registryErr(err)
				}
				fmt.Fprintf(w, "%s: %s (%s)\n", a[0], global[0].Level, note)
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&level, "level", "", "set this compatibility level")
	return cmd
}

func newSchemaDeleteCmd(g *globals) *cobra.Command {
	var (
		version   string
		permanent bool
	)
	cmd := &cobra.Command{
		Use:   "delete SUBJECT",
		Short: "Delete a subject or one version (soft; --permanent after a soft delete)",
		Long: `Soft-delete a subject (or one --version of it): it disappears from listings
but its schema ids still decode existing records. Run again with --permanent
to remove it for good.`,
		Example: `  recq schema delete orders-shop.OrderPlaced --version 2
  recq schema delete scratch-value && recq schema delete scratch-value --permanent`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			how := sr.SoftDelete
			if permanent {
				how = sr.HardDelete
			}
			return g.withRegistry(cmd, func(ctx context.Context, cl *sr.Client) error {
				if version == "" {
					vs, err := cl.DeleteSubject(ctx, a[0], how)
					if err != nil {
						return registryErr(err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "deleted %s versions %v (%s)\n", a[0], vs, deleteWord(permanent))
					return nil
				}
				v, err := parseVersion(version)
				if err != nil {
					return err
				}
				if err := cl.DeleteSchema(ctx, a[0], v, how); err != nil {
					return registryErr(err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s version %s (%s)\n", a[0], version, deleteWord(permanent))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&version, "version", "", "delete only this version (a number or latest)")
	cmd.Flags().BoolVar(&permanent, "permanent", false, "delete permanently (only after a soft delete)")
	return cmd
}

// Confluent's error codes for a subject without versions and for one
// without a subject-level setting.
const (
	codeSubjectNotFound    = 40401
	codeSubjectLevelNotSet = 40408
)

// registryCode is the Confluent error code of a registry error, 0 if none.
func registryCode(err error) int {
	var re *sr.ResponseError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	return 0
}

func scopeName(a []string) string {
	if len(a) == 1 {
		return a[0]
	}
	return "global"
}

func deleteWord(permanent bool) string {
	if permanent {
		return "permanently"
	}
	return "soft; --permanent to remove for good"
}

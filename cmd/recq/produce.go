package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/streams"
)

// maxLine bounds one stdin line (one record); Kafka's default max message
// size is 1 MiB, so anything near this is already too big for the broker.
const maxLine = 16 << 20

func newProduceCmd(g *globals) *cobra.Command {
	var (
		key         string
		value       string
		headers     []string
		format      string
		subject     string
		compression string
	)
	cmd := &cobra.Command{
		Use:   "produce TOPIC",
		Short: "Produce records to a topic",
		Long: `Produce records to a topic. With --value, one record; without it, one record
per line of standard input (empty lines are skipped). Every record gets a
recq envelope: a message id (recq-id) and a correlation id.

With --format json every value must be a JSON document; the whole input is
checked first and nothing is produced if any line is not JSON (the error names
the first bad line). With --subject every line is a JSON object encoded as
Confluent-framed Avro with that subject's latest schema; a line that does not
fit the schema stops the whole input, again before anything is produced.
The recq-type header is the schema's full name (namespace.name of the Avro
record), whatever the subject is called: with TopicRecordNameStrategy
(orders-shop.OrderPlaced) or Confluent's default TopicNameStrategy
(orders-value) alike.

Batches are compressed with --compression (default snappy, which the Java
client, librdkafka, kcat and franz-go read). Plain kafkajs reads only gzip
and none (snappy, lz4 and zstd need a codec package there): produce with
--compression gzip or none for kafkajs consumers.

recq produce exits only after every record is acknowledged by the broker.`,
		Example: `  recq produce orders --key order-1 --value '{"total":12}'
  cat events.jsonl | recq produce orders --format json --header source=import
  echo '{"id":"o-1","total":12}' | recq produce orders --subject orders-shop.OrderPlaced
  echo '{"id":"o-1","total":12}' | recq produce orders --subject orders-value --compression gzip   # for kafkajs`,
		Args: args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, a []string) error {
			if format != "raw" && format != "json" {
				return usagef("--format: want raw or json, got %q", format)
			}
			codec, err := streams.ParseCompression(compression)
			if err != nil {
				return usagef("--compression: want one of %s, got %q", strings.Join(streams.Compressions, ", "), compression)
			}
			hdrs, err := keyValues("header", headers)
			if err != nil {
				return err
			}
			var values [][]byte
			if cmd.Flags().Changed("value") {
				values = [][]byte{[]byte(value)}
			} else if values, err = readLines(cmd.InOrStdin()); err != nil {
				return err
			}
			if format == "json" || subject != "" {
				for i, v := range values {
					if !json.Valid(v) {
						return fmt.Errorf("line %d is not valid JSON (nothing was produced): %.80q", i+1, v)
					}
				}
			}
			var typ string // the payload type, from the schema
			if subject != "" {
				if values, typ, err = encodeAvro(cmd.Context(), g, subject, values); err != nil {
					return err
				}
			}
			topic := a[0]
			adm, ctx, done, err := g.admin(cmd.Context())
			if err != nil {
				return err
			}
			defer done()
			if err := requireTopics(ctx, adm, topic); err != nil {
				return err
			}
			// A broker that dies mid-way fails the records instead of
			// leaving recq produce retrying forever.
			p, err := streams.NewPublisher(g.brokerList(), streams.WithCompression(codec),
				streams.WithClientOptions(kgo.RecordDeliveryTimeout(g.timeout)))
			if err != nil {
				return err
			}
			defer p.Close(cmd.Context())
			recs := make([]*kgo.Record, len(values))
			for i, v := range values {
				r := &kgo.Record{Topic: topic, Value: v}
				if key != "" {
					r.Key = []byte(key)
				}
				for k, hv := range hdrs {
					streams.SetHeader(r, k, hv)
				}
				if typ != "" {
					streams.SetHeader(r, streams.HeaderType, typ)
				}
				recs[i] = r
			}
			if err := p.Publish(cmd.Context(), recs...); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "produced %s to %s\n", plural(len(recs), "record"), topic)
			return nil
		},
	}
	cmd.Flags().StringVarP(&key, "key", "k", "", "record key (same key, same partition, kept in order)")
	cmd.Flags().StringVarP(&value, "value", "v", "", "the value of a single record (else: one record per stdin line)")
	cmd.Flags().StringArrayVarP(&headers, "header", "H", nil, "record header key=value (repeatable)")
	cmd.Flags().StringVarP(&format, "format", "f", "raw", "value format: raw (any bytes) or json (validated)")
	cmd.Flags().StringVarP(&subject, "subject", "s", "", "encode each JSON line as Avro with this subject's latest schema")
	cmd.Flags().StringVar(&compression, "compression", "snappy", "batch compression: "+strings.Join(streams.Compressions, ", ")+" (plain kafkajs reads only gzip and none)")
	return cmd
}

// encodeAvro encodes every JSON line with subject's latest schema, or fails
// naming the first line that does not fit, and returns the payload type
// (the schema's full name).
func encodeAvro(ctx context.Context, g *globals, subject string, lines [][]byte) ([][]byte, string, error) {
	enc, err := g.jsonEncoder(ctx)
	if err != nil {
		return nil, "", err
	}
	out := make([][]byte, len(lines))
	for i, l := range lines {
		if out[i], err = enc.encode(ctx, subject, l); err != nil {
			return nil, "", fmt.Errorf("line %d does not fit subject %s (nothing was produced): %w", i+1, subject, err)
		}
	}
	if len(out) == 0 {
		return out, "", nil
	}
	typ, err := enc.typeName(ctx, out[0])
	if err != nil {
		return nil, "", fmt.Errorf("subject %s (nothing was produced): %w", subject, err)
	}
	return out, typ, nil
}

func readLines(r io.Reader) ([][]byte, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxLine)
	var lines [][]byte
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading stdin after line %d (nothing was produced): %w", len(lines), err)
	}
	return lines, nil
}

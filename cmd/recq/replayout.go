package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/recq/recq/schema"
	"github.com/recq/recq/streams"
)

// replayed is one record a replay writes: decoded, with its payload type.
type replayed struct {
	streams.Record[schema.Generic]
	typ string // the recq-type header, else the writer schema's name
}

// sink is where a replay writes. Files are written under temporary names
// and renamed by commit, so a failed or interrupted replay leaves nothing
// partial; abort removes them.
type sink interface {
	write(r *replayed) error
	commit() error
	abort()
	paths() []string // what commit wrote
}

// openSink checks out (stdout for "" or "-") and opens the sink for it:
// before anything is read, so an unwritable path fails at once.
func openSink(out string, stdout io.Writer) (sink, error) {
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		return nil, usagef("--out %s is a directory: give a file name", out)
	}
	switch ext := strings.ToLower(filepath.Ext(out)); {
	case out == "" || out == "-":
		return &jsonSink{w: bufio.NewWriterSize(stdout, 256<<10)}, nil
	case ext == ".jsonl" || ext == ".ndjson" || ext == ".json":
		f, err := createTemp(out)
		if err != nil {
			return nil, err
		}
		return &jsonSink{w: bufio.NewWriterSize(f, 256<<10), f: f, dest: out}, nil
	case ext == ".csv":
		f, err := createTemp(out) // only to check the directory takes files; spools are made per type
		if err != nil {
			return nil, err
		}
		f.Close()
		os.Remove(f.Name())
		return &csvSink{dest: out, types: map[string]*csvType{}}, nil
	case ext == ".parquet":
		return nil, usagef("--out %s: Parquet output is not built yet; write .jsonl or .csv", out)
	default:
		return nil, usagef("--out %s: want a file ending in .jsonl or .csv, or - for stdout", out)
	}
}

// createTemp makes a temporary file beside dest, in the directory the
// rename will move it within.
func createTemp(dest string) (*os.File, error) {
	f, err := os.CreateTemp(filepath.Dir(dest), "."+filepath.Base(dest)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("cannot write --out %s: %w", dest, errors.Unwrap(err))
	}
	return f, nil
}

// jsonSink writes JSON lines to stdout or to a file.
type jsonSink struct {
	w    *bufio.Writer
	f    *os.File // nil for stdout
	dest string
	line []byte
}

func (s *jsonSink) write(r *replayed) error {
	s.line = appendRecordJSON(s.line[:0], r)
	_, err := s.w.Write(s.line)
	return err
}

func (s *jsonSink) commit() error {
	err := s.w.Flush()
	if s.f == nil {
		return err
	}
	if err == nil {
		err = s.f.Close()
	}
	if err == nil {
		err = os.Rename(s.f.Name(), s.dest)
	}
	if err != nil {
		s.abort()
		return fmt.Errorf("writing %s: %w", s.dest, err)
	}
	return nil
}

func (s *jsonSink) abort() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}

func (s *jsonSink) paths() []string {
	if s.f == nil {
		return []string{"stdout"}
	}
	return []string{s.dest}
}

// timeLayout is RFC 3339 with milliseconds always written (Kafka's
// precision), so timestamps sort as text.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// appendRecordJSON is one JSON line: the position, the key, the envelope's
// fields that are set, the other headers (first of a name, in record
// order) and the payload.
func appendRecordJSON(b []byte, r *replayed) []byte {
	b = append(b, `{"topic":`...)
	b = appendJSONStr(b, r.Topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(r.Partition), 10)
	b = append(b, `,"offset":`...)
	b = strconv.AppendInt(b, r.Offset, 10)
	b = append(b, `,"timestamp":"`...)
	b = r.Timestamp.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","key":`...)
	switch key, enc := replayKey(r.Key); {
	case r.Key == nil:
		b = append(b, "null"...)
	case enc != "":
		b = append(appendJSONStr(b, key), `,"key_encoding":"base64"`...)
	default:
		b = appendJSONStr(b, key)
	}
	for _, f := range envelopeColumns(r) {
		if f.v != "" {
			b = append(append(append(b, ',', '"'), f.name...), '"', ':')
			if f.name == "aggregate_version" {
				b = append(b, f.v...)
			} else {
				b = appendJSONStr(b, f.v)
			}
		}
	}
	first := true
	for i, h := range r.Raw.Headers {
		if envelopeHeader[h.Key] || seenBefore(r.Raw.Headers[:i], h.Key) {
			continue
		}
		if first {
			b, first = append(b, `,"headers":{`...), false
		} else {
			b = append(b, ',')
		}
		b = append(appendJSONStr(b, h.Key), ':')
		b = appendJSONStr(b, string(h.Value))
	}
	if !first {
		b = append(b, '}')
	}
	b = append(b, `,"value":`...)
	b = append(b, r.Value.JSON...)
	return append(b, '}', '\n')
}

// envelopeHeader are the headers written as columns of their own.
var envelopeHeader = map[string]bool{
	streams.HeaderType: true, streams.HeaderID: true, streams.HeaderCorrelationID: true,
	streams.HeaderCausationID: true, streams.HeaderAggregateID: true, streams.HeaderAggregateVersion: true,
}

func seenBefore(hs []kgo.RecordHeader, key string) bool {
	for _, h := range hs {
		if h.Key == key {
			return true
		}
	}
	return false
}

type column struct{ name, v string }

// envelopeColumns are the envelope's fields a replay writes, in order.
func envelopeColumns(r *replayed) [6]column {
	v := ""
	if r.AggregateVersion != 0 {
		v = strconv.FormatInt(r.AggregateVersion, 10)
	}
	return [6]column{{"type", r.typ}, {"id", r.ID}, {"correlation_id", r.CorrelationID},
		{"causation_id", r.CausationID}, {"aggregate_id", r.AggregateID}, {"aggregate_version", v}}
}

// replayKey is a key as text: itself when UTF-8, else base64 (and its name).
func replayKey(k []byte) (string, string) {
	if utf8.Valid(k) {
		return string(k), ""
	}
	return base64.StdEncoding.EncodeToString(k), "base64"
}

// appendJSONStr appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONStr(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, `\n`...)
		case c == '\t':
			b = append(b, `\t`...)
		case c == '\r':
			b = append(b, `\r`...)
		case c < 0x20:
			b = append(b, fmt.Sprintf(`\u%04x`, c)...)
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

// csvSink writes one CSV file per payload type. Payload columns are known
// only once every record is read (a schema may gain fields mid-topic), so
// rows are spooled to a temporary file per type and the file is written
// at commit: the header, then the rows padded to every column.
type csvSink struct {
	dest  string
	types map[string]*csvType
	order []string // types in the order first seen
	done  []string
}

type csvType struct {
	spool *os.File
	w     *csv.Writer
	cols  []string // payload columns in the order first seen
	index map[string]int
	row   []string
}

var csvMeta = []string{"topic", "partition", "offset", "timestamp", "key", "type", "id",
	"correlation_id", "causation_id", "aggregate_id", "aggregate_version"}

func (s *csvSink) write(r *replayed) error {
	t := s.types[r.typ]
	if t == nil {
		f, err := createTemp(s.dest)
		if err != nil {
			return err
		}
		t = &csvType{spool: f, w: csv.NewWriter(bufio.NewWriterSize(f, 256<<10)), index: map[string]int{}}
		s.types[r.typ] = t
		s.order = append(s.order, r.typ)
	}
	key, enc := replayKey(r.Key)
	if enc != "" {
		key = "base64:" + key
	}
	t.row = append(t.row[:0], r.Topic, strconv.Itoa(int(r.Partition)), strconv.FormatInt(r.Offset, 10),
		r.Timestamp.UTC().Format(timeLayout), key)
	for _, c := range envelopeColumns(r) {
		t.row = append(t.row, c.v)
	}
	meta := len(t.row)
	err := flatten(r.Value.JSON, "", func(col, v string) {
		i, ok := t.index[col]
		if !ok {
			i = len(t.cols)
			t.index[col] = i
			t.cols = append(t.cols, col)
		}
		for len(t.row) <= meta+i {
			t.row = append(t.row, "")
		}
		t.row[meta+i] = v
	})
	if err != nil {
		return fmt.Errorf("flattening %s/%d/%d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return t.w.Write(t.row)
}

// flatten calls emit with each leaf of a JSON value: nested object fields
// dotted, arrays as JSON text, null as an empty cell. A value that is not
// an object is the column "value".
func flatten(value []byte, prefix string, emit func(col, v string)) error {
	value = bytes.TrimSpace(value)
	if len(value) == 0 || value[0] != '{' {
		col := prefix
		if col == "" {
			col = "value"
		}
		emit(col, cell(value))
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	if _, err := dec.Token(); err != nil {
		return err
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return err
		}
		col := prefix + tok.(string)
		if len(raw) > 0 && raw[0] == '{' {
			if err := flatten(raw, col+".", emit); err != nil {
				return err
			}
			continue
		}
		emit(col, cell(raw))
	}
	return nil
}

// cell is a JSON leaf as CSV text: strings unquoted, null empty.
func cell(raw []byte) string {
	switch {
	case len(raw) == 0 || string(raw) == "null":
		return ""
	case raw[0] == '"':
		var s string
		if json.Unmarshal(raw, &s) == nil {
			return s
		}
	}
	return string(raw)
}

// target is the file a type's rows go to: the --out name when there is one
// type, else one per type beside it (out.csv → out.shop.OrderPlaced.csv).
func (s *csvSink) target(typ string) string {
	if len(s.order) <= 1 {
		return s.dest
	}
	if typ == "" {
		typ = "untyped"
	}
	ext := filepath.Ext(s.dest)
	return strings.TrimSuffix(s.dest, ext) + "." + typ + ext
}

func (s *csvSink) commit() error {
	if len(s.order) == 0 { // nothing matched: the header alone says so
		s.order = []string{""}
		s.types[""] = &csvType{}
	}
	for _, typ := range s.order {
		dest := s.target(typ)
		if err := s.types[typ].finish(dest); err != nil {
			s.abort()
			return fmt.Errorf("writing %s: %w", dest, err)
		}
		s.done = append(s.done, dest)
	}
	return nil
}

// finish writes the header and the spooled rows, padded, to a temporary
// file and renames it to dest.
func (t *csvType) finish(dest string) error {
	var rows io.Reader = strings.NewReader("")
	if t.spool != nil {
		t.w.Flush()
		if err := t.w.Error(); err != nil {
			return err
		}
		if _, err := t.spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		rows = bufio.NewReaderSize(t.spool, 256<<10)
		defer func() { t.spool.Close(); os.Remove(t.spool.Name()); t.spool = nil }()
	}
	f, err := createTemp(dest)
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	defer f.Close()
	bw := bufio.NewWriterSize(f, 256<<10)
	w := csv.NewWriter(bw)
	width := len(csvMeta) + len(t.cols)
	if err := w.Write(append(append([]string{}, csvMeta...), t.cols...)); err != nil {
		return err
	}
	rd := csv.NewReader(rows)
	rd.FieldsPerRecord, rd.ReuseRecord = -1, true
	for {
		row, err := rd.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		for len(row) < width {
			row = append(row, "")
		}
		if err := w.Write(row); err != nil {
			return err
		}
	}
	if w.Flush(); w.Error() != nil {
		return w.Error()
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), dest)
}

func (s *csvSink) abort() {
	for _, t := range s.types {
		if t.spool != nil {
			t.spool.Close()
			os.Remove(t.spool.Name())
		}
	}
	for _, p := range s.done { // a later type failed: no half set of files either
		os.Remove(p)
	}
}

func (s *csvSink) paths() []string { return s.done }

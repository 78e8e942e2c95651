package registry_test

import (
	"context"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema/registry"
)

func TestAuth(t *testing.T) {
	users := map[string]string{"alice": "s3cret:with:colons"}
	_, url := start(t, registry.NewMemoryStore(), registry.WithAuth(users))
	ctx := t.Context()

	for name, opts := range map[string][]sr.ClientOpt{
		"no credentials": nil,
		"bad password":   {sr.BasicAuth("alice", "wrong")},
		"unknown user":   {sr.BasicAuth("bob", "s3cret:with:colons")},
	} {
		cl := must[*sr.Client](t)(sr.NewClient(append(opts, sr.URLs(url))...))
		_, err := cl.Subjects(ctx)
		wantError(t, err, 401, 40101)
		_, err = cl.RegisterSchema(ctx, "s", avro(userV1), -1, -1)
		wantError(t, err, 401, 40101)
		t.Logf("%s: rejected", name)
	}
	resp, _ := do(t, http.MethodGet, url+"/subjects", "", nil)
	if !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("401 without a Basic challenge: %q", resp.Header.Get("WWW-Authenticate"))
	}

	cl := must[*sr.Client](t)(sr.NewClient(sr.URLs(url), sr.BasicAuth("alice", "s3cret:with:colons")))
	register(t, cl, "s", userV1)
}

func TestRequestSizeLimit(t *testing.T) {
	const limit = 512
	cl, url := start(t, registry.NewMemoryStore(), registry.WithMaxRequestBytes(limit))
	big := `{"type":"record","name":"R","doc":"` + strings.Repeat("x", 2*limit) + `","fields":[]}`
	_, err := cl.RegisterSchema(t.Context(), "s", avro(big), -1, -1)
	wantError(t, err, 413, 413)

	// Without a Content-Length (chunked), the limit applies while reading.
	body := strings.NewReader(`{"schema":` + strings.Repeat(" ", 2*limit) + `"\"int\""}`)
	req := must[*http.Request](t)(http.NewRequestWithContext(t.Context(), http.MethodPost, url+"/subjects/s/versions", struct{ *strings.Reader }{body}))
	req.ContentLength = -1
	resp := must[*http.Response](t)(http.DefaultClient.Do(req))
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Fatalf("chunked oversized body: HTTP %d, want 413", resp.StatusCode)
	}

	register(t, cl, "s", userV1) // small requests still pass
}

func TestOptionsAreValidated(t *testing.T) {
	store := registry.NewMemoryStore()
	for name, opts := range map[string][]registry.Option{
		"empty users":   {registry.WithAuth(map[string]string{})},
		"zero limit":    {registry.WithMaxRequestBytes(0)},
		"nil logger":    {registry.WithLogger(nil)},
		"negative size": {registry.WithMaxRequestBytes(-1)},
	} {
		if _, err := registry.New(store, opts...); err == nil {
			t.Errorf("%s: New succeeded, want an error", name)
		}
	}
	if _, err := registry.New(nil); err == nil {
		t.Error("New(nil store) succeeded, want an error")
	}
}

func TestLoadAuthFile(t *testing.T) {
	write := func(content string) string {
		path := filepath.Join(t.TempDir(), "users")
		ok(t, os.WriteFile(path, []byte(content), 0o600))
		return path
	}
	users, err := registry.LoadAuthFile(write("# operators\nalice:pw:with:colons\n\n  bob:hunter2  \r\n#carol:x\n"))
	ok(t, err)
	if len(users) != 2 || users["alice"] != "pw:with:colons" || users["bob"] != "hunter2" {
		t.Fatalf("users = %v", users)
	}

	for content, want := range map[string]string{
		"alice:pw\nbob\n":         "line 2: no ':'",
		":pw\n":                   "line 1: empty user name",
		"al ice:pw\n":             "line 1: user name contains whitespace",
		"alice:\n":                "line 1: empty password",
		"alice:a\n# x\nalice:b\n": "line 3: user \"alice\" defined twice",
		"# nobody here\n\n":       "no users",
	} {
		_, err := registry.LoadAuthFile(write(content))
		if !errors.Is(err, registry.ErrAuthFile) || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadAuthFile(%q) = %v, want ErrAuthFile mentioning %q", content, err, want)
		}
	}
	_, err = registry.LoadAuthFile(filepath.Join(t.TempDir(), "missing"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("LoadAuthFile(missing) = %v, want fs.ErrNotExist", err)
	}
}

// faultyStore fails or panics on demand.
type faultyStore struct {
	registry.Store
	readErr, writeErr error
	panicOnRead       bool
}

func (f *faultyStore) Read(ctx context.Context, from int64) ([]registry.Record, int64, error) {
	if f.panicOnRead {
		panic("store exploded")
	}
	if f.readErr != nil {
		return nil, 0, f.readErr
	}
	return f.Store.Read(ctx, from)
}

func (f *faultyStore) Write(ctx context.Context, at int64, records []registry.Record) error {
	if f.writeErr != nil {
		return f.writeErr
	}
	return f.Store.Write(ctx, at, records)
}

func TestStoreFailuresAre50001(t *testing.T) {
	ctx := t.Context()
	for name, store := range map[string]*faultyStore{
		"read fails":   {readErr: errors.New("broker down")},
		"write fails":  {writeErr: errors.New("broker down")},
		"read panics":  {panicOnRead: true},
		"always raced": {writeErr: registry.ErrConflict},
	} {
		t.Run(name, func(t *testing.T) {
			store.Store = registry.NewMemoryStore()
			cl, _ := start(t, store)
			_, err := cl.RegisterSchema(ctx, "s", avro(userV1), -1, -1)
			wantError(t, err, 500, 50001)
		})
	}
}

func TestClose(t *testing.T) {
	srv := must[*registry.Server](t)(registry.New(registry.NewMemoryStore(), registry.WithLogger(quiet)))
	ok(t, srv.Close())
	rec := serve(srv.Handler(), http.MethodGet, "/subjects", "")
	if rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), `"error_code":50001`) {
		t.Fatalf("request after Close: HTTP %d %s, want 503 with error_code 50001", rec.Code, rec.Body)
	}
}

func TestUnusableLogRecordsAreSkipped(t *testing.T) {
	store := registry.NewMemoryStore()
	junk := []registry.Record{
		{Key: []byte(`not json`), Value: []byte(`{}`)},
		{Key: []byte(`{"keytype":"NOOP","magic":0}`)},
		{Key: []byte(`{"keytype":"SCHEMA","subject":"s","version":1,"magic":1}`), Value: []byte(`{"id":"one"}`)},
		{Key: []byte(`{"keytype":"SCHEMA","subject":"s","version":0,"magic":1}`), Value: []byte(`{}`)},
		{Key: []byte(`{"keytype":"CONFIG","magic":0}`), Value: []byte(`{"compatibilityLevel":"SIDEWAYS"}`)},
		{Key: []byte(`{"keytype":"MODE","magic":0}`), Value: []byte(`[]`)},
	}
	ok(t, store.Write(t.Context(), 0, junk))
	cl, _ := start(t, store)
	if id := register(t, cl, "s", userV1); id != 1 {
		t.Fatalf("first id on a log of junk = %d, want 1", id)
	}
	if got := cl.Compatibility(t.Context())[0]; got.Level != sr.CompatBackward {
		t.Fatalf("global level = %v, want the default BACKWARD", got.Level)
	}
}

// TestIDsSurviveCompaction replays a compacted copy of the log (the last
// record per key, tombstones dropped, as Kafka keeps it) into a new
// server: data and the id high-water mark must survive, even when the
// schema holding the highest id was permanently deleted.
func TestIDsSurviveCompaction(t *testing.T) {
	ctx := t.Context()
	store := registry.NewMemoryStore()
	cl, _ := start(t, store)
	kept := register(t, cl, "kept", userV1)
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "gone")
	gone := register(t, cl, "gone", order)
	register(t, cl, "soft", userV2)
	must[[]int](t)(cl.DeleteSubject(ctx, "soft", sr.SoftDelete))
	for _, how := range []sr.DeleteHow{sr.SoftDelete, sr.HardDelete} {
		must[[]int](t)(cl.DeleteSubject(ctx, "gone", how))
	}

	records, _, err := store.Read(ctx, 0)
	ok(t, err)
	compacted := registry.NewMemoryStore()
	ok(t, compacted.Write(ctx, 0, compact(records)))

	after, _ := start(t, compacted)
	if got := must[sr.SubjectSchema](t)(after.SchemaByVersion(ctx, "kept", 1)); got.ID != kept {
		t.Fatalf("kept/1 after compaction = %+v, want id %d", got, kept)
	}
	if got := must[[]string](t)(after.Subjects(sr.WithParams(ctx, sr.ShowDeleted))); strings.Join(got, ",") != "kept,soft" {
		t.Fatalf("subjects after compaction = %v, want [kept soft]", got)
	}
	if _, err := after.SubjectVersions(ctx, "soft"); err == nil {
		t.Fatal("the soft-deleted subject is live again after compaction")
	}
	wantError(t, after.Compatibility(ctx, "gone")[0].Err, 404, 40408)
	if id := register(t, after, "new", `"string"`); id <= gone {
		t.Fatalf("first id after compaction = %d, want above the deleted id %d", id, gone)
	}
}

// compact keeps the last record of each key, in log order, without
// tombstones.
func compact(records []registry.Record) []registry.Record {
	last := map[string]int{}
	for i, r := range records {
		last[string(r.Key)] = i
	}
	var out []registry.Record
	for i, r := range records {
		if last[string(r.Key)] == i && r.Value != nil {
			out = append(out, r)
		}
	}
	return out
}

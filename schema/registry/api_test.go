package registry_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema/registry"
)

func TestRegisterAndRead(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()

	id1 := register(t, cl, "users", userV1)
	if again := register(t, cl, "users", userV1); again != id1 {
		t.Fatalf("registering the same schema again: id %d, want %d", again, id1)
	}
	id2 := register(t, cl, "users", userV2)
	if id2 == id1 {
		t.Fatalf("a new schema got the id of the old one (%d)", id1)
	}
	if other := register(t, cl, "people", userV1); other != id1 {
		t.Fatalf("the same schema under another subject: id %d, want the global id %d", other, id1)
	}

	if got := must[[]int](t)(cl.SubjectVersions(ctx, "users")); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("versions = %v, want [1 2]", got)
	}
	if got := must[[]string](t)(cl.Subjects(ctx)); !slices.Equal(got, []string{"people", "users"}) {
		t.Fatalf("subjects = %v, want [people users]", got)
	}
	if got := must[[]string](t)(cl.Subjects(sr.WithParams(ctx, sr.SubjectPrefix("us")))); !slices.Equal(got, []string{"users"}) {
		t.Fatalf("subjects with prefix us = %v, want [users]", got)
	}

	for _, tc := range []struct {
		version, wantVersion, wantID int
		want                         string
	}{{1, 1, id1, userV1}, {2, 2, id2, userV2}, {-1, 2, id2, userV2}} {
		got := must[sr.SubjectSchema](t)(cl.SchemaByVersion(ctx, "users", tc.version))
		if got.Subject != "users" || got.Version != tc.wantVersion || got.ID != tc.wantID || !sameJSON(got.Schema.Schema, tc.want) {
			t.Errorf("SchemaByVersion(users, %d) = %+v, want version %d id %d", tc.version, got, tc.wantVersion, tc.wantID)
		}
		text := must[string](t)(cl.SchemaTextByVersion(ctx, "users", tc.version))
		if !sameJSON(text, tc.want) {
			t.Errorf("SchemaTextByVersion(users, %d) = %s, want %s", tc.version, text, tc.want)
		}
	}
	// "latest" is sent as /latest by the client; -1 is accepted in the path too.
	var viaMinusOne sr.SubjectSchema
	if err := cl.Do(ctx, http.MethodGet, "/subjects/users/versions/-1", nil, &viaMinusOne); err != nil || viaMinusOne.Version != 2 {
		t.Fatalf("GET versions/-1 = %+v, %v; want version 2", viaMinusOne, err)
	}

	byID := must[sr.Schema](t)(cl.SchemaByID(ctx, id1))
	if !sameJSON(byID.Schema, userV1) {
		t.Errorf("SchemaByID(%d) = %s", id1, byID.Schema)
	}
	if text := must[string](t)(cl.SchemaTextByID(ctx, id1)); !sameJSON(text, userV1) {
		t.Errorf("SchemaTextByID(%d) = %s", id1, text)
	}
	if got := must[[]string](t)(cl.SubjectsByID(ctx, id1)); !slices.Equal(got, []string{"people", "users"}) {
		t.Errorf("SubjectsByID(%d) = %v, want [people users]", id1, got)
	}
	wantUses := []sr.SubjectVersion{{Subject: "people", Version: 1}, {Subject: "users", Version: 1}}
	if got := must[[]sr.SubjectVersion](t)(cl.SchemaVersionsByID(ctx, id1)); !slices.Equal(got, wantUses) {
		t.Errorf("SchemaVersionsByID(%d) = %v, want %v", id1, got, wantUses)
	}
	if got := must[[]sr.SchemaType](t)(cl.SupportedTypes(ctx)); !slices.Equal(got, []sr.SchemaType{sr.TypeAvro}) {
		t.Errorf("SupportedTypes = %v, want [AVRO]", got)
	}
}

func TestCreateSchemaReturnsFullSubjectSchema(t *testing.T) {
	cl := newClient(t)
	got := must[sr.SubjectSchema](t)(cl.CreateSchema(t.Context(), "orders", avro(order)))
	if got.Subject != "orders" || got.Version != 1 || got.ID != 1 || !sameJSON(got.Schema.Schema, order) {
		t.Fatalf("CreateSchema = %+v", got)
	}
}

func TestWhitespaceAndKeyOrderDoNotCreateVersions(t *testing.T) {
	cl := newClient(t)
	id := register(t, cl, "users", userV1)
	variants := []string{
		"\n  " + strings.ReplaceAll(userV1, ",", " ,\n\t") + "\n",
		`{"fields":[{"type":"long","name":"id"}],"name":"User","type":"record"}`,
	}
	for _, v := range variants {
		if got := register(t, cl, "users", v); got != id {
			t.Fatalf("registering %q: id %d, want %d", v, got, id)
		}
		found := must[sr.SubjectSchema](t)(cl.LookupSchema(t.Context(), "users", avro(v)))
		if found.Version != 1 || found.ID != id {
			t.Fatalf("lookup of %q = %+v, want version 1 id %d", v, found, id)
		}
	}
	if got := must[[]int](t)(cl.SubjectVersions(t.Context(), "users")); !slices.Equal(got, []int{1}) {
		t.Fatalf("versions after re-registering reformatted schemas = %v, want [1]", got)
	}
	// A changed default is a real change.
	withDefault := `{"type":"record","name":"User","fields":[{"name":"id","type":"long","default":0}]}`
	if got := register(t, cl, "users", withDefault); got == id {
		t.Fatalf("a schema that differs in a default got the same id %d", id)
	}
}

func TestLookup(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	id := register(t, cl, "users", userV1)
	register(t, cl, "users", userV2)

	got := must[sr.SubjectSchema](t)(cl.LookupSchema(ctx, "users", avro(userV1)))
	if got.Subject != "users" || got.ID != id || got.Version != 1 || !sameJSON(got.Schema.Schema, userV1) {
		t.Fatalf("LookupSchema = %+v, want users/1 id %d", got, id)
	}
	_, err := cl.LookupSchema(ctx, "users", avro(order))
	wantError(t, err, 404, 40403)
	_, err = cl.LookupSchema(ctx, "nobody", avro(userV1))
	wantError(t, err, 404, 40401)
	_, err = cl.LookupSchema(ctx, "users", avro(`{"type":"nonsense"}`))
	wantError(t, err, 422, 42201)

	// A soft-deleted version is found only with ?deleted=true.
	ok(t, cl.DeleteSchema(ctx, "users", 1, sr.SoftDelete))
	_, err = cl.LookupSchema(ctx, "users", avro(userV1))
	wantError(t, err, 404, 40403)
	if got := must[sr.SubjectSchema](t)(cl.LookupSchema(sr.WithParams(ctx, sr.ShowDeleted), "users", avro(userV1))); got.Version != 1 {
		t.Fatalf("LookupSchema with deleted=true = %+v, want version 1", got)
	}
}

func TestReadErrors(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	id := register(t, cl, "users", userV1)

	_, err := cl.SubjectVersions(ctx, "nobody")
	wantError(t, err, 404, 40401)
	_, err = cl.SchemaByVersion(ctx, "nobody", 1)
	wantError(t, err, 404, 40401)
	_, err = cl.SchemaByVersion(ctx, "users", 2)
	wantError(t, err, 404, 40402)
	_, err = cl.SchemaTextByVersion(ctx, "users", 2)
	wantError(t, err, 404, 40402)
	for _, v := range []string{"0", "-2", "abc", "2147483648"} {
		err := cl.Do(ctx, http.MethodGet, "/subjects/users/versions/"+v, nil, nil)
		wantError(t, err, 422, 42202)
	}
	_, err = cl.SchemaByID(ctx, id+1)
	wantError(t, err, 404, 40403)
	_, err = cl.SchemaTextByID(ctx, id+1)
	wantError(t, err, 404, 40403)
	_, err = cl.SubjectsByID(ctx, id+1)
	wantError(t, err, 404, 40403)
	_, err = cl.SchemaVersionsByID(ctx, id+1)
	wantError(t, err, 404, 40403)
	err = cl.Do(ctx, http.MethodGet, "/schemas/ids/x", nil, nil)
	wantError(t, err, 404, 40403)
	err = cl.Do(ctx, http.MethodGet, "/no/such/path", nil, nil)
	wantError(t, err, 404, 404)
	err = cl.Do(ctx, http.MethodPatch, "/subjects", nil, nil)
	wantError(t, err, 404, 404)
}

func TestRegisterRejects(t *testing.T) {
	cl, url := start(t, registry.NewMemoryStore())
	ctx := t.Context()
	register(t, cl, "users", userV1)

	_, err := cl.RegisterSchema(ctx, "users", avro(userBad), -1, -1)
	wantError(t, err, 409, 409)
	if !strings.Contains(err.Error(), `subject "users"`) {
		t.Errorf("incompatibility message %q does not name the subject", err)
	}

	invalid := []sr.Schema{
		avro(""),
		avro("{not json"),
		avro(`{"type":"record","name":"R"}`), // no fields
		avro(`{"type":"record","name":"R","fields":[{"name":"f","type":"int","default":"x"}]}`), // bad default
		avro(`"int" "long"`),
		{Schema: `"string"`, Type: sr.TypeProtobuf},
		{Schema: `"string"`, Type: sr.TypeJSON},
		{Schema: `"string"`, References: []sr.SchemaReference{{Name: "x", Subject: "y", Version: 1}}},
		{Schema: `"string"`, SchemaMetadata: &sr.SchemaMetadata{Properties: map[string]string{"owner": "me"}}},
	}
	for _, s := range invalid {
		_, err := cl.RegisterSchema(ctx, "other", s, -1, -1)
		wantError(t, err, 422, 42201)
	}

	resp, body := do(t, http.MethodPost, url+"/subjects/users/versions", "application/json", strings.NewReader(`{"schema":`))
	if resp.StatusCode != 400 || !strings.Contains(string(body), `"error_code":400`) {
		t.Errorf("malformed JSON body: HTTP %d %s, want 400 with error_code 400", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodPost, url+"/subjects/users/versions", "text/plain", strings.NewReader(`{"schema":"\"int\""}`))
	if resp.StatusCode != 415 || !strings.Contains(string(body), `"error_code":415`) {
		t.Errorf("text/plain body: HTTP %d %s, want 415", resp.StatusCode, body)
	}
	resp, body = do(t, http.MethodPost, url+"/subjects/plain/versions", "application/json; charset=utf-8", strings.NewReader(`{"schema":"\"int\""}`))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.schemaregistry.v1+json" {
		t.Errorf("application/json body: HTTP %d %s (content type %q), want 200", resp.StatusCode, body, resp.Header.Get("Content-Type"))
	}
}

func TestRegisterAfterSoftDeleteKeepsID(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	id := register(t, cl, "users", userV1)
	must[[]int](t)(cl.DeleteSubject(ctx, "users", sr.SoftDelete))
	if again := register(t, cl, "users", userV1); again != id {
		t.Fatalf("re-registering a soft-deleted schema: id %d, want %d", again, id)
	}
	if got := must[[]int](t)(cl.SubjectVersions(ctx, "users")); !slices.Equal(got, []int{2}) {
		t.Fatalf("versions = %v, want [2] (version 1 stays deleted)", got)
	}
}

func TestDeleteSubject(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	id := register(t, cl, "users", userV1)
	register(t, cl, "users", userV2)
	register(t, cl, "other", order)
	deleted := sr.WithParams(ctx, sr.ShowDeleted)

	_, err := cl.DeleteSubject(ctx, "nobody", sr.SoftDelete)
	wantError(t, err, 404, 40401)
	_, err = cl.DeleteSubject(ctx, "users", sr.HardDelete)
	wantError(t, err, 404, 40405)

	if got := must[[]int](t)(cl.DeleteSubject(ctx, "users", sr.SoftDelete)); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("soft delete returned %v, want [1 2]", got)
	}
	_, err = cl.DeleteSubject(ctx, "users", sr.SoftDelete)
	wantError(t, err, 404, 40404)
	if got := must[[]string](t)(cl.Subjects(ctx)); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("subjects after soft delete = %v, want [other]", got)
	}
	if got := must[[]string](t)(cl.Subjects(deleted)); !slices.Equal(got, []string{"other", "users"}) {
		t.Fatalf("subjects?deleted=true = %v, want [other users]", got)
	}
	_, err = cl.SubjectVersions(ctx, "users")
	wantError(t, err, 404, 40401)
	if got := must[[]int](t)(cl.SubjectVersions(deleted, "users")); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("versions?deleted=true = %v, want [1 2]", got)
	}
	_, err = cl.SchemaByVersion(ctx, "users", 1)
	wantError(t, err, 404, 40401)
	if got := must[sr.SubjectSchema](t)(cl.SchemaByVersion(deleted, "users", 1)); got.ID != id {
		t.Fatalf("users/1?deleted=true = %+v, want id %d", got, id)
	}
	// A soft-deleted schema is still found by id.
	must[sr.Schema](t)(cl.SchemaByID(ctx, id))
	if got := must[[]string](t)(cl.SubjectsByID(ctx, id)); len(got) != 0 {
		t.Fatalf("SubjectsByID of a soft-deleted schema = %v, want []", got)
	}
	if got := must[[]string](t)(cl.SubjectsByID(deleted, id)); !slices.Equal(got, []string{"users"}) {
		t.Fatalf("SubjectsByID?deleted=true = %v, want [users]", got)
	}

	if got := must[[]int](t)(cl.DeleteSubject(ctx, "users", sr.HardDelete)); !slices.Equal(got, []int{1, 2}) {
		t.Fatalf("hard delete returned %v, want [1 2]", got)
	}
	if got := must[[]string](t)(cl.Subjects(deleted)); !slices.Equal(got, []string{"other"}) {
		t.Fatalf("subjects?deleted=true after hard delete = %v, want [other]", got)
	}
	_, err = cl.DeleteSubject(ctx, "users", sr.HardDelete)
	wantError(t, err, 404, 40401)
	_, err = cl.SchemaByID(ctx, id)
	wantError(t, err, 404, 40403)

	// The subject starts over at version 1, with a new id: ids are never reused.
	if again := register(t, cl, "users", userV1); again == id {
		t.Fatalf("re-registering a hard-deleted schema reused id %d", id)
	}
	if got := must[[]int](t)(cl.SubjectVersions(ctx, "users")); !slices.Equal(got, []int{1}) {
		t.Fatalf("versions after re-creating the subject = %v, want [1]", got)
	}
}

func TestDeleteVersion(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	register(t, cl, "users", userV1)
	register(t, cl, "users", userV2)
	deleted := sr.WithParams(ctx, sr.ShowDeleted)

	wantError(t, cl.DeleteSchema(ctx, "nobody", 1, sr.SoftDelete), 404, 40401)
	wantError(t, cl.DeleteSchema(ctx, "users", 3, sr.SoftDelete), 404, 40402)
	wantError(t, cl.Do(ctx, http.MethodDelete, "/subjects/users/versions/0", nil, nil), 422, 42202)
	wantError(t, cl.DeleteSchema(ctx, "users", 1, sr.HardDelete), 404, 40407)

	var version int
	if err := cl.Do(ctx, http.MethodDelete, "/subjects/users/versions/1", nil, &version); err != nil || version != 1 {
		t.Fatalf("soft delete of version 1 = %d, %v; want 1", version, err)
	}
	wantError(t, cl.DeleteSchema(ctx, "users", 1, sr.SoftDelete), 404, 40406)
	_, err := cl.SchemaByVersion(ctx, "users", 1)
	wantError(t, err, 404, 40402)
	must[sr.SubjectSchema](t)(cl.SchemaByVersion(deleted, "users", 1))
	if got := must[[]int](t)(cl.SubjectVersions(ctx, "users")); !slices.Equal(got, []int{2}) {
		t.Fatalf("versions = %v, want [2]", got)
	}

	if err := cl.DeleteSchema(ctx, "users", 1, sr.HardDelete); err != nil {
		t.Fatalf("hard delete of soft-deleted version 1: %v", err)
	}
	wantError(t, cl.DeleteSchema(ctx, "users", 1, sr.HardDelete), 404, 40402)
	_, err = cl.SchemaByVersion(deleted, "users", 1)
	wantError(t, err, 404, 40402)

	// "latest" soft-deletes the newest live version, then there is none.
	if err := cl.Do(ctx, http.MethodDelete, "/subjects/users/versions/latest", nil, &version); err != nil || version != 2 {
		t.Fatalf("soft delete of latest = %d, %v; want 2", version, err)
	}
	wantError(t, cl.DeleteSchema(ctx, "users", -1, sr.SoftDelete), 404, 40406)
	if err := cl.DeleteSchema(ctx, "users", -1, sr.HardDelete); err != nil {
		t.Fatalf("hard delete of latest: %v", err)
	}
	_, err = cl.SubjectVersions(deleted, "users")
	wantError(t, err, 404, 40401)
}

func TestConfig(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	level := func(subject string) sr.CompatibilityResult { return cl.Compatibility(ctx, subject)[0] }
	if got := level(""); got.Err != nil || got.Level != sr.CompatBackward {
		t.Fatalf("default global level = %v, %v; want BACKWARD", got.Level, got.Err)
	}
	set := cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatFull})[0]
	if set.Err != nil || set.Level != sr.CompatFull {
		t.Fatalf("SetCompatibility(FULL) = %v, %v", set.Level, set.Err)
	}
	if got := level(""); got.Level != sr.CompatFull {
		t.Fatalf("global level = %v, want FULL", got.Level)
	}
	wantError(t, level("users").Err, 404, 40408)
	if got := cl.Compatibility(sr.WithParams(ctx, sr.DefaultToGlobal), "users")[0]; got.Err != nil || got.Level != sr.CompatFull {
		t.Fatalf("users level with defaultToGlobal = %v, %v; want FULL", got.Level, got.Err)
	}

	set = cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatNone}, "users")[0]
	if set.Err != nil || set.Level != sr.CompatNone {
		t.Fatalf("SetCompatibility(users, NONE) = %v, %v", set.Level, set.Err)
	}
	if got := level("users"); got.Level != sr.CompatNone {
		t.Fatalf("users level = %v, want NONE", got.Level)
	}
	// NONE lets an incompatible schema in.
	register(t, cl, "users", userV1)
	register(t, cl, "users", userBad)

	if got := cl.ResetCompatibility(ctx, "users")[0]; got.Err != nil || got.Level != sr.CompatNone {
		t.Fatalf("ResetCompatibility(users) = %v, %v; want the removed NONE", got.Level, got.Err)
	}
	wantError(t, cl.ResetCompatibility(ctx, "users")[0].Err, 404, 40401)
	if got := cl.ResetCompatibility(ctx)[0]; got.Err != nil || got.Level != sr.CompatFull {
		t.Fatalf("ResetCompatibility(global) = %v, %v; want the removed FULL", got.Level, got.Err)
	}
	if got := level(""); got.Level != sr.CompatBackward {
		t.Fatalf("global level after reset = %v, want BACKWARD", got.Level)
	}

	for _, body := range []string{`{"compatibility":"SIDEWAYS"}`, `{}`} {
		for _, path := range []string{"/config", "/config/users"} {
			wantError(t, cl.Do(ctx, http.MethodPut, path, rawBody(body), nil), 422, 42203)
		}
	}
	var echoed map[string]string
	if err := cl.Do(ctx, http.MethodPut, "/config", rawBody(`{"compatibility":"forward_transitive"}`), &echoed); err != nil || echoed["compatibility"] != "FORWARD_TRANSITIVE" {
		t.Fatalf("PUT /config in lower case = %v, %v", echoed, err)
	}
}

func TestMode(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	mode := func(subject string) sr.ModeResult { return cl.Mode(ctx, subject)[0] }
	if got := mode(""); got.Err != nil || got.Mode != sr.ModeReadWrite {
		t.Fatalf("default global mode = %v, %v; want READWRITE", got.Mode, got.Err)
	}
	id := register(t, cl, "users", userV1)

	if got := cl.SetMode(ctx, sr.ModeReadOnly, "users")[0]; got.Err != nil || got.Mode != sr.ModeReadOnly {
		t.Fatalf("SetMode(users, READONLY) = %v, %v", got.Mode, got.Err)
	}
	if got := mode("users"); got.Mode != sr.ModeReadOnly {
		t.Fatalf("users mode = %v, want READONLY", got.Mode)
	}
	wantError(t, mode("other").Err, 404, 40409)
	if got := cl.Mode(sr.WithParams(ctx, sr.DefaultToGlobal), "other")[0]; got.Err != nil || got.Mode != sr.ModeReadWrite {
		t.Fatalf("other mode with defaultToGlobal = %v, %v", got.Mode, got.Err)
	}
	_, err := cl.RegisterSchema(ctx, "users", avro(userV2), -1, -1)
	wantError(t, err, 422, 42205)
	if again := register(t, cl, "users", userV1); again != id {
		t.Fatalf("re-registering an existing schema in READONLY: id %d, want %d", again, id)
	}
	_, err = cl.DeleteSubject(ctx, "users", sr.SoftDelete)
	wantError(t, err, 422, 42205)
	wantError(t, cl.DeleteSchema(ctx, "users", 1, sr.SoftDelete), 422, 42205)
	register(t, cl, "other", userV2) // the global mode is still READWRITE

	if got := cl.ResetMode(ctx, "users")[0]; got.Err != nil || got.Mode != sr.ModeReadOnly {
		t.Fatalf("ResetMode(users) = %v, %v; want the removed READONLY", got.Mode, got.Err)
	}
	wantError(t, cl.ResetMode(ctx, "users")[0].Err, 404, 40401)
	wantError(t, cl.Do(ctx, http.MethodPut, "/mode", rawBody(`{"mode":"SOMETIMES"}`), nil), 422, 42204)
	wantError(t, cl.Do(ctx, http.MethodPut, "/mode/users", rawBody(`{}`), nil), 422, 42204)

	// The global read-only mode applies to every subject.
	cl.SetMode(ctx, sr.ModeReadOnly)
	_, err = cl.RegisterSchema(ctx, "new", avro(order), -1, -1)
	wantError(t, err, 422, 42205)
	if got := cl.ResetMode(ctx)[0]; got.Err != nil || got.Mode != sr.ModeReadOnly {
		t.Fatalf("ResetMode(global) = %v, %v", got.Mode, got.Err)
	}
	register(t, cl, "new", order)
}

func TestImportMode(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	register(t, cl, "existing", userV1)

	_, err := cl.RegisterSchema(ctx, "imported", avro(order), 100, 5)
	wantError(t, err, 422, 42205)                                   // explicit ids need IMPORT mode
	wantError(t, cl.SetMode(ctx, sr.ModeImport)[0].Err, 422, 42205) // subjects exist
	if got := cl.SetMode(sr.WithParams(ctx, sr.Force), sr.ModeImport)[0]; got.Err != nil {
		t.Fatalf("SetMode(IMPORT, force): %v", got.Err)
	}

	if id := must[int](t)(cl.RegisterSchema(ctx, "imported", avro(order), 100, 5)); id != 100 {
		t.Fatalf("imported id = %d, want 100", id)
	}
	got := must[sr.SubjectSchema](t)(cl.SchemaByVersion(ctx, "imported", 5))
	if got.ID != 100 || got.Version != 5 {
		t.Fatalf("imported/5 = %+v, want id 100", got)
	}
	_, err = cl.RegisterSchema(ctx, "imported", avro(userV2), 100, 6)
	wantError(t, err, 422, 42205) // id 100 is another schema
	_, err = cl.RegisterSchema(ctx, "imported", avro(userV2), 101, 5)
	wantError(t, err, 422, 42205) // version 5 exists
	_, err = cl.RegisterSchema(ctx, "imported", avro(userV2), -1, -1)
	wantError(t, err, 422, 42205) // IMPORT needs an id
	// IMPORT skips compatibility checks.
	must[int](t)(cl.RegisterSchema(ctx, "imported", avro(userBad), 50, 6))

	cl.SetMode(ctx, sr.ModeReadWrite)
	if id := register(t, cl, "fresh", `"string"`); id != 101 {
		t.Fatalf("first id after importing id 100 = %d, want 101", id)
	}
	// A subject may be switched to IMPORT while it is empty.
	if got := cl.SetMode(ctx, sr.ModeImport, "empty")[0]; got.Err != nil {
		t.Fatalf("SetMode(empty, IMPORT): %v", got.Err)
	}
	wantError(t, cl.SetMode(ctx, sr.ModeImport, "fresh")[0].Err, 422, 42205)
}

func TestCompatibilityEndpoint(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	verbose := sr.WithParams(ctx, sr.Verbose)

	// No versions yet: anything is compatible with "latest" and with all.
	for _, v := range []int{-1, -2} {
		if got := must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(ctx, "users", v, avro(userV1))); !got.Is {
			t.Fatalf("check against version %d of an empty subject = %+v, want compatible", v, got)
		}
	}
	register(t, cl, "users", userV1)

	for _, v := range []int{1, -1, -2} {
		got := must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(ctx, "users", v, avro(userBad)))
		if got.Is || got.Messages != nil {
			t.Errorf("check of an incompatible schema against %d = %+v, want incompatible without messages", v, got)
		}
		got = must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(verbose, "users", v, avro(userBad)))
		if got.Is || len(got.Messages) == 0 || !strings.Contains(strings.Join(got.Messages, " "), "age") {
			t.Errorf("verbose check against %d = %+v, want messages naming the field", v, got)
		}
		got = must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(verbose, "users", v, avro(userV2)))
		if !got.Is || got.Messages == nil || len(got.Messages) != 0 {
			t.Errorf("verbose check of a compatible schema against %d = %+v, want compatible with empty messages", v, got)
		}
	}

	_, err := cl.CheckCompatibility(ctx, "users", 7, avro(userV2))
	wantError(t, err, 404, 40402)
	wantError(t, cl.Do(ctx, http.MethodPost, "/compatibility/subjects/users/versions/zero", avro(userV2), nil), 422, 42202)
	_, err = cl.CheckCompatibility(ctx, "users", -1, avro(`{"type":"nonsense"}`))
	wantError(t, err, 422, 42201)
	got := must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(verbose, "users", -1, avro(`{"type":"nonsense"}`)))
	if got.Is || len(got.Messages) != 1 {
		t.Fatalf("verbose check of an invalid schema = %+v, want incompatible with its error", got)
	}

	// The subject's level decides the direction: under FORWARD the old
	// schema must read the new one, which a removed required field breaks.
	cl.SetCompatibility(ctx, sr.SetCompatibility{Level: sr.CompatForward}, "users")
	empty := `{"type":"record","name":"User","fields":[]}`
	if got := must[sr.CheckCompatibilityResult](t)(cl.CheckCompatibility(ctx, "users", 1, avro(empty))); got.Is {
		t.Fatal("FORWARD check of a schema dropping a required field = compatible, want incompatible")
	}
}

func TestTransitiveRegistration(t *testing.T) {
	// v3 reads v2's data (both have b) but not v1's (no b, no default).
	v1 := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}`
	v2 := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string","default":"x"}]}`
	v3 := `{"type":"record","name":"R","fields":[{"name":"a","type":"string"},{"name":"b","type":"string"}]}`
	for _, tc := range []struct {
		level sr.CompatibilityLevel
		ok    bool
	}{{sr.CompatBackward, true}, {sr.CompatBackwardTransitive, false}, {sr.CompatFull, true}, {sr.CompatFullTransitive, false}} {
		t.Run(tc.level.String(), func(t *testing.T) {
			cl := newClient(t)
			cl.SetCompatibility(t.Context(), sr.SetCompatibility{Level: tc.level})
			register(t, cl, "r", v1)
			register(t, cl, "r", v2)
			_, err := cl.RegisterSchema(t.Context(), "r", avro(v3), -1, -1)
			if tc.ok && err != nil {
				t.Fatalf("v3 under %v: %v, want registered", tc.level, err)
			}
			if !tc.ok {
				wantError(t, err, 409, 409)
				// Soft-deleted versions are not checked.
				ok(t, cl.DeleteSchema(t.Context(), "r", 1, sr.SoftDelete))
				register(t, cl, "r", v3)
			}
		})
	}
}

func TestSubjectNamesAreEscapedPathSegments(t *testing.T) {
	cl := newClient(t)
	names := []string{"orders/v1-value", "with space", "ünïcode", "a%2Fb", "x?y#z"}
	for _, name := range names {
		id := register(t, cl, name, userV1)
		if got := must[sr.SubjectSchema](t)(cl.SchemaByVersion(t.Context(), name, 1)); got.Subject != name || got.ID != id {
			t.Errorf("SchemaByVersion(%q, 1) = %+v", name, got)
		}
	}
	got := must[[]string](t)(cl.Subjects(t.Context()))
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("subjects = %q, want %q", got, names)
	}
}

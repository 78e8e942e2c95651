package registry_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/sr"

	"github.com/recq/recq/schema/registry"
)

// schemaRef names a listed schema by subject and version.
type schemaRef struct {
	Subject string
	Version int
}

func refs(ss []sr.SubjectSchema) []schemaRef {
	out := []schemaRef{}
	for _, s := range ss {
		out = append(out, schemaRef{s.Subject, s.Version})
	}
	return out
}

// GET /schemas lists every version of every subject (by subject, then
// version) with its id and text, as Confluent does, for the sr client's
// AllSchemas and its params.
func TestListSchemas(t *testing.T) {
	cl, url := start(t, registry.NewMemoryStore())
	ctx := t.Context()
	u1 := register(t, cl, "users", userV1)
	u2 := register(t, cl, "users", userV2)
	register(t, cl, "people", userV1)
	o1 := register(t, cl, "shop-orders", order)
	if _, err := cl.DeleteSubject(ctx, "people", sr.SoftDelete); err != nil {
		t.Fatal(err)
	}

	all := must[[]sr.SubjectSchema](t)(cl.AllSchemas(ctx))
	want := []schemaRef{{"shop-orders", 1}, {"users", 1}, {"users", 2}}
	if !slices.Equal(refs(all), want) {
		t.Fatalf("AllSchemas = %v, want %v (the soft-deleted subject left out)", refs(all), want)
	}
	for i, tc := range []struct {
		id   int
		text string
	}{{o1, order}, {u1, userV1}, {u2, userV2}} {
		if all[i].ID != tc.id || !sameJSON(all[i].Schema.Schema, tc.text) || all[i].Type != sr.TypeAvro {
			t.Errorf("AllSchemas[%d] = %+v, want id %d, type AVRO and schema %s", i, all[i], tc.id, tc.text)
		}
	}

	for _, tc := range []struct {
		name   string
		params []sr.Param
		want   []schemaRef
	}{
		{"prefix", []sr.Param{sr.SubjectPrefix("us")}, []schemaRef{{"users", 1}, {"users", 2}}},
		{"prefix matching nothing", []sr.Param{sr.SubjectPrefix("nobody")}, []schemaRef{}},
		{"deleted", []sr.Param{sr.ShowDeleted}, []schemaRef{{"people", 1}, {"shop-orders", 1}, {"users", 1}, {"users", 2}}},
		{"latest only", []sr.Param{sr.LatestOnly}, []schemaRef{{"shop-orders", 1}, {"users", 2}}},
		{"latest only with prefix", []sr.Param{sr.LatestOnly, sr.SubjectPrefix("users")}, []schemaRef{{"users", 2}}},
		{"offset and limit", []sr.Param{sr.Offset(1), sr.Limit(1)}, []schemaRef{{"users", 1}}},
		{"offset past the end", []sr.Param{sr.Offset(9)}, []schemaRef{}},
		{"every context", []sr.Param{sr.SubjectPrefix(":*:")}, want},
		{"default context qualified", []sr.Param{sr.SubjectPrefix(":.:us")}, []schemaRef{{"users", 1}, {"users", 2}}},
		{"another context", []sr.Param{sr.SubjectPrefix(":.other:")}, []schemaRef{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := must[[]sr.SubjectSchema](t)(cl.AllSchemas(sr.WithParams(ctx, tc.params...)))
			if !slices.Equal(refs(got), tc.want) {
				t.Fatalf("AllSchemas = %v, want %v", refs(got), tc.want)
			}
		})
	}

	// The wire form: Confluent's field names, and [] rather than null.
	resp, body := do(t, http.MethodGet, url+"/schemas?subjectPrefix=shop", "", nil)
	var raw []map[string]any
	if err := json.Unmarshal(body, &raw); err != nil || resp.StatusCode != 200 || len(raw) != 1 {
		t.Fatalf("GET /schemas: %d %s", resp.StatusCode, body)
	}
	for _, k := range []string{"subject", "version", "id", "schemaType", "schema"} {
		if _, ok := raw[0][k]; !ok {
			t.Errorf("GET /schemas entry %s lacks %q", body, k)
		}
	}
	if _, body := do(t, http.MethodGet, url+"/schemas?subjectPrefix=nobody", "", nil); string(body) != "[]" {
		t.Errorf("GET /schemas matching nothing = %s, want []", body)
	}
	_, err := cl.AllSchemas(sr.WithParams(ctx, sr.RawParams(map[string][]string{"limit": {"ten"}})))
	wantError(t, err, 400, 400)
}

// GET /subjects reads Confluent's context forms of subjectPrefix too.
func TestListSubjectsContextPrefixes(t *testing.T) {
	cl := newClient(t)
	ctx := t.Context()
	register(t, cl, "users", userV1)
	register(t, cl, "people", userV1)
	for prefix, want := range map[string][]string{
		":*:":      {"people", "users"},
		":.:":      {"people", "users"},
		":.:us":    {"users"},
		":.other:": {},
	} {
		got := must[[]string](t)(cl.Subjects(sr.WithParams(ctx, sr.SubjectPrefix(prefix))))
		if !slices.Equal(got, want) {
			t.Errorf("Subjects(subjectPrefix=%s) = %v, want %v", prefix, got, want)
		}
	}
}

// GET .../referencedby answers the ids of schemas referencing the version:
// none, since references are refused at registration. Missing subjects and
// versions are Confluent's 40401 and 40402.
func TestReferencedBy(t *testing.T) {
	cl, base := start(t, registry.NewMemoryStore())
	ctx := t.Context()
	register(t, cl, "users", userV1)
	register(t, cl, "users", userV2)

	for _, v := range []int{1, 2, -1} {
		got, err := cl.SchemaReferences(ctx, "users", v)
		if err != nil || len(got) != 0 {
			t.Fatalf("SchemaReferences(users, %d) = %v, %v; want none", v, got, err)
		}
	}
	if resp, body := do(t, http.MethodGet, base+"/subjects/users/versions/latest/referencedby", "", nil); resp.StatusCode != 200 || string(body) != "[]" {
		t.Fatalf("GET referencedby = %d %s, want 200 []", resp.StatusCode, body)
	}

	_, err := cl.SchemaReferences(ctx, "nobody", 1)
	wantError(t, err, 404, 40401)
	_, err = cl.SchemaReferences(ctx, "users", 9)
	wantError(t, err, 404, 40402)
	_, body := do(t, http.MethodGet, base+"/subjects/users/versions/x/referencedby", "", nil)
	if !json.Valid(body) || !strings.Contains(string(body), "42202") {
		t.Fatalf("GET referencedby of version x = %s, want error 42202", body)
	}

	ok(t, cl.DeleteSchema(ctx, "users", 1, sr.SoftDelete))
	_, err = cl.SchemaReferences(ctx, "users", 1)
	wantError(t, err, 404, 40402)
	if got, err := cl.SchemaReferences(sr.WithParams(ctx, sr.ShowDeleted), "users", 1); err != nil || len(got) != 0 {
		t.Fatalf("SchemaReferences(users, 1, deleted) = %v, %v; want none", got, err)
	}
	// The subject's path segment is escaped like every other.
	register(t, cl, "a/b", userV1)
	if resp, body := do(t, http.MethodGet, base+"/subjects/"+url.PathEscape("a/b")+"/versions/1/referencedby", "", nil); resp.StatusCode != 200 || string(body) != "[]" {
		t.Fatalf("GET referencedby of a/b = %d %s, want 200 []", resp.StatusCode, body)
	}
}

// GET /contexts answers the default context, the only one.
func TestContexts(t *testing.T) {
	cl, base := start(t, registry.NewMemoryStore())
	ctx := t.Context()
	if got := must[[]string](t)(cl.Contexts(ctx)); !slices.Equal(got, []string{"."}) {
		t.Fatalf("Contexts = %v, want [.]", got)
	}
	if got := must[[]string](t)(cl.Contexts(sr.WithParams(ctx, sr.ContextPrefix(".staging")))); len(got) != 0 {
		t.Fatalf("Contexts(prefix .staging) = %v, want none", got)
	}
	if resp, body := do(t, http.MethodGet, base+"/contexts", "", nil); resp.StatusCode != 200 || string(body) != `["."]` {
		t.Fatalf("GET /contexts = %d %s, want 200 [\".\"]", resp.StatusCode, body)
	}
}

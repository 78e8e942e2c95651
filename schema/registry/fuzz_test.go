package registry_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/recq/recq/schema/registry"
)

// FuzzRegister posts arbitrary bodies to the register endpoint of a
// registry that already holds a schema (so compatibility checks run): the
// answer must be JSON, a success with an id or a client error, never a
// server error or a panic.
func FuzzRegister(f *testing.F) {
	for _, seed := range []string{
		`{"schema":"\"int\""}`,
		`{"schema":` + jsonString(userV1) + `}`,
		`{"schema":` + jsonString(userV2) + `,"schemaType":"AVRO"}`,
		`{"schema":` + jsonString(userBad) + `}`,
		`{"schema":` + jsonString(order) + `,"id":7,"version":3}`,
		`{"schema":"{\"type\":\"enum\",\"name\":\"E\",\"symbols\":[\"A\",\"A\"]}"}`,
		`{"schema":"[\"null\",\"null\"]"}`,
		`{"schema":"{\"type\":\"fixed\",\"name\":\"F\",\"size\":-1}"}`,
		`{"schema":"{\"type\":\"record\",\"name\":\"L\",\"fields\":[{\"name\":\"next\",\"type\":[\"null\",\"L\"]}]}"}`,
		`{"schema":"\"string\"","references":[{"name":"a","subject":"b","version":1}]}`,
		`{"schema":"\"string\"","schemaType":"PROTOBUF"}`,
		`{"schema":1}`, `{}`, `[]`, `null`, ``, `{"schema":"`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, body string) {
		srv, err := registry.New(registry.NewMemoryStore(), registry.WithLogger(quiet))
		if err != nil {
			t.Fatal(err)
		}
		defer srv.Close()
		h := srv.Handler()
		if rec := serve(h, http.MethodPost, "/subjects/s/versions", `{"schema":`+jsonString(userV1)+`}`); rec.Code != http.StatusOK {
			t.Fatalf("seeding the subject: HTTP %d %s", rec.Code, rec.Body)
		}
		rec := serve(h, http.MethodPost, "/subjects/s/versions", body)
		var answer struct {
			ID        int    `json:"id"`
			ErrorCode int    `json:"error_code"`
			Message   string `json:"message"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &answer); err != nil {
			t.Fatalf("HTTP %d with a body that is not JSON: %q", rec.Code, rec.Body)
		}
		switch {
		case rec.Code == http.StatusOK && answer.ID <= 0:
			t.Fatalf("success without an id: %s", rec.Body)
		case rec.Code >= 500:
			t.Fatalf("server error for body %q: HTTP %d %s", body, rec.Code, rec.Body)
		case rec.Code != http.StatusOK && (answer.ErrorCode == 0 || answer.Message == ""):
			t.Fatalf("HTTP %d without error JSON: %s", rec.Code, rec.Body)
		}
	})
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

package registry

import (
	"net/http"
	"strconv"
)

// schemaByID looks up the schema id in the request path for fn. An id is
// found while any version, even a soft-deleted one, uses it.
func (s *Server) schemaByID(r *http.Request, fn func(st *state, id int, text string) any) (any, error) {
	raw := r.PathValue("id")
	id, err := strconv.Atoi(raw)
	if err != nil {
		return nil, errSchemaIDNotFound(raw)
	}
	return s.view(r.Context(), func(st *state) (any, error) {
		schema := st.schemas[id]
		if schema == nil {
			return nil, errSchemaIDNotFound(raw)
		}
		return fn(st, id, schema.text), nil
	})
}

// GET /schemas/ids/{id}
func (s *Server) getSchemaByID(r *http.Request) (any, error) {
	return s.schemaByID(r, func(_ *state, _ int, text string) any {
		return struct {
			Schema string `json:"schema"`
		}{text}
	})
}

// GET /schemas/ids/{id}/schema
func (s *Server) getSchemaTextByID(r *http.Request) (any, error) {
	return s.schemaByID(r, func(_ *state, _ int, text string) any { return rawJSON(text) })
}

// GET /schemas/ids/{id}/subjects
func (s *Server) getSubjectsByID(r *http.Request) (any, error) {
	return s.schemaByID(r, func(st *state, id int, _ string) any {
		subjects := []string{}
		for _, v := range st.usersOf(id, flag(r, "deleted")) {
			if len(subjects) == 0 || subjects[len(subjects)-1] != v.subject {
				subjects = append(subjects, v.subject)
			}
		}
		return subjects
	})
}

// subjectVersion names one version of a subject.
type subjectVersion struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
}

// GET /schemas/ids/{id}/versions
func (s *Server) getVersionsByID(r *http.Request) (any, error) {
	return s.schemaByID(r, func(st *state, id int, _ string) any {
		versions := []subjectVersion{}
		for _, v := range st.usersOf(id, flag(r, "deleted")) {
			versions = append(versions, subjectVersion{Subject: v.subject, Version: v.number})
		}
		return versions
	})
}

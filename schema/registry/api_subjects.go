package registry

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// schemaRequest is the body of register, lookup and compatibility
// requests. Unknown fields are ignored, as Confluent ignores them.
type schemaRequest struct {
	Schema     string            `json:"schema"`
	SchemaType string            `json:"schemaType"`
	References []json.RawMessage `json:"references"`
	Metadata   json.RawMessage   `json:"metadata"`
	RuleSet    json.RawMessage   `json:"ruleSet"`
	// Version and ID, when positive, ask for a specific version and id
	// (IMPORT mode only).
	Version int `json:"version"`
	ID      int `json:"id"`
}

// parse validates the request's schema. Features the registry does not
// implement are rejected rather than silently dropped.
func (req *schemaRequest) parse() (*parsedSchema, error) {
	if req.SchemaType != "" && !strings.EqualFold(req.SchemaType, "AVRO") {
		return nil, apiErrorf(codeInvalidSchema, "Invalid schema type %s: this registry supports AVRO only", req.SchemaType)
	}
	if len(req.References) > 0 {
		return nil, apiErrorf(codeInvalidSchema, "Invalid schema: schema references are not supported by this registry; inline the referenced types")
	}
	if !emptyJSON(req.Metadata) || !emptyJSON(req.RuleSet) {
		return nil, apiErrorf(codeInvalidSchema, "Invalid schema: metadata and rule sets are not supported by this registry")
	}
	ps, err := parseSchema(req.Schema)
	if err != nil {
		return nil, apiErrorf(codeInvalidSchema, "Invalid schema: %v", err)
	}
	return ps, nil
}

// emptyJSON reports whether an optional JSON field is absent, null or {}.
func emptyJSON(raw json.RawMessage) bool {
	t := string(bytes.TrimSpace(raw))
	return t == "" || t == "null" || t == "{}"
}

// subjectSchema is a version of a subject as the REST API shows it.
type subjectSchema struct {
	Subject string `json:"subject"`
	Version int    `json:"version"`
	ID      int    `json:"id"`
	Schema  string `json:"schema"`
}

func (st *state) show(v *version) subjectSchema {
	return subjectSchema{Subject: v.subject, Version: v.number, ID: v.id, Schema: st.schemas[v.id].text}
}

// GET /subjects
func (s *Server) listSubjects(r *http.Request) (any, error) {
	prefix, ok := subjectPrefix(r)
	return s.view(r.Context(), func(st *state) (any, error) {
		names := slices.DeleteFunc(st.subjectNames(flag(r, "deleted")), func(n string) bool {
			return !ok || !strings.HasPrefix(n, prefix)
		})
		return names, nil
	})
}

// GET /subjects/{subject}/versions
func (s *Server) listVersions(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	return s.view(r.Context(), func(st *state) (any, error) {
		vs := st.versions(subject, flag(r, "deleted"))
		if len(vs) == 0 {
			return nil, errSubjectNotFound(subject)
		}
		return numbers(vs), nil
	})
}

// GET /subjects/{subject}/versions/{version}
func (s *Server) getVersion(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	number, err := parseVersion(r.PathValue("version"))
	if err != nil {
		return nil, err
	}
	return s.view(r.Context(), func(st *state) (any, error) {
		v, err := st.find(subject, number, flag(r, "deleted"))
		if err != nil {
			return nil, err
		}
		return st.show(v), nil
	})
}

// GET /subjects/{subject}/versions/{version}/schema
func (s *Server) getVersionSchema(r *http.Request) (any, error) {
	v, err := s.getVersion(r)
	if err != nil {
		return nil, err
	}
	return rawJSON(v.(subjectSchema).Schema), nil
}

// find returns a version of subject ("latest" being latestVersion) as GET
// shows it: 40401 if the subject has no versions, 40402 if it lacks this one.
// Soft-deleted versions count only if withDeleted.
func (st *state) find(subject string, number int, withDeleted bool) (*version, error) {
	latest := st.latest(subject, withDeleted)
	if latest == nil {
		return nil, errSubjectNotFound(subject)
	}
	if number == latestVersion {
		return latest, nil
	}
	v := st.subjects[subject][number]
	if v == nil || (v.deleted && !withDeleted) {
		return nil, errVersionNotFound(number)
	}
	return v, nil
}

// POST /subjects/{subject}
func (s *Server) lookupSchema(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	var req schemaRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	withDeleted := flag(r, "deleted")
	return s.view(r.Context(), func(st *state) (any, error) {
		vs := st.versions(subject, withDeleted)
		if len(vs) == 0 {
			return nil, errSubjectNotFound(subject)
		}
		ps, err := req.parse()
		if err != nil {
			return nil, err
		}
		if v := st.match(vs, ps.canonical); v != nil {
			return st.show(v), nil
		}
		return nil, errSchemaNotFound()
	})
}

// match returns the newest of vs whose schema is text, or nil.
func (st *state) match(vs []*version, text string) *version {
	for _, v := range slices.Backward(vs) {
		if st.schemas[v.id].text == text {
			return v
		}
	}
	return nil
}

// POST /subjects/{subject}/versions
func (s *Server) register(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	var req schemaRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	ps, err := req.parse()
	if err != nil {
		return nil, err
	}
	var id int
	err = s.update(r.Context(), func(st *state) (records []Record, err error) {
		records, id, err = st.decideRegister(subject, ps, req.ID, req.Version)
		return records, err
	})
	if err != nil {
		return nil, err
	}
	return map[string]int{"id": id}, nil
}

// decideRegister decides how to register schema under subject, asking for
// a specific id and version when they are positive. It returns the id and
// the records to write, none if the subject already has the schema.
func (st *state) decideRegister(subject string, schema *parsedSchema, wantID, wantVersion int) ([]Record, int, error) {
	// An identical live version is the answer, even in READONLY mode, as in
	// Confluent: registering is idempotent.
	if v := st.match(st.versions(subject, false), schema.canonical); v != nil &&
		(wantID <= 0 || wantID == v.id) && (wantVersion <= 0 || wantVersion == v.number) {
		return nil, v.id, nil
	}

	mode := st.mode(subject)
	switch {
	case mode == ModeReadOnly:
		return nil, 0, errReadOnly(subject)
	case wantID > 0 && mode != ModeImport:
		return nil, 0, errNotPermitted("Subject %s is not in import mode", subject)
	case wantID <= 0 && mode != ModeReadWrite:
		return nil, 0, errNotPermitted("Subject %s is not in read-write mode", subject)
	}

	number := 1
	if latest := st.latest(subject, true); latest != nil {
		number = latest.number + 1
	}
	if wantVersion > 0 {
		switch {
		case mode != ModeImport && wantVersion != number:
			return nil, 0, apiErrorf(codeInvalidSchema, "Version is not one more than previous version")
		case st.subjects[subject][wantVersion] != nil:
			return nil, 0, errNotPermitted("Overwriting version %d of subject %s is not permitted.", wantVersion, subject)
		}
		number = wantVersion
	}

	if mode != ModeImport {
		prior, err := st.prior(st.versions(subject, false))
		if err != nil {
			return nil, 0, err
		}
		if msgs := checkCompatibility(st.level(subject), schema.avro, prior); len(msgs) > 0 {
			return nil, 0, apiErrorf(codeIncompatible,
				"Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]",
				subject, strings.Join(msgs, ", "))
		}
	}

	id, known := st.ids[schema.canonical]
	switch {
	case wantID > 0:
		if s := st.schemas[wantID]; s != nil && s.text != schema.canonical {
			return nil, 0, errNotPermitted("Overwrite new schema with id %d is not permitted.", wantID)
		}
		id = wantID
	case !known:
		id = st.maxID + 1
	}
	return []Record{schemaRecord(schemaValue{Subject: subject, Version: number, ID: id, Schema: schema.canonical})}, id, nil
}

// prior parses the schemas of vs for a compatibility check.
func (st *state) prior(vs []*version) ([]priorSchema, error) {
	prior := make([]priorSchema, len(vs))
	for i, v := range vs {
		ps, err := parseSchema(st.schemas[v.id].text)
		if err != nil {
			// Stored schemas were valid when written; this is corruption.
			return nil, fmt.Errorf("stored schema id %d (subject %s version %d): %w", v.id, v.subject, v.number, err)
		}
		prior[i] = priorSchema{version: v.number, schema: ps.avro}
	}
	return prior, nil
}

// DELETE /subjects/{subject}
func (s *Server) deleteSubject(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	permanent := flag(r, "permanent")
	var deleted []int
	err := s.update(r.Context(), func(st *state) ([]Record, error) {
		all := st.versions(subject, true)
		if len(all) == 0 {
			return nil, errSubjectNotFound(subject)
		}
		live := st.versions(subject, false)
		switch {
		case !permanent && len(live) == 0:
			return nil, errSubjectSoftDeleted(subject)
		case st.mode(subject) == ModeReadOnly:
			return nil, errReadOnly(subject)
		case permanent && len(live) > 0:
			return nil, errSubjectNotSoftDeleted(subject)
		case !permanent:
			deleted = numbers(live)
			return []Record{deleteSubjectRecord(subject, live[len(live)-1].number)}, nil
		}
		deleted = numbers(all)
		return st.purge(subject, all), nil
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}

// DELETE /subjects/{subject}/versions/{version}
func (s *Server) deleteVersion(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	number, err := parseVersion(r.PathValue("version"))
	if err != nil {
		return nil, err
	}
	permanent := flag(r, "permanent")
	var deleted int
	err = s.update(r.Context(), func(st *state) ([]Record, error) {
		all := st.versions(subject, true)
		if len(all) == 0 {
			return nil, errSubjectNotFound(subject)
		}
		v := st.subjects[subject][number]
		if number == latestVersion {
			// The latest version still to delete: for a soft delete the
			// latest live one, for a permanent delete the latest of all.
			if v = st.latest(subject, false); v == nil || permanent {
				v = all[len(all)-1]
			}
		}
		switch {
		case v == nil:
			return nil, errVersionNotFound(number)
		case !permanent && v.deleted:
			return nil, errVersionSoftDeleted(subject, v.number)
		case permanent && !v.deleted:
			return nil, errVersionNotSoftDeleted(subject, v.number)
		case st.mode(subject) == ModeReadOnly:
			return nil, errReadOnly(subject)
		}
		deleted = v.number
		if !permanent {
			return []Record{schemaRecord(schemaValue{Subject: subject, Version: v.number, ID: v.id, Schema: st.schemas[v.id].text, Deleted: true})}, nil
		}
		return st.purge(subject, []*version{v}), nil
	})
	if err != nil {
		return nil, err
	}
	return deleted, nil
}

// purge returns the records that permanently delete versions vs of
// subject. MAX_ID goes with every purge: it keeps the highest id known after
// a compacted topic drops the SCHEMA records that carried it, so ids are
// never reused. Purging a subject's last version also removes its config
// and mode, as in Confluent, and its DELETE_SUBJECT marker, so a compacted
// topic keeps nothing of the subject.
func (st *state) purge(subject string, vs []*version) []Record {
	var records []Record
	for _, v := range slices.Backward(vs) {
		records = append(records, tombstone(schemaKey(subject, v.number)))
	}
	records = append(records, maxIDRecord(st.maxID))
	if len(vs) < len(st.subjects[subject]) {
		return records
	}
	records = append(records, tombstone(deleteSubjectKey(subject)))
	if _, ok := st.configs[subject]; ok {
		records = append(records, tombstone(configKey(subject)))
	}
	if _, ok := st.modes[subject]; ok {
		records = append(records, tombstone(modeKey(subject)))
	}
	return records
}

func numbers(vs []*version) []int {
	ns := make([]int, len(vs))
	for i, v := range vs {
		ns[i] = v.number
	}
	return ns
}

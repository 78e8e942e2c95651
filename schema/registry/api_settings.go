package registry

import (
	"net/http"
)

// The config and mode endpoints share one shape: a global setting (path
// without subject) and per-subject settings that override it, kept in
// CONFIG and MODE records. setting describes one of the two.
type setting[T ~string] struct {
	of       func(st *state) map[string]T // the settings in the state
	inForce  func(st *state, subject string) T
	parse    func(string) (T, error)
	invalid  func() *apiError
	unset    func(subject string) *apiError // GET of a subject without its own setting
	record   func(subject string, value T) Record
	key      func(subject string) recordKey
	validate func(st *state, subject string, value T, r *http.Request) error // before a PUT, may be nil
}

var compatibilitySetting = setting[Level]{
	of:      func(st *state) map[string]Level { return st.configs },
	inForce: (*state).level,
	parse:   parseLevel,
	invalid: errInvalidLevel,
	unset: func(subject string) *apiError {
		return apiErrorf(codeSubjectLevelNotConfig, "Subject '%s' does not have subject-level compatibility configured", subject)
	},
	record: configRecord,
	key:    configKey,
}

var modeSetting = setting[Mode]{
	of:      func(st *state) map[string]Mode { return st.modes },
	inForce: (*state).mode,
	parse:   parseMode,
	invalid: errInvalidMode,
	unset: func(subject string) *apiError {
		return apiErrorf(codeSubjectModeNotConfig, "Subject '%s' does not have subject-level mode configured", subject)
	},
	record:   modeRecord,
	key:      modeKey,
	validate: validateImport,
}

// validateImport refuses to switch to IMPORT while live subjects exist in
// its scope (all subjects for the global mode), unless ?force=true, as
// Confluent does: importing ids next to numbered ones invites collisions.
func validateImport(st *state, subject string, m Mode, r *http.Request) error {
	if m != ModeImport || st.mode(subject) == ModeImport || flag(r, "force") {
		return nil
	}
	if (subject == "" && len(st.subjectNames(false)) > 0) || (subject != "" && st.latest(subject, false) != nil) {
		return errNotPermitted("Cannot import since found existing subjects")
	}
	return nil
}

// get serves GET: the subject's own setting, or with ?defaultToGlobal=true
// the one in force; the global one for the path without subject.
func (set setting[T]) get(s *Server, r *http.Request) (T, error) {
	subject := r.PathValue("subject")
	v, err := s.view(r.Context(), func(st *state) (any, error) {
		if own, ok := set.of(st)[subject]; ok {
			return own, nil
		}
		if subject != "" && !flag(r, "defaultToGlobal") {
			return nil, set.unset(subject)
		}
		return set.inForce(st, ""), nil
	})
	if err != nil {
		return "", err
	}
	return v.(T), nil
}

// put serves PUT with the value already decoded from the body.
func (set setting[T]) put(s *Server, r *http.Request, raw string) (T, error) {
	subject := r.PathValue("subject")
	value, err := set.parse(raw)
	if err != nil {
		return "", set.invalid()
	}
	err = s.update(r.Context(), func(st *state) ([]Record, error) {
		if set.validate != nil {
			if err := set.validate(st, subject, value, r); err != nil {
				return nil, err
			}
		}
		return []Record{set.record(subject, value)}, nil
	})
	return value, err
}

// del serves DELETE: it removes the subject's (or the global) setting and
// returns the one removed. A subject without its own setting is 40401, as
// in Confluent; the global setting without one returns the default.
func (set setting[T]) del(s *Server, r *http.Request) (T, error) {
	subject := r.PathValue("subject")
	var removed T
	err := s.update(r.Context(), func(st *state) ([]Record, error) {
		own, ok := set.of(st)[subject]
		switch {
		case ok:
			removed = own
			return []Record{tombstone(set.key(subject))}, nil
		case subject != "":
			return nil, errSubjectNotFound(subject)
		}
		removed = set.inForce(st, "")
		return nil, nil
	})
	return removed, err
}

// GET /config, /config/{subject}
func (s *Server) getConfig(r *http.Request) (any, error) {
	l, err := compatibilitySetting.get(s, r)
	if err != nil {
		return nil, err
	}
	return map[string]Level{"compatibilityLevel": l}, nil
}

// PUT /config, /config/{subject}
func (s *Server) putConfig(r *http.Request) (any, error) {
	var req struct {
		Compatibility string `json:"compatibility"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	l, err := compatibilitySetting.put(s, r, req.Compatibility)
	if err != nil {
		return nil, err
	}
	return map[string]Level{"compatibility": l}, nil
}

// DELETE /config, /config/{subject}
func (s *Server) deleteConfig(r *http.Request) (any, error) {
	l, err := compatibilitySetting.del(s, r)
	if err != nil {
		return nil, err
	}
	// Confluent answers with "compatibilityLevel"; franz-go's client reads
	// "compatibility". Both are sent so either kind of client sees the level.
	return map[string]Level{"compatibilityLevel": l, "compatibility": l}, nil
}

// GET /mode, /mode/{subject}
func (s *Server) getMode(r *http.Request) (any, error) {
	m, err := modeSetting.get(s, r)
	if err != nil {
		return nil, err
	}
	return map[string]Mode{"mode": m}, nil
}

// PUT /mode, /mode/{subject}
func (s *Server) putMode(r *http.Request) (any, error) {
	var req struct {
		Mode string `json:"mode"`
	}
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	m, err := modeSetting.put(s, r, req.Mode)
	if err != nil {
		return nil, err
	}
	return map[string]Mode{"mode": m}, nil
}

// DELETE /mode, /mode/{subject}
func (s *Server) deleteMode(r *http.Request) (any, error) {
	m, err := modeSetting.del(s, r)
	if err != nil {
		return nil, err
	}
	return map[string]Mode{"mode": m}, nil
}

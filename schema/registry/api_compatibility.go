package registry

import (
	"net/http"
)

// compatibilityResult is the answer of the compatibility endpoints.
type compatibilityResult struct {
	IsCompatible bool `json:"is_compatible"`
	// Messages, sent only with ?verbose=true, say why not.
	Messages []string `json:"messages,omitzero"`
}

// POST /compatibility/subjects/{subject}/versions/{version}: checks a schema
// against one version, in the direction(s) of the subject's level.
// POST /compatibility/subjects/{subject}/versions: checks it as registering
// it would, against the versions the level names.
func (s *Server) checkCompatibility(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	number := 0 // no version in the path: all live versions
	if seg := r.PathValue("version"); seg != "" {
		var err error
		if number, err = parseVersion(seg); err != nil {
			return nil, err
		}
	}
	var req schemaRequest
	if err := decodeBody(r, &req); err != nil {
		return nil, err
	}
	verbose := flag(r, "verbose")
	return s.view(r.Context(), func(st *state) (any, error) {
		against := st.versions(subject, false)
		switch {
		case number == latestVersion && len(against) > 0:
			against = against[len(against)-1:]
		case number > 0:
			v := st.subjects[subject][number]
			if v == nil || v.deleted {
				return nil, errVersionNotFound(number)
			}
			against = []*version{v}
		}

		result := compatibilityResult{}
		schema, err := req.parse()
		switch {
		case err != nil && !verbose:
			return nil, err
		case err != nil:
			result.Messages = []string{err.Error()}
		default:
			prior, err := st.prior(against)
			if err != nil {
				return nil, err
			}
			result.Messages = checkCompatibility(st.level(subject), schema.avro, prior)
			result.IsCompatible = len(result.Messages) == 0
		}
		if !verbose {
			result.Messages = nil
		} else if result.Messages == nil {
			result.Messages = []string{}
		}
		return result, nil
	})
}

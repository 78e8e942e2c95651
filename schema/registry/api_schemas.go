package registry

import (
	"net/http"
	"strconv"
	"strings"
)

// defaultContext is the name of Confluent's default schema context, the only
// one this registry has: every subject and id lives in it.
const defaultContext = "."

// listedSchema is a version of a subject as GET /schemas lists it.
type listedSchema struct {
	Subject    string `json:"subject"`
	Version    int    `json:"version"`
	ID         int    `json:"id"`
	SchemaType string `json:"schemaType"`
	Schema     string `json:"schema"`
}

// GET /schemas: the versions of every subject with the prefix, by subject
// then version, soft-deleted ones with ?deleted=true, only each subject's
// latest with ?latestOnly=true, paginated by ?offset= and ?limit= (a limit
// of 0 or less is none).
func (s *Server) listSchemas(r *http.Request) (any, error) {
	offset, limit, err := pageParams(r)
	if err != nil {
		return nil, err
	}
	prefix, ok := subjectPrefix(r)
	withDeleted, latestOnly := flag(r, "deleted"), flag(r, "latestOnly")
	return s.view(r.Context(), func(st *state) (any, error) {
		out := []listedSchema{}
		if !ok {
			return out, nil
		}
		for _, name := range st.subjectNames(withDeleted) {
			if !strings.HasPrefix(name, prefix) {
				continue
			}
			vs := st.versions(name, withDeleted)
			if latestOnly {
				vs = vs[len(vs)-1:]
			}
			for _, v := range vs {
				out = append(out, listedSchema{Subject: v.subject, Version: v.number, ID: v.id, SchemaType: "AVRO", Schema: st.schemas[v.id].text})
			}
		}
		return page(out, offset, limit), nil
	})
}

// GET /contexts: the default context is the only one (?contextPrefix=,
// ?offset= and ?limit= filter it as Confluent does).
func (s *Server) listContexts(r *http.Request) (any, error) {
	offset, limit, err := pageParams(r)
	if err != nil {
		return nil, err
	}
	contexts := []string{}
	if strings.HasPrefix(defaultContext, r.URL.Query().Get("contextPrefix")) {
		contexts = append(contexts, defaultContext)
	}
	return page(contexts, offset, limit), nil
}

// GET /subjects/{subject}/versions/{version}/referencedby: the ids of the
// schemas that reference this version. Registration refuses schema
// references, so no schema references another: the answer for a version
// that exists is always empty; a missing subject or version is 40401 or
// 40402, as for GET of the version (?deleted=true finds soft-deleted ones).
func (s *Server) referencedBy(r *http.Request) (any, error) {
	subject := r.PathValue("subject")
	number, err := parseVersion(r.PathValue("version"))
	if err != nil {
		return nil, err
	}
	return s.view(r.Context(), func(st *state) (any, error) {
		if _, err := st.find(subject, number, flag(r, "deleted")); err != nil {
			return nil, err
		}
		return []int{}, nil
	})
}

// subjectPrefix reads ?subjectPrefix= for the default context, the only
// one: Confluent's ":*:" (every context) and ":.:" (the default context)
// mean no prefix, ":.:NAME" means NAME. A prefix naming another context
// (":.other:") matches nothing, which ok=false reports.
func subjectPrefix(r *http.Request) (prefix string, ok bool) {
	p := r.URL.Query().Get("subjectPrefix")
	switch {
	case p == ":*:":
		return "", true
	case strings.HasPrefix(p, ":.:"):
		return p[len(":.:"):], true
	case strings.HasPrefix(p, ":."):
		return "", false
	}
	return p, true
}

// intParam reads an integer query parameter, def when it is absent.
func intParam(r *http.Request, name string, def int) (int, error) {
	raw := r.URL.Query().Get(name)
	if raw == "" {
		return def, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		return 0, apiErrorf(codeBadRequest, "Invalid %s %q: want an integer", name, raw)
	}
	return n, nil
}

// pageParams reads ?offset= (default 0) and ?limit= (default: none).
func pageParams(r *http.Request) (offset, limit int, err error) {
	if offset, err = intParam(r, "offset", 0); err == nil {
		limit, err = intParam(r, "limit", -1)
	}
	return offset, limit, err
}

// page returns the page of items from offset (negative: 0) of at most limit
// items (0 or less: all of them).
func page[T any](items []T, offset, limit int) []T {
	offset = min(max(offset, 0), len(items))
	items = items[offset:]
	if limit > 0 && limit < len(items) {
		items = items[:limit]
	}
	return items
}

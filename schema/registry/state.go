package registry

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// state is everything the registry knows, as a pure function of the log:
// apply folds one record into it. Handlers only read it; changes go through
// records written to the Store and applied when read back, so every
// instance on the log computes the same state.
type state struct {
	subjects map[string]map[int]*version // subject -> version number -> version
	schemas  map[int]*schemaText         // id -> schema text and its users
	ids      map[string]int              // canonical schema text -> id
	maxID    int                         // highest id ever seen; ids are never reused
	configs  map[string]Level            // subject ("" = global) -> level
	modes    map[string]Mode             // subject ("" = global) -> mode
}

// version is one version of a subject.
type version struct {
	subject string
	number  int
	id      int
	deleted bool
}

// schemaText is a schema by id, with the number of versions (deleted or not)
// using it: when the last one is permanently deleted, the id is forgotten,
// as it would be once a compacted topic drops the tombstoned records.
type schemaText struct {
	text  string
	users int
}

func newState() *state {
	return &state{
		subjects: map[string]map[int]*version{},
		schemas:  map[int]*schemaText{},
		ids:      map[string]int{},
		configs:  map[string]Level{},
		modes:    map[string]Mode{},
	}
}

// apply folds one record into the state. Records with unknown key types are
// ignored (Confluent writes NOOP and others); records it cannot decode are
// reported with errBadRecord and leave the state unchanged.
func (st *state) apply(r Record) error {
	var k recordKey
	if err := json.Unmarshal(r.Key, &k); err != nil {
		return fmt.Errorf("%w: key %q: %w", errBadRecord, r.Key, err)
	}
	switch k.KeyType {
	case keySchema:
		return st.applySchema(k, r.Value)
	case keyConfig:
		return applySetting(st.configs, k, r.Value, func(v configValue) (Level, error) {
			return parseLevel(v.CompatibilityLevel)
		})
	case keyMode:
		return applySetting(st.modes, k, r.Value, func(v modeValue) (Mode, error) {
			return parseMode(v.Mode)
		})
	case keyDeleteSubject:
		if r.Value == nil {
			return nil // the marker is gone; the deletions it made stay
		}
		var v deleteSubjectValue
		if err := decodeValue(k, r.Value, &v); err != nil {
			return err
		}
		for _, ver := range st.subjects[k.Subject] {
			if ver.number <= v.Version {
				ver.deleted = true
			}
		}
	case keyMaxID:
		if r.Value == nil {
			return nil
		}
		var v maxIDValue
		if err := decodeValue(k, r.Value, &v); err != nil {
			return err
		}
		st.maxID = max(st.maxID, v.ID)
	}
	return nil
}

func (st *state) applySchema(k recordKey, value []byte) error {
	if k.Subject == "" || k.Version <= 0 {
		return fmt.Errorf("%w: SCHEMA key without subject or version", errBadRecord)
	}
	var v schemaValue
	if value != nil {
		if err := decodeValue(k, value, &v); err != nil {
			return err
		}
		if v.ID <= 0 || v.Schema == "" {
			return fmt.Errorf("%w: SCHEMA value for %q version %d without id or schema", errBadRecord, k.Subject, k.Version)
		}
	}
	if old := st.subjects[k.Subject][k.Version]; old != nil {
		st.release(old.id)
		delete(st.subjects[k.Subject], k.Version)
		if len(st.subjects[k.Subject]) == 0 {
			delete(st.subjects, k.Subject)
		}
	}
	if value == nil {
		return nil
	}
	if st.subjects[k.Subject] == nil {
		st.subjects[k.Subject] = map[int]*version{}
	}
	// The key, not the value, names the version: compaction works on keys.
	st.subjects[k.Subject][k.Version] = &version{subject: k.Subject, number: k.Version, id: v.ID, deleted: v.Deleted}
	if s := st.schemas[v.ID]; s != nil {
		s.users++
	} else {
		st.schemas[v.ID] = &schemaText{text: v.Schema, users: 1}
	}
	if _, ok := st.ids[v.Schema]; !ok {
		st.ids[v.Schema] = v.ID
	}
	st.maxID = max(st.maxID, v.ID)
	return nil
}

// release drops one user of a schema id, forgetting the id's schema when
// no version uses it any more (maxID still remembers the id).
func (st *state) release(id int) {
	s := st.schemas[id]
	if s == nil {
		return
	}
	if s.users--; s.users > 0 {
		return
	}
	delete(st.schemas, id)
	if st.ids[s.text] == id {
		delete(st.ids, s.text)
	}
}

// applySetting applies a CONFIG or MODE record to settings.
func applySetting[V any, T ~string](settings map[string]T, k recordKey, value []byte, parse func(V) (T, error)) error {
	if value == nil {
		delete(settings, k.Subject)
		return nil
	}
	var v V
	if err := decodeValue(k, value, &v); err != nil {
		return err
	}
	t, err := parse(v)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", errBadRecord, k.KeyType, err)
	}
	settings[k.Subject] = t
	return nil
}

// versions returns the subject's versions in ascending order, with the
// soft-deleted ones only if withDeleted.
func (st *state) versions(subject string, withDeleted bool) []*version {
	var vs []*version
	for _, v := range st.subjects[subject] {
		if withDeleted || !v.deleted {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, func(a, b *version) int { return a.number - b.number })
	return vs
}

// latest returns the subject's newest version (nil if none), counting
// soft-deleted versions only if withDeleted.
func (st *state) latest(subject string, withDeleted bool) *version {
	vs := st.versions(subject, withDeleted)
	if len(vs) == 0 {
		return nil
	}
	return vs[len(vs)-1]
}

// subjectNames returns the sorted names of subjects that have versions,
// counting soft-deleted versions only if withDeleted.
func (st *state) subjectNames(withDeleted bool) []string {
	names := []string{}
	for _, name := range slices.Sorted(maps.Keys(st.subjects)) {
		if st.latest(name, withDeleted) != nil {
			names = append(names, name)
		}
	}
	return names
}

// usersOf returns the versions using schema id, ordered by subject and
// version, with the soft-deleted ones only if withDeleted.
func (st *state) usersOf(id int, withDeleted bool) []*version {
	var vs []*version
	for _, name := range slices.Sorted(maps.Keys(st.subjects)) {
		for _, v := range st.versions(name, withDeleted) {
			if v.id == id {
				vs = append(vs, v)
			}
		}
	}
	return vs
}

// level returns the compatibility level in force for subject.
func (st *state) level(subject string) Level { return inForce(st.configs, subject, DefaultLevel) }

// mode returns the mode in force for subject.
func (st *state) mode(subject string) Mode { return inForce(st.modes, subject, ModeReadWrite) }

// inForce returns the subject's own setting, else the global one (keyed by
// the empty subject), else def.
func inForce[T any](settings map[string]T, subject string, def T) T {
	if v, ok := settings[subject]; ok {
		return v
	}
	if v, ok := settings[""]; ok {
		return v
	}
	return def
}

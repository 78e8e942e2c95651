package registry

import (
	"fmt"
	"strings"
)

// Level is a compatibility level: which earlier versions of a subject a new
// schema is checked against, and in which direction.
type Level string

// The compatibility levels, as Confluent names them.
const (
	LevelNone               Level = "NONE"
	LevelBackward           Level = "BACKWARD"
	LevelBackwardTransitive Level = "BACKWARD_TRANSITIVE"
	LevelForward            Level = "FORWARD"
	LevelForwardTransitive  Level = "FORWARD_TRANSITIVE"
	LevelFull               Level = "FULL"
	LevelFullTransitive     Level = "FULL_TRANSITIVE"

	// DefaultLevel is the global level until one is configured.
	DefaultLevel = LevelBackward
)

// parseLevel accepts a level in any letter case, as Confluent does.
func parseLevel(s string) (Level, error) {
	switch l := Level(strings.ToUpper(s)); l {
	case LevelNone, LevelBackward, LevelBackwardTransitive, LevelForward,
		LevelForwardTransitive, LevelFull, LevelFullTransitive:
		return l, nil
	}
	return "", fmt.Errorf("unknown compatibility level %q", s)
}

func (l Level) backward() bool {
	return l == LevelBackward || l == LevelBackwardTransitive || l == LevelFull || l == LevelFullTransitive
}

func (l Level) forward() bool {
	return l == LevelForward || l == LevelForwardTransitive || l == LevelFull || l == LevelFullTransitive
}

func (l Level) transitive() bool {
	return l == LevelBackwardTransitive || l == LevelForwardTransitive || l == LevelFullTransitive
}

// Mode says which writes a subject (or, globally, the registry) accepts.
type Mode string

// The modes, as Confluent names them.
const (
	// ModeReadWrite accepts registrations that the registry numbers itself.
	ModeReadWrite Mode = "READWRITE"
	// ModeReadOnly rejects every write with 42205.
	ModeReadOnly Mode = "READONLY"
	// ModeImport accepts only registrations that bring their own id (and
	// optionally version), skipping compatibility checks: for copying
	// another registry's schemas with their ids.
	ModeImport Mode = "IMPORT"
)

// parseMode accepts a mode in any letter case, as Confluent does.
func parseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToUpper(s)); m {
	case ModeReadWrite, ModeReadOnly, ModeImport:
		return m, nil
	}
	return "", fmt.Errorf("unknown mode %q", s)
}

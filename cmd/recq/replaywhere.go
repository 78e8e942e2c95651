package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// predicate is a --where expression: comparisons of payload fields with
// literals, all of which must hold (`amount>100 and status=="open"`).
type predicate []comparison

type comparison struct {
	path []string // a field, nested ones dotted: customer.name
	op   string   // == != > >= < <=
	lit  any      // json.Number, string, bool or nil
}

// parseWhere parses a predicate; its errors say where it went wrong.
func parseWhere(s string) (predicate, error) {
	p := &whereParser{s: s}
	var out predicate
	for {
		c, err := p.comparison()
		if err != nil {
			return nil, usagef("--where %q: %v", s, err)
		}
		out = append(out, c)
		p.space()
		if p.i == len(s) {
			return out, nil
		}
		at, rest := p.i+1, p.rest()
		if w := p.word(); !strings.EqualFold(w, "and") {
			return nil, usagef("--where %q: at %d: want \"and\" between comparisons, got %q", s, at, rest)
		}
	}
}

type whereParser struct {
	s string
	i int
}

func (p *whereParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *whereParser) rest() string { return p.s[p.i:] }

func identByte(c byte, first bool) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || !first && (c >= '0' && c <= '9' || c == '.')
}

// word reads a field path or a bare word.
func (p *whereParser) word() string {
	p.space()
	start := p.i
	for p.i < len(p.s) && identByte(p.s[p.i], p.i == start) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *whereParser) comparison() (comparison, error) {
	var c comparison
	field := p.word()
	if field == "" || strings.HasSuffix(field, ".") || strings.Contains(field, "..") {
		return c, fmt.Errorf("at %d: want a payload field (amount, customer.name), got %q", p.i+1, p.rest())
	}
	c.path = strings.Split(field, ".")
	p.space()
	for _, op := range []string{"==", "!=", ">=", "<=", ">", "<", "="} {
		if strings.HasPrefix(p.rest(), op) {
			c.op, p.i = op, p.i+len(op)
			break
		}
	}
	switch c.op {
	case "":
		return c, fmt.Errorf("at %d: want ==, !=, >, >=, < or <= after %q, got %q", p.i+1, field, p.rest())
	case "=":
		c.op = "=="
	}
	p.space()
	lit, err := p.literal()
	if err != nil {
		return c, err
	}
	c.lit = lit
	if _, ordered := lit.(json.Number); !ordered && c.op != "==" && c.op != "!=" {
		if _, ok := lit.(string); !ok {
			return c, fmt.Errorf("%s %s %v: only numbers and strings are ordered", field, c.op, lit)
		}
	}
	return c, nil
}

// literal reads a number, a quoted string ("open" or 'open'), true, false
// or null.
func (p *whereParser) literal() (any, error) {
	at, rest := p.i+1, p.rest()
	switch {
	case rest == "":
		return nil, fmt.Errorf("at %d: want a value (100, \"open\", true, null) at the end", at)
	case rest[0] == '"':
		end := 1
		for end < len(rest) && rest[end] != '"' {
			if rest[end] == '\\' {
				end++
			}
			end++
		}
		var s string
		if end >= len(rest) || json.Unmarshal([]byte(rest[:end+1]), &s) != nil {
			return nil, fmt.Errorf("at %d: unterminated or malformed string %s", at, rest)
		}
		p.i += end + 1
		return s, nil
	case rest[0] == '\'':
		end := strings.IndexByte(rest[1:], '\'')
		if end < 0 {
			return nil, fmt.Errorf("at %d: unterminated string %s", at, rest)
		}
		p.i += end + 2
		return rest[1 : end+1], nil
	}
	n := 0
	for n < len(rest) && rest[n] != ' ' {
		n++
	}
	tok := rest[:n]
	p.i += n
	switch tok {
	case "true":
		return true, nil
	case "false":
		return false, nil
	case "null":
		return nil, nil
	}
	if _, err := strconv.ParseFloat(tok, 64); err == nil && json.Valid([]byte(tok)) {
		return json.Number(tok), nil
	}
	return nil, fmt.Errorf("at %d: want a number, a quoted string (\"open\"), true, false or null, got %q", at, tok)
}

// match reports whether payload m satisfies every comparison. A missing
// field is null; values of different kinds are never equal and never
// ordered.
func (p predicate) match(m map[string]any) bool {
	for _, c := range p {
		if !c.holds(lookup(m, c.path)) {
			return false
		}
	}
	return true
}

func lookup(m map[string]any, path []string) any {
	var v any = m
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = obj[k]
	}
	return v
}

func (c comparison) holds(v any) bool {
	order, ok := compare(v, c.lit)
	switch c.op {
	case "==":
		return ok && order == 0
	case "!=":
		return !ok || order != 0
	case ">":
		return ok && order > 0
	case ">=":
		return ok && order >= 0
	case "<":
		return ok && order < 0
	default:
		return ok && order <= 0
	}
}

// compare orders v against lit when they are of one kind.
func compare(v, lit any) (int, bool) {
	switch l := lit.(type) {
	case nil:
		return 0, v == nil
	case bool:
		b, ok := v.(bool)
		if !ok || b != l {
			return 1, ok
		}
		return 0, true
	case string:
		s, ok := v.(string)
		return strings.Compare(s, l), ok
	case json.Number:
		n, ok := v.(json.Number)
		if !ok {
			return 0, false
		}
		if a, err := n.Int64(); err == nil {
			if b, err := l.Int64(); err == nil {
				return cmp.Compare(a, b), true
			}
		}
		a, err1 := n.Float64()
		b, err2 := l.Float64()
		return cmp.Compare(a, b), err1 == nil && err2 == nil
	}
	return 0, false
}

package schema

// goavro decodes with the writer's schema only. This file implements Avro's
// schema resolution on top: a resolution, compiled once per (writer, reader)
// pair, rewrites the writer's natives into the reader's shape — defaults for
// fields the writer lacks, writer-only fields dropped, int→long→float→double
// and string↔bytes promotions, enum symbols, union branches. When writer and
// reader agree (the common case) the resolution is the identity and costs
// nothing.

// resolution converts one writer native to the reader's; fn nil means the
// identity.
type resolution struct {
	fn      func(any) (any, error)
	pending bool // under construction: a recursive schema refers to it
}

func (r *resolution) apply(x any) (any, error) {
	if r.fn == nil {
		return x, nil
	}
	return r.fn(x)
}

// identity reports whether a parent may skip r. A pending resolution is not
// known yet, so it is not skipped.
func (r *resolution) identity() bool { return !r.pending && r.fn == nil }

type resolver struct{ memo map[[2]*avroType]*resolution }

// resolve compiles the resolution of writer schema w to reader schema r. An
// error wraps ErrIncompatible and names the field where they part.
func resolve(w, r *avroType) (*resolution, error) {
	rs := resolver{memo: map[[2]*avroType]*resolution{}}
	return rs.resolve(w, r)
}

func (rs *resolver) resolve(w, r *avroType) (*resolution, error) {
	k := [2]*avroType{w, r}
	if res, ok := rs.memo[k]; ok {
		return res, nil
	}
	res := &resolution{pending: true}
	rs.memo[k] = res
	fn, err := rs.build(w, r)
	if err != nil {
		return nil, err
	}
	res.fn, res.pending = fn, false
	return res, nil
}

func cannotRead(w, r *avroType) error {
	return incompatible("writer %s cannot be read as %s", w.label(), r.label())
}

func (rs *resolver) build(w, r *avroType) (func(any) (any, error), error) {
	switch {
	case w.kind == kindUnion:
		return rs.fromUnion(w, r)
	case r.kind == kindUnion:
		return rs.toUnion(w, r)
	case w.kind != r.kind && !(w.kind.primitive() && r.kind.primitive()),
		w.name != "" && !namesMatch(w, r):
		return nil, cannotRead(w, r)
	}
	switch r.kind {
	case kindRecord:
		return rs.record(w, r)
	case kindEnum:
		return enumResolution(w, r), nil
	case kindFixed:
		if w.size != r.size {
			return nil, cannotRead(w, r)
		}
		return nil, nil
	case kindArray:
		return rs.array(w, r)
	case kindMap:
		return rs.mapping(w, r)
	}
	return promotion(w, r)
}

// namesMatch applies the spec: same unqualified name, or the writer's name is
// one of the reader's aliases.
func namesMatch(w, r *avroType) bool {
	if shortName(w.name) == shortName(r.name) {
		return true
	}
	for _, a := range r.aliases {
		if a == w.name || shortName(a) == shortName(w.name) {
			return true
		}
	}
	return false
}

type fieldStep struct {
	rname, wname string
	res          *resolution
	def          *avroField // set when the writer lacks the field
}

func (rs *resolver) record(w, r *avroType) (func(any) (any, error), error) {
	byName := make(map[string]*avroField, len(w.fields))
	for _, f := range w.fields {
		byName[f.name] = f
	}
	identity := true
	steps := make([]fieldStep, 0, len(r.fields))
	for _, rf := range r.fields {
		wf := byName[rf.name]
		for _, a := range rf.aliases {
			if wf == nil {
				wf = byName[a]
			}
		}
		if wf == nil {
			if rf.def == nil {
				return nil, inField(rf.name, incompatible("the writer's %s lacks it and the reader gives no default", w.name))
			}
			if _, err := defaultNative(rf); err != nil {
				return nil, inField(rf.name, incompatible("bad default: %w", err))
			}
			steps = append(steps, fieldStep{rname: rf.name, def: rf})
			identity = false
			continue
		}
		res, err := rs.resolve(wf.typ, rf.typ)
		if err != nil {
			return nil, inField(rf.name, err)
		}
		identity = identity && wf.name == rf.name && res.identity()
		steps = append(steps, fieldStep{rname: rf.name, wname: wf.name, res: res})
	}
	if identity {
		return nil, nil // writer-only fields stay in the map; bindings ignore them
	}
	return func(x any) (any, error) {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, malformed("record %s decoded as %T", w.name, x)
		}
		out := make(map[string]any, len(steps))
		for i := range steps {
			s := &steps[i]
			var v any
			var err error
			if s.def != nil {
				v, err = defaultNative(s.def)
			} else {
				v, err = s.res.apply(m[s.wname])
			}
			if err != nil {
				return nil, inField(s.rname, err)
			}
			out[s.rname] = v
		}
		return out, nil
	}, nil
}

func enumResolution(w, r *avroType) func(any) (any, error) {
	known := make(map[string]bool, len(r.symbols))
	for _, s := range r.symbols {
		known[s] = true
	}
	missing := false
	for _, s := range w.symbols {
		missing = missing || !known[s]
	}
	if !missing {
		return nil
	}
	return func(x any) (any, error) {
		s, _ := x.(string)
		switch {
		case known[s]:
			return s, nil
		case r.enumDef != "":
			return r.enumDef, nil
		}
		return nil, invalid("symbol %q is unknown to the reader's enum %s, which has no default", s, r.name)
	}
}

func (rs *resolver) array(w, r *avroType) (func(any) (any, error), error) {
	res, err := rs.resolve(w.elem, r.elem)
	if err != nil || res.identity() {
		return nil, err
	}
	return func(x any) (any, error) {
		xs, ok := x.([]any)
		if !ok {
			return nil, malformed("array decoded as %T", x)
		}
		for i, e := range xs { // in place: the slice is goavro's, fresh per decode
			v, err := res.apply(e)
			if err != nil {
				return nil, inIndex(i, err)
			}
			xs[i] = v
		}
		return xs, nil
	}, nil
}

func (rs *resolver) mapping(w, r *avroType) (func(any) (any, error), error) {
	res, err := rs.resolve(w.elem, r.elem)
	if err != nil || res.identity() {
		return nil, err
	}
	return func(x any) (any, error) {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, malformed("map decoded as %T", x)
		}
		for k, e := range m {
			v, err := res.apply(e)
			if err != nil {
				return nil, inKey(k, err)
			}
			m[k] = v
		}
		return m, nil
	}, nil
}

// pickBranch finds the reader union branch for a writer type: the first of
// the same type, else the first the writer promotes to.
func pickBranch(w, r *avroType) *avroType {
	for _, b := range r.branches {
		if b.kind == w.kind && (w.name == "" || namesMatch(w, b)) {
			return b
		}
	}
	for _, b := range r.branches {
		if promotions[[2]kind{w.kind, b.kind}] != nil {
			return b
		}
	}
	return nil
}

func (rs *resolver) toUnion(w, r *avroType) (func(any) (any, error), error) {
	b := pickBranch(w, r)
	if b == nil {
		return nil, incompatible("writer %s fits no branch of the reader's %s", w.label(), r.unionLabel())
	}
	if w.kind == kindNull {
		return nil, nil // null is nil on both sides
	}
	res, err := rs.resolve(w, b)
	if err != nil {
		return nil, err
	}
	name := b.branchName()
	return func(x any) (any, error) {
		v, err := res.apply(x)
		if err != nil {
			return nil, err
		}
		return map[string]any{name: v}, nil
	}, nil
}

type branchStep struct {
	res  *resolution
	wrap string // reader branch name when the reader is a union
	err  error  // this writer branch cannot be read; fails only when met
}

// fromUnion resolves a writer union branch by branch. Per the spec, a branch
// the reader cannot read is an error only for values that use it; a union
// none of whose branches can be read is refused at once.
func (rs *resolver) fromUnion(w, r *avroType) (func(any) (any, error), error) {
	steps := make(map[string]branchStep, len(w.branches))
	identity := r.kind == kindUnion
	nullOK := false
	readable := 0
	for _, wb := range w.branches {
		if wb.kind == kindNull {
			nullOK = r.kind == kindNull || r.kind == kindUnion && r.nullIndex() >= 0
			identity = identity && nullOK
			readable += boolInt(nullOK)
			continue
		}
		target, wrap := r, ""
		if r.kind == kindUnion {
			if target = pickBranch(wb, r); target == nil {
				steps[wb.branchName()] = branchStep{err: invalid("writer union branch %s fits no branch of the reader's %s", wb.label(), r.unionLabel())}
				identity = false
				continue
			}
			wrap = target.branchName()
		}
		res, err := rs.resolve(wb, target)
		if err != nil {
			steps[wb.branchName()] = branchStep{err: err}
			identity = false
			continue
		}
		identity = identity && wrap == wb.branchName() && res.identity()
		steps[wb.branchName()] = branchStep{res: res, wrap: wrap}
		readable++
	}
	if identity {
		return nil, nil
	}
	if readable == 0 {
		return nil, incompatible("no branch of the writer's %s can be read as %s", w.unionLabel(), r.label())
	}
	return func(x any) (any, error) {
		if x == nil {
			if !nullOK {
				return nil, invalid("the writer wrote null, but the reader's %s is not optional", r.label())
			}
			return nil, nil
		}
		name, inner, ok := unionValue(x)
		if !ok {
			return nil, malformed("union decoded as %T", x)
		}
		s, ok := steps[name]
		switch {
		case !ok:
			return nil, malformed("union branch %q is not in the writer's schema", name)
		case s.err != nil:
			return nil, s.err
		}
		v, err := s.res.apply(inner)
		if err != nil || s.wrap == "" {
			return v, err
		}
		return map[string]any{s.wrap: v}, nil
	}, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// promotions are the spec's primitive promotions, on natives.
var promotions = map[[2]kind]func(any) any{
	{kindInt, kindLong}:     func(x any) any { return int64(x.(int32)) },
	{kindInt, kindFloat}:    func(x any) any { return float32(x.(int32)) },
	{kindInt, kindDouble}:   func(x any) any { return float64(x.(int32)) },
	{kindLong, kindFloat}:   func(x any) any { return float32(x.(int64)) },
	{kindLong, kindDouble}:  func(x any) any { return float64(x.(int64)) },
	{kindFloat, kindDouble}: func(x any) any { return float64(x.(float32)) },
	{kindString, kindBytes}: func(x any) any { return []byte(x.(string)) },
	{kindBytes, kindString}: func(x any) any { return string(x.([]byte)) },
}

func promotion(w, r *avroType) (func(any) (any, error), error) {
	if w.kind == r.kind {
		return timestampScaling(w, r), nil
	}
	p := promotions[[2]kind{w.kind, r.kind}]
	if p == nil {
		return nil, cannotRead(w, r)
	}
	return func(x any) (any, error) { return p(x), nil }, nil
}

// timestampScaling converts between millisecond and microsecond timestamps,
// which share the underlying long but not the unit.
func timestampScaling(w, r *avroType) func(any) (any, error) {
	wu, ru := timeUnit(w), timeUnit(r)
	if wu == 0 || ru == 0 || wu == ru {
		return nil
	}
	return func(x any) (any, error) {
		i, ok := x.(int64)
		if !ok {
			return nil, malformed("timestamp decoded as %T", x)
		}
		return timeToLong(longToTime(i, wu), ru), nil
	}
}

package schema

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/linkedin/goavro/v2"
)

// binding converts between values of one Go type and one schema. Bindings are
// compiled once per (schema, type) pair, so the encode and decode paths do no
// tag parsing, name lookups or schema walks: they run a tree of closures that
// mirrors the schema.
//
// enc validates and appends the Avro binary encoding to b in one walk. It
// writes the binary itself rather than building goavro's native maps for
// goavro to encode: building those maps cost three times goavro's own
// encoding (see the benchmarks), and the walk that validates already knows
// every type. On error the bytes are discarded, so nothing is half-encoded.
//
// dec stores goavro natives, already resolved to this schema (resolve.go),
// into the Go value at p, which has the bound type. It writes through typed
// pointers at offsets computed here rather than through reflect.Value
// setters, which cost as much as goavro's decoding itself; values whose shape
// is not known statically (slices, maps, zeroing) still go through reflect.
// The tests check both directions against goavro byte for byte.
//
// bin decodes Avro binary written with the bound schema itself straight
// into the Go value (binary.go); noFast where it cannot.
type binding struct {
	enc func(b []byte, v reflect.Value) ([]byte, error)
	dec func(x any, p unsafe.Pointer) error
	bin func(r *binReader, p unsafe.Pointer) error
}

type bindKey struct {
	n *avroType
	t reflect.Type
}

// binder memoizes bindings so recursive schemas and types terminate: a
// binding under construction is already in memo, and closures call through
// its pointer once it is complete.
type binder struct {
	memo  map[bindKey]*binding
	order []bindKey // insertion order, to roll back failed union branch attempts
}

func bind(n *avroType, t reflect.Type) (*binding, error) {
	b := binder{memo: map[bindKey]*binding{}}
	return b.bind(n, t)
}

func (b *binder) bind(n *avroType, t reflect.Type) (*binding, error) {
	k := bindKey{n, t}
	if bd, ok := b.memo[k]; ok {
		return bd, nil
	}
	bd := &binding{}
	b.memo[k] = bd
	b.order = append(b.order, k)
	var err error
	switch {
	case t.Kind() == reflect.Pointer && n.kind != kindUnion:
		err = b.pointer(bd, n, t)
	case n.kind == kindUnion:
		err = b.union(bd, n, t)
	case n.kind == kindRecord:
		err = b.record(bd, n, t)
	case n.kind == kindArray:
		err = b.array(bd, n, t)
	case n.kind == kindMap:
		err = b.mapping(bd, n, t)
	case n.kind == kindEnum:
		err = b.enum(bd, n, t)
	default:
		err = b.scalar(bd, n, t)
	}
	if err != nil {
		return nil, err
	}
	if bd.bin == nil {
		bd.bin = noFast
		if n.kind.primitive() || n.kind == kindEnum || n.kind == kindFixed {
			bd.bin = nativeBin(n, bd.dec)
		}
	}
	return bd, nil
}

func (b *binder) rollback(mark int) {
	for _, k := range b.order[mark:] {
		delete(b.memo, k)
	}
	b.order = b.order[:mark]
}

func mismatch(n *avroType, t reflect.Type) error {
	return incompatible("Go type %v cannot hold Avro %s", t, n.label())
}

// value is the reflect view of the Go value at p, for the cases that need it.
func value(t reflect.Type, p unsafe.Pointer) reflect.Value { return reflect.NewAt(t, p).Elem() }

// decodeNew decodes into a fresh value of type t and stores the pointer to it
// at p. Fresh every time: decoding into a reused struct must not write
// through pointers shared with earlier results.
func decodeNew(elem *binding, t reflect.Type, x any, p unsafe.Pointer) error {
	np := reflect.New(t).UnsafePointer()
	if err := elem.dec(x, np); err != nil {
		return err
	}
	*(*unsafe.Pointer)(p) = np
	return nil
}

// pointer binds a Go pointer to a schema without null: nil is refused.
func (b *binder) pointer(bd *binding, n *avroType, t reflect.Type) error {
	elem, err := b.bind(n, t.Elem())
	if err != nil {
		return err
	}
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		if v.IsNil() {
			return nil, invalid("nil, but %s is not optional", n.label())
		}
		return elem.enc(b, v.Elem())
	}
	bd.dec = func(x any, p unsafe.Pointer) error { return decodeNew(elem, t.Elem(), x, p) }
	bd.bin = func(r *binReader, p unsafe.Pointer) error { return binNew(elem, t.Elem(), r, p) }
	return nil
}

// union binds a Go type to a union: a pointer stores null as nil, a
// non-pointer as its zero value. Encoding uses the first branch the Go type
// fits; decoding accepts every branch it fits.
func (b *binder) union(bd *binding, n *avroType, t reflect.Type) error {
	ptr := t.Kind() == reflect.Pointer
	target := t
	if ptr {
		target = t.Elem()
	}
	type branch struct {
		name string
		bd   *binding
	}
	var (
		firstIndex int64
		first      *binding
		lastErr    error
		decs       []branch // the branches the Go type can hold
		byIndex    = make([]*binding, len(n.branches))
	)
	for i, br := range n.branches {
		if br.kind == kindNull {
			continue
		}
		mark := len(b.order)
		bbd, err := b.bind(br, target)
		if err != nil {
			b.rollback(mark)
			lastErr = err
			continue
		}
		if first == nil {
			firstIndex, first = int64(i), bbd
		}
		decs = append(decs, branch{br.branchName(), bbd})
		byIndex[i] = bbd
	}
	if first == nil {
		if lastErr != nil && len(n.branches) <= 2 {
			return lastErr
		}
		return incompatible("Go type %v fits no branch of %s", t, n.unionLabel())
	}
	nullIndex := int64(n.nullIndex())
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		if ptr {
			if v.IsNil() {
				if nullIndex < 0 {
					return nil, invalid("nil, but %s has no null", n.unionLabel())
				}
				return binary.AppendVarint(b, nullIndex), nil
			}
			v = v.Elem()
		}
		return first.enc(binary.AppendVarint(b, firstIndex), v)
	}
	bd.dec = func(x any, p unsafe.Pointer) error {
		if x == nil {
			value(t, p).SetZero()
			return nil
		}
		m, ok := x.(map[string]any)
		if !ok || len(m) != 1 {
			return malformed("%s value decoded as %T", n.unionLabel(), x)
		}
		// Probing the few known branch names is cheaper than ranging over
		// the map.
		for _, br := range decs {
			inner, ok := m[br.name]
			switch {
			case !ok:
				continue
			case ptr:
				return decodeNew(br.bd, target, inner, p)
			}
			return br.bd.dec(inner, p)
		}
		name, _, _ := unionValue(x)
		return invalid("%s value cannot be stored in Go %v", name, t)
	}
	bd.bin = unionBin(n, t, byIndex)
	return nil
}

// boundField is a record field: a Go field, or, for a schema field the Go
// type lacks, the encoded default.
type boundField struct {
	name   string
	index  []int
	offset uintptr // of the Go field in the struct (embedded structs are inline)
	bd     *binding
	def    []byte
}

// field returns the struct field, without FieldByIndex's loop for the usual
// non-embedded case.
func (f *boundField) field(v reflect.Value) reflect.Value {
	if len(f.index) == 1 {
		return v.Field(f.index[0])
	}
	return v.FieldByIndex(f.index)
}

// record binds a struct to a record. Every Go field must be in the schema
// (data would be lost silently otherwise); schema fields missing from the Go
// type need a default, which is written instead.
func (b *binder) record(bd *binding, n *avroType, t reflect.Type) error {
	if t.Kind() != reflect.Struct || t == timeType {
		return mismatch(n, t)
	}
	gfs, err := structFields(t)
	if err != nil {
		return err
	}
	byName := make(map[string]goField, len(gfs))
	for _, gf := range gfs {
		byName[gf.name] = gf
	}
	var fields []boundField
	for _, f := range n.fields {
		gf, ok := byName[f.name]
		if !ok {
			if f.def == nil {
				return inField(f.name, incompatible("%v has no Go field for it and the schema gives no default", t))
			}
			def, err := encodeDefault(f)
			if err != nil {
				return inField(f.name, err)
			}
			fields = append(fields, boundField{name: f.name, def: def})
			continue
		}
		delete(byName, f.name)
		fbd, err := b.bind(f.typ, gf.typ)
		if err != nil {
			return inField(f.name, err)
		}
		fields = append(fields, boundField{name: f.name, index: gf.index, offset: gf.offset, bd: fbd})
	}
	for _, gf := range gfs {
		if _, left := byName[gf.name]; left {
			return incompatible("Go field %v.%s (%q) is not in %s", t, gf.goName, gf.name, n.name)
		}
	}
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		for i := range fields {
			f := &fields[i]
			if f.bd == nil {
				b = append(b, f.def...)
				continue
			}
			var err error
			if b, err = f.bd.enc(b, f.field(v)); err != nil {
				return nil, inField(f.name, err)
			}
		}
		return b, nil
	}
	bd.dec = func(x any, p unsafe.Pointer) error {
		m, ok := x.(map[string]any)
		if !ok {
			return malformed("record %s decoded as %T", n.name, x)
		}
		for i := range fields {
			f := &fields[i]
			if f.bd == nil {
				continue
			}
			fx, ok := m[f.name]
			if !ok {
				return inField(f.name, malformed("missing from the decoded record"))
			}
			if err := f.bd.dec(fx, unsafe.Add(p, f.offset)); err != nil {
				return inField(f.name, err)
			}
		}
		return nil
	}
	bd.bin = recordBin(fields)
	return nil
}

func (b *binder) array(bd *binding, n *avroType, t reflect.Type) error {
	if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
		return mismatch(n, t)
	}
	elem, err := b.bind(n.elem, t.Elem())
	if err != nil {
		return err
	}
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		// One block with all items, then the empty block that ends the array.
		if l := v.Len(); l > 0 {
			b = binary.AppendVarint(b, int64(l))
			for i := range l {
				var err error
				if b, err = elem.enc(b, v.Index(i)); err != nil {
					return nil, inIndex(i, err)
				}
			}
		}
		return append(b, 0), nil
	}
	size := t.Elem().Size()
	bd.dec = func(x any, p unsafe.Pointer) error {
		xs, ok := x.([]any)
		if !ok {
			return malformed("array decoded as %T", x)
		}
		base := p // a Go array is inline
		switch {
		case t.Kind() == reflect.Array:
			if len(xs) > t.Len() {
				return invalid("%d elements do not fit Go %v", len(xs), t)
			}
			value(t, p).SetZero()
		case len(xs) == 0:
			value(t, p).SetZero() // nil, as the zero value was before encoding
			return nil
		default:
			s := reflect.MakeSlice(t, len(xs), len(xs))
			base = s.UnsafePointer()
			value(t, p).Set(s)
		}
		for i, e := range xs {
			if err := elem.dec(e, unsafe.Add(base, uintptr(i)*size)); err != nil {
				return inIndex(i, err)
			}
		}
		return nil
	}
	bd.bin = arrayBin(elem, t)
	return nil
}

func (b *binder) mapping(bd *binding, n *avroType, t reflect.Type) error {
	if t.Kind() != reflect.Map || t.Key().Kind() != reflect.String {
		return mismatch(n, t)
	}
	elem, err := b.bind(n.elem, t.Elem())
	if err != nil {
		return err
	}
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		if v.Len() > 0 {
			// Sorted keys: the same value always encodes to the same bytes.
			keys := v.MapKeys()
			slices.SortFunc(keys, func(a, b reflect.Value) int { return strings.Compare(a.String(), b.String()) })
			b = binary.AppendVarint(b, int64(len(keys)))
			for _, kv := range keys {
				k := kv.String()
				if !utf8.ValidString(k) {
					return nil, inKey(k, invalid("map key is not valid UTF-8"))
				}
				var err error
				if b, err = elem.enc(appendString(b, k), v.MapIndex(kv)); err != nil {
					return nil, inKey(k, err)
				}
			}
		}
		return append(b, 0), nil
	}
	bd.dec = func(x any, p unsafe.Pointer) error {
		m, ok := x.(map[string]any)
		if !ok {
			return malformed("map decoded as %T", x)
		}
		// An empty map decodes to an empty, writable map, as encoding/json does.
		out := reflect.MakeMapWithSize(t, len(m))
		ev := reflect.New(t.Elem()).Elem() // reused: SetMapIndex copies it
		for k, e := range m {
			ev.SetZero()
			if err := elem.dec(e, ev.Addr().UnsafePointer()); err != nil {
				return inKey(k, err)
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		value(t, p).Set(out)
		return nil
	}
	bd.bin = mapBin(elem, t)
	return nil
}

// enum binds a string-kinded Go type (value = symbol) or an integer-kinded one
// (value = index into its AvroSymbols, or into the schema's symbols when the
// type does not implement Enum).
func (b *binder) enum(bd *binding, n *avroType, t reflect.Type) error {
	schemaIndex := make(map[string]int64, len(n.symbols))
	for i, s := range n.symbols {
		schemaIndex[s] = int64(i)
	}
	if t.Kind() == reflect.String {
		bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
			i, ok := schemaIndex[v.String()]
			if !ok {
				return nil, invalid("%q is not a symbol of enum %s %v", v.String(), n.name, n.symbols)
			}
			return binary.AppendVarint(b, i), nil
		}
		bd.dec = decodeString
		return nil
	}
	ik, ok := intKinds[t.Kind()]
	if !ok {
		return mismatch(n, t)
	}
	symbols := n.symbols
	if reflect.PointerTo(t).Implements(enumType) {
		symbols = reflect.New(t).Interface().(Enum).AvroSymbols()
	}
	toSchema := make([]int64, len(symbols)) // Go value → schema index, -1 if absent
	goIndex := make(map[string]int64, len(symbols))
	for i, s := range symbols {
		goIndex[s], toSchema[i] = int64(i), -1
		if si, ok := schemaIndex[s]; ok {
			toSchema[i] = si
		}
	}
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		i, ok := ik.get(v)
		if !ok || i < 0 || i >= int64(len(toSchema)) || toSchema[i] < 0 {
			return nil, invalid("%v is not a symbol of enum %s %v", v, n.name, n.symbols)
		}
		return binary.AppendVarint(b, toSchema[i]), nil
	}
	bd.dec = func(x any, p unsafe.Pointer) error {
		s, _ := x.(string)
		i, ok := goIndex[s]
		if !ok || !ik.set(p, i) {
			return invalid("enum symbol %q has no value in Go %v", s, t)
		}
		return nil
	}
	return nil
}

// intKind reads Go integers of either signedness as int64 and stores int64s
// into them, with range checks.
type intKind struct {
	get func(reflect.Value) (int64, bool) // false: an unsigned value above MaxInt64
	set func(p unsafe.Pointer, i int64) bool
}

func getSigned(v reflect.Value) (int64, bool) { return v.Int(), true }

func getUnsigned(v reflect.Value) (int64, bool) {
	u := v.Uint()
	return int64(u), u <= math.MaxInt64
}

func setSigned[T int | int8 | int16 | int32 | int64](p unsafe.Pointer, i int64) bool {
	if int64(T(i)) != i {
		return false
	}
	*(*T)(p) = T(i)
	return true
}

func setUnsigned[T uint | uint8 | uint16 | uint32 | uint64](p unsafe.Pointer, i int64) bool {
	if i < 0 || uint64(T(i)) != uint64(i) {
		return false
	}
	*(*T)(p) = T(i)
	return true
}

var intKinds = map[reflect.Kind]intKind{
	reflect.Int:    {getSigned, setSigned[int]},
	reflect.Int8:   {getSigned, setSigned[int8]},
	reflect.Int16:  {getSigned, setSigned[int16]},
	reflect.Int32:  {getSigned, setSigned[int32]},
	reflect.Int64:  {getSigned, setSigned[int64]},
	reflect.Uint:   {getUnsigned, setUnsigned[uint]},
	reflect.Uint8:  {getUnsigned, setUnsigned[uint8]},
	reflect.Uint16: {getUnsigned, setUnsigned[uint16]},
	reflect.Uint32: {getUnsigned, setUnsigned[uint32]},
	reflect.Uint64: {getUnsigned, setUnsigned[uint64]},
}

func decodeString(x any, p unsafe.Pointer) error {
	s, ok := x.(string)
	if !ok {
		return malformed("string decoded as %T", x)
	}
	*(*string)(p) = s
	return nil
}

func (b *binder) scalar(bd *binding, n *avroType, t reflect.Type) error {
	k := t.Kind()
	switch {
	case n.kind == kindLong && t == timeType:
		return bindTime(bd, n)
	case n.kind == kindInt || n.kind == kindLong:
		if ik, ok := intKinds[k]; ok {
			return bindInt(bd, n, t, ik)
		}
	case n.kind == kindBoolean && k == reflect.Bool:
		bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
			if v.Bool() {
				return append(b, 1), nil
			}
			return append(b, 0), nil
		}
		bd.dec = func(x any, p unsafe.Pointer) error {
			bv, ok := x.(bool)
			if !ok {
				return malformed("boolean decoded as %T", x)
			}
			*(*bool)(p) = bv
			return nil
		}
		return nil
	case (n.kind == kindFloat || n.kind == kindDouble) && (k == reflect.Float32 || k == reflect.Float64):
		return bindFloat(bd, n, t)
	case n.kind == kindString && k == reflect.String:
		bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
			s := v.String()
			if !utf8.ValidString(s) {
				return nil, invalid("string is not valid UTF-8")
			}
			return appendString(b, s), nil
		}
		bd.dec = decodeString
		bd.bin = func(r *binReader, p unsafe.Pointer) error {
			b, err := r.bytes()
			*(*string)(p) = string(b)
			return err
		}
		return nil
	case n.kind == kindBytes && k == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
			bs := v.Bytes()
			return append(binary.AppendVarint(b, int64(len(bs))), bs...), nil
		}
		bd.dec = func(x any, p unsafe.Pointer) error {
			bs, ok := x.([]byte)
			if !ok {
				return malformed("bytes decoded as %T", x)
			}
			if len(bs) == 0 {
				bs = nil
			}
			*(*[]byte)(p) = bytes.Clone(bs) // goavro's bytes alias the record buffer
			return nil
		}
		return nil
	case n.kind == kindFixed && k == reflect.Array && t.Elem().Kind() == reflect.Uint8 && t.Len() == n.size:
		bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
			if v.CanAddr() {
				return append(b, v.Bytes()...), nil
			}
			for i := range n.size { // an array passed by value is not addressable
				b = append(b, byte(v.Index(i).Uint()))
			}
			return b, nil
		}
		bd.dec = func(x any, p unsafe.Pointer) error {
			bs, ok := x.([]byte)
			if !ok || len(bs) != n.size {
				return malformed("fixed %s decoded as %T of length %d", n.name, x, len(bs))
			}
			copy(unsafe.Slice((*byte)(p), n.size), bs)
			return nil
		}
		return nil
	}
	return mismatch(n, t)
}

func bindTime(bd *binding, n *avroType) error {
	unit := timeUnit(n)
	if unit == 0 {
		return incompatible("time.Time needs a long with a timestamp logical type, not %s", n.label())
	}
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		tm, _ := reflect.TypeAssert[time.Time](v)
		return binary.AppendVarint(b, timeToLong(tm, unit)), nil
	}
	bd.dec = func(x any, p unsafe.Pointer) error {
		i, ok := x.(int64)
		if !ok {
			return malformed("timestamp decoded as %T", x)
		}
		*(*time.Time)(p) = longToTime(i, unit)
		return nil
	}
	bd.bin = func(r *binReader, p unsafe.Pointer) error {
		i, err := r.long()
		*(*time.Time)(p) = longToTime(i, unit)
		return err
	}
	return nil
}

func bindInt(bd *binding, n *avroType, t reflect.Type, ik intKind) error {
	long := n.kind == kindLong
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		i, ok := ik.get(v)
		switch {
		case !ok:
			return nil, invalid("%d overflows Avro long", v.Uint())
		case !long && (i < math.MinInt32 || i > math.MaxInt32):
			return nil, invalid("%d overflows Avro int", i)
		}
		return binary.AppendVarint(b, i), nil // Avro's zig-zag varint is Go's
	}
	bd.dec = func(x any, p unsafe.Pointer) error {
		var i int64
		switch xi := x.(type) {
		case int32:
			i = int64(xi)
		case int64:
			i = xi
		default:
			return malformed("%s decoded as %T", n.kind, x)
		}
		if !ik.set(p, i) {
			return invalid("%d overflows Go %v", i, t)
		}
		return nil
	}
	bd.bin = func(r *binReader, p unsafe.Pointer) error {
		x, err := r.int(long)
		switch {
		case err != nil:
			return err
		case !ik.set(p, x):
			return invalid("%d overflows Go %v", x, t)
		}
		return nil
	}
	return nil
}

func bindFloat(bd *binding, n *avroType, t reflect.Type) error {
	single := n.kind == kindFloat
	bd.enc = func(b []byte, v reflect.Value) ([]byte, error) {
		f := v.Float()
		if !single {
			return binary.LittleEndian.AppendUint64(b, math.Float64bits(f)), nil
		}
		if !fitsFloat32(f) {
			return nil, invalid("%g overflows Avro float", f)
		}
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(f))), nil
	}
	bd.dec = func(x any, p unsafe.Pointer) error {
		var f float64
		switch fx := x.(type) {
		case float32:
			f = float64(fx)
		case float64:
			f = fx
		default:
			return malformed("%s decoded as %T", n.kind, x)
		}
		if t.Kind() == reflect.Float64 {
			*(*float64)(p) = f
			return nil
		}
		if !fitsFloat32(f) {
			return invalid("%g overflows Go %v", f, t)
		}
		*(*float32)(p) = float32(f)
		return nil
	}
	return nil
}

func fitsFloat32(f float64) bool { return !math.IsInf(float64(float32(f)), 0) || math.IsInf(f, 0) }

func appendString(b []byte, s string) []byte {
	return append(binary.AppendVarint(b, int64(len(s))), s...)
}

// encodeDefault encodes a field's default once, with goavro, for records
// whose Go type lacks the field.
func encodeDefault(f *avroField) ([]byte, error) {
	native, err := defaultNative(f)
	if err != nil {
		return nil, incompatible("bad default %s: %w", f.def, err)
	}
	codec, err := goavro.NewCodec(schemaJSON(f.typ, false))
	if err != nil {
		return nil, fmt.Errorf("field type: %w", err)
	}
	def, err := codec.BinaryFromNative(nil, native)
	if err != nil {
		return nil, incompatible("bad default %s: %v", f.def, err)
	}
	return def, nil
}

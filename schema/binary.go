package schema

import (
	"encoding/binary"
	"errors"
	"math"
	"reflect"
	"unsafe"
)

// The direct decoder. When a payload's writer schema is the reader's own
// (the common case: an event decoded with the type that wrote it), Decode
// reads the Avro binary straight into the struct through each binding's bin,
// instead of building goavro's natives (a map per record) and walking them.
// Records, unions, pointers, arrays and maps are read here, and so are the
// common scalars (strings, integers, timestamps: no boxing on the hot
// path); other primitives, enums and fixed are read as the natives goavro
// would give and stored by the binding's dec, sharing its checks. A
// record whose Go type lacks a schema field (filled from its default on the
// goavro path) has no bin: it decodes through goavro (errNoFast).

// errNoFast reports a binding without a direct decoder.
var errNoFast = errors.New("schema: no direct decoder for this type")

func noFast(*binReader, unsafe.Pointer) error { return errNoFast }

// binReader reads Avro binary from a payload.
type binReader struct{ b []byte }

func (r *binReader) long() (int64, error) {
	v, n := binary.Varint(r.b) // Avro's zig-zag varint is Go's
	if n <= 0 {
		return 0, malformed("truncated or overlong varint")
	}
	r.b = r.b[n:]
	return v, nil
}

// int reads an Avro long, or an int (checked to fit 32 bits).
func (r *binReader) int(long bool) (int64, error) {
	v, err := r.long()
	if err == nil && !long && (v < math.MinInt32 || v > math.MaxInt32) {
		err = malformed("int %d out of range", v)
	}
	return v, err
}

// bytes reads a length-prefixed run (bytes and string).
func (r *binReader) bytes() ([]byte, error) {
	size, err := r.long()
	if err != nil {
		return nil, err
	}
	return r.take(size)
}

func (r *binReader) take(n int64) ([]byte, error) {
	if n < 0 || n > int64(len(r.b)) {
		return nil, malformed("length %d with %d bytes left", n, len(r.b))
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out, nil
}

// native reads a primitive, enum or fixed as goavro's native of the same
// schema (int32 for int, a symbol string for an enum, ...).
func (r *binReader) native(n *avroType) (any, error) {
	switch n.kind {
	case kindNull:
		return nil, nil
	case kindBoolean:
		b, err := r.take(1)
		switch {
		case err != nil:
			return nil, err
		case b[0] > 1:
			return nil, malformed("boolean byte %d", b[0])
		}
		return b[0] == 1, nil
	case kindInt:
		v, err := r.int(false)
		return int32(v), err
	case kindLong:
		return r.long()
	case kindFloat:
		b, err := r.take(4)
		if err != nil {
			return nil, err
		}
		return math.Float32frombits(binary.LittleEndian.Uint32(b)), nil
	case kindDouble:
		b, err := r.take(8)
		if err != nil {
			return nil, err
		}
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), nil
	case kindBytes, kindString:
		b, err := r.bytes()
		if err != nil || n.kind == kindBytes {
			return b, err
		}
		return string(b), nil
	case kindFixed:
		return r.take(int64(n.size))
	case kindEnum:
		i, err := r.long()
		if err != nil {
			return nil, err
		}
		if i < 0 || i >= int64(len(n.symbols)) {
			return nil, malformed("enum %s index %d of %d symbols", n.name, i, len(n.symbols))
		}
		return n.symbols[i], nil
	}
	return nil, errNoFast
}

// nativeBin reads n as a native and stores it with dec.
func nativeBin(n *avroType, dec func(any, unsafe.Pointer) error) func(*binReader, unsafe.Pointer) error {
	return func(r *binReader, p unsafe.Pointer) error {
		x, err := r.native(n)
		if err != nil {
			return err
		}
		return dec(x, p)
	}
}

// recordBin reads the fields in schema order. A field the Go type lacks
// (read with its default on the goavro path) would need skipping: none of
// that here.
func recordBin(fields []boundField) func(*binReader, unsafe.Pointer) error {
	for _, f := range fields {
		if f.bd == nil {
			return noFast
		}
	}
	return func(r *binReader, p unsafe.Pointer) error {
		for i := range fields {
			f := &fields[i]
			if err := f.bd.bin(r, unsafe.Add(p, f.offset)); err != nil {
				return inField(f.name, err)
			}
		}
		return nil
	}
}

// binNew decodes into a fresh value of type t and stores the pointer to it
// at p, as decodeNew does.
func binNew(elem *binding, t reflect.Type, r *binReader, p unsafe.Pointer) error {
	np := reflect.New(t).UnsafePointer()
	if err := elem.bin(r, np); err != nil {
		return err
	}
	*(*unsafe.Pointer)(p) = np
	return nil
}

// unionBin reads the branch index, then the branch: null stores the zero
// value (nil for a pointer), like the union's dec.
func unionBin(n *avroType, t reflect.Type, byIndex []*binding) func(*binReader, unsafe.Pointer) error {
	ptr := t.Kind() == reflect.Pointer
	return func(r *binReader, p unsafe.Pointer) error {
		i, err := r.long()
		if err != nil {
			return err
		}
		if i < 0 || i >= int64(len(n.branches)) {
			return malformed("%s branch index %d", n.unionLabel(), i)
		}
		br := byIndex[i]
		switch {
		case n.branches[i].kind == kindNull:
			value(t, p).SetZero()
			return nil
		case br == nil:
			return invalid("%s value cannot be stored in Go %v", n.branches[i].branchName(), t)
		case ptr:
			return binNew(br, t.Elem(), r, p)
		}
		return br.bin(r, p)
	}
}

// blocks reads Avro's blocked encoding of arrays and maps: counts of items
// until a zero count (a negative count is followed by the block's size in
// bytes, which is not needed here). Every item takes at least a byte, so a
// count beyond the bytes left is refused before anything is allocated.
func (r *binReader) blocks(item func(i int) error) error {
	for i := 0; ; {
		count, err := r.long()
		if err != nil {
			return err
		}
		if count == 0 {
			return nil
		}
		if count < 0 {
			count = -count
			if _, err := r.long(); err != nil {
				return err
			}
		}
		if count < 0 || count > int64(len(r.b)) {
			return malformed("block of %d items with %d bytes left", count, len(r.b))
		}
		for range count {
			if err := item(i); err != nil {
				return err
			}
			i++
		}
	}
}

// arrayBin fills a slice (grown per block) or a Go array (zeroed first).
func arrayBin(elem *binding, t reflect.Type) func(*binReader, unsafe.Pointer) error {
	size := t.Elem().Size()
	return func(r *binReader, p unsafe.Pointer) error {
		v := value(t, p)
		v.SetZero()
		return r.blocks(func(i int) error {
			switch {
			case t.Kind() == reflect.Array && i >= t.Len():
				return invalid("more elements than Go %v holds", t)
			case t.Kind() == reflect.Slice:
				v.Grow(1)
				v.SetLen(i + 1)
			}
			base := p
			if t.Kind() == reflect.Slice {
				base = v.UnsafePointer()
			}
			if err := elem.bin(r, unsafe.Add(base, uintptr(i)*size)); err != nil {
				return inIndex(i, err)
			}
			return nil
		})
	}
}

// mapBin builds a new map (empty, not nil, when there are no entries, as
// the map's dec does).
func mapBin(elem *binding, t reflect.Type) func(*binReader, unsafe.Pointer) error {
	return func(r *binReader, p unsafe.Pointer) error {
		out := reflect.MakeMap(t)
		ev := reflect.New(t.Elem()).Elem() // reused: SetMapIndex copies it
		err := r.blocks(func(int) error {
			k, err := r.native(&avroType{kind: kindString})
			if err != nil {
				return err
			}
			ev.SetZero()
			if err := elem.bin(r, ev.Addr().UnsafePointer()); err != nil {
				return inKey(k.(string), err)
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
			return nil
		})
		if err != nil {
			return err
		}
		value(t, p).Set(out)
		return nil
	}
}

package main

import (
	"encoding/binary"
	"hash/maphash"
	"math"
	"reflect"
	"time"
)

// fingerprint hashes a retrieved value (an object's properties) by walking it: the store
// re-encodes an object only when this changes, since XML encoding is what a save spends its
// time on (bench/bench_vsphere_durable.py). Stable within one process only (maphash seed).
var fingerprintSeed = maphash.MakeSeed()

var timeType = reflect.TypeOf(time.Time{})

func fingerprint(v interface{}) uint64 {
	var h maphash.Hash
	h.SetSeed(fingerprintSeed)
	walk(&h, reflect.ValueOf(v))
	return h.Sum64()
}

func walk(h *maphash.Hash, v reflect.Value) {
	var b [8]byte
	num := func(u uint64) {
		binary.LittleEndian.PutUint64(b[:], u)
		_, _ = h.Write(b[:])
	}
	if !v.IsValid() {
		_ = h.WriteByte(0)
		return
	}
	switch v.Kind() {
	case reflect.Ptr, reflect.Interface:
		if v.IsNil() {
			_ = h.WriteByte(0)
			return
		}
		_ = h.WriteByte(1)
		if v.Kind() == reflect.Interface {
			_, _ = h.WriteString(v.Elem().Type().String())
		}
		walk(h, v.Elem())
	case reflect.Struct:
		if v.Type() == timeType {
			t := v.Interface().(time.Time)
			num(uint64(t.UnixNano()))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			walk(h, v.Field(i))
		}
	case reflect.Slice, reflect.Array:
		num(uint64(v.Len()))
		for i := 0; i < v.Len(); i++ {
			walk(h, v.Index(i))
		}
	case reflect.String:
		num(uint64(v.Len()))
		_, _ = h.WriteString(v.String())
	case reflect.Bool:
		if v.Bool() {
			_ = h.WriteByte(1)
		} else {
			_ = h.WriteByte(0)
		}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		num(uint64(v.Int()))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		num(v.Uint())
	case reflect.Float32, reflect.Float64:
		num(math.Float64bits(v.Float()))
	default: // maps, funcs, channels: none in vim25 types; never equal, so always re-encoded
		num(uint64(time.Now().UnixNano()))
	}
}

package sqlite

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"
)

// jsonEqual reports whether two JSON documents have the same value, as
// PostgreSQL's jsonb compares them: key order and white space do not
// matter, numbers compare by value (1, 1.0 and 1e0 are equal), and of
// repeated keys the last counts. Invalid documents are never equal.
func jsonEqual(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return json.Valid(a)
	}
	x, okx := decodeJSON(a)
	y, oky := decodeJSON(b)
	return okx && oky && equalValues(x, y)
}

func decodeJSON(data []byte) (any, bool) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, false
	}
	return v, !d.More()
}

// equalValues compares values decoded with json.Decoder.UseNumber.
func equalValues(x, y any) bool {
	switch x := x.(type) {
	case map[string]any:
		y, ok := y.(map[string]any)
		return ok && equalObjects(x, y)
	case []any:
		y, ok := y.([]any)
		return ok && equalArrays(x, y)
	case json.Number:
		y, ok := y.(json.Number)
		return ok && canonicalNumber(string(x)) == canonicalNumber(string(y))
	default: // string, bool, nil
		return x == y
	}
}

func equalObjects(x, y map[string]any) bool {
	if len(x) != len(y) {
		return false
	}
	for k, xv := range x {
		yv, ok := y[k]
		if !ok || !equalValues(xv, yv) {
			return false
		}
	}
	return true
}

func equalArrays(x, y []any) bool {
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if !equalValues(x[i], y[i]) {
			return false
		}
	}
	return true
}

// canonicalNumber rewrites a JSON number literal as sign, significant
// digits and decimal exponent ("-1234e3"), so that literals of the same
// value are the same string. Zero is "0" whatever its sign. A literal
// whose exponent does not fit in an int64 is returned as it is.
func canonicalNumber(lit string) string {
	mant, exp := lit, int64(0)
	if i := strings.IndexAny(lit, "eE"); i >= 0 {
		e, err := strconv.ParseInt(lit[i+1:], 10, 64)
		if err != nil {
			return lit
		}
		mant, exp = lit[:i], e
	}
	sign := ""
	if strings.HasPrefix(mant, "-") {
		sign, mant = "-", mant[1:]
	}
	digits := mant
	if i := strings.IndexByte(mant, '.'); i >= 0 {
		digits = mant[:i] + mant[i+1:]
		exp -= int64(len(mant) - i - 1)
	}
	digits = strings.TrimLeft(digits, "0")
	trimmed := strings.TrimRight(digits, "0")
	exp += int64(len(digits) - len(trimmed))
	if trimmed == "" {
		return "0"
	}
	return sign + trimmed + "e" + strconv.FormatInt(exp, 10)
}

package sqlite

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/imageservice/imageservice/eventstore"
)

// TestMetadataFields keeps the metadata columns that reads select in step
// with eventstore.Metadata: a field added there must be read back too.
func TestMetadataFields(t *testing.T) {
	typ := reflect.TypeFor[eventstore.Metadata]()
	var names []string
	for f := range typ.Fields() {
		if f.Type.Kind() != reflect.String {
			t.Errorf("Metadata.%s is a %s: scanEvent reads every field as text", f.Name, f.Type)
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	if !slices.Equal(names, metadataFields) {
		t.Errorf("metadataFields = %q, eventstore.Metadata has %q: update metadataFields and scanEvent", metadataFields, names)
	}
}

func TestJSONEqual(t *testing.T) {
	cases := []struct {
		a, b string
		want bool
	}{
		{`{"a":1,"b":[1,2]}`, `{ "b": [1, 2], "a": 1 }`, true},
		{`{"n":1}`, `{"n":1.0}`, true},
		{`{"n":100}`, `{"n":1e2}`, true},
		{`{"n":0.5}`, `{"n":5E-1}`, true},
		{`{"n":0}`, `{"n":-0.0}`, true},
		{`{"n":-12.340e+5}`, `{"n":-1234000}`, true},
		{`{"n":9007199254740993}`, `{"n":9007199254740992}`, false},
		{`{"n":1}`, `{"n":-1}`, false},
		{`{"n":1}`, `{"n":"1"}`, false},
		{`{"a":null}`, `{}`, false},
		{`{"a":[1,2]}`, `{"a":[2,1]}`, false},
		{`{"a":{"b":true}}`, `{"a":{"b":false}}`, false},
		{`{"a":1,"a":2}`, `{"a":2}`, true}, // the last of repeated keys counts, as in jsonb
		{`{"a":1}`, `{"a":1} {}`, false},
		{`{"a":`, `{"a":`, false},
	}
	for _, c := range cases {
		if got := jsonEqual([]byte(c.a), []byte(c.b)); got != c.want {
			t.Errorf("jsonEqual(%s, %s) = %v, want %v", c.a, c.b, got, c.want)
		}
		if got := jsonEqual([]byte(c.b), []byte(c.a)); got != c.want {
			t.Errorf("jsonEqual(%s, %s) = %v, want %v", c.b, c.a, got, c.want)
		}
	}
}

func TestCanonicalNumber(t *testing.T) {
	for lit, want := range map[string]string{
		"0": "0", "-0": "0", "0.000": "0", "0e99": "0",
		"1": "1e0", "10": "1e1", "1.50": "15e-1", "-0.015": "-15e-3", "12e-1": "12e-1",
		"1e99999999999999999999": "1e99999999999999999999",
	} {
		if got := canonicalNumber(lit); got != want {
			t.Errorf("canonicalNumber(%s) = %s, want %s", lit, got, want)
		}
	}
}

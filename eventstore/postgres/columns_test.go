package postgres

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
			t.Errorf("Metadata.%s is a %s: scanEvents reads every field as text", f.Name, f.Type)
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		names = append(names, name)
	}
	if !slices.Equal(names, metadataFields) {
		t.Errorf("metadataFields = %q, eventstore.Metadata has %q: update metadataFields and scanEvents", metadataFields, names)
	}
}

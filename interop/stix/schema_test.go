package stix

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestSchemasValidateSamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct{ Objects []map[string]any }
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatal(err)
		}
		for i, o := range bundle.Objects {
			if err := Validate(o); err != nil {
				t.Errorf("%s objects[%d]: %v", f, i, err)
			}
		}
	}
}

package main

import (
	"os"
	"strings"
	"testing"
)

// TestREADMEDocumentsEverySetting keeps the README's configuration table
// in step with the settings the binary reads.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		def := ""
		if s.def != "" {
			def = " `" + s.def + "`"
		}
		row := "| `" + s.name + "` |" + def + " | " + s.doc + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row:\n%s", row)
		}
	}
	for name := range subcommands() {
		if !strings.Contains(string(readme), "| `"+name+"`") {
			t.Errorf("README does not list the command %s", name)
		}
	}
}

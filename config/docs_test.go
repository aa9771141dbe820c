package config

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"keepstate/conntrack"
)

// TestDocsCoverEverySetting keeps docs/config.md honest: every setting appears in a
// table row with its default, every companion setting is named, and the full XML
// example (the last) parses.
func TestDocsCoverEverySetting(t *testing.T) {
	doc, err := os.ReadFile("../docs/config.md")
	if err != nil {
		t.Skip("docs/config.md not found:", err)
	}
	text := string(doc)
	for _, s := range AllSettings() {
		def := s.Default
		if def == "" {
			def = "(empty)"
		}
		if !strings.Contains(text, "| "+s.Name+" | "+def+" |") {
			t.Errorf("docs/config.md lacks a row \"| %s | %s |\"", s.Name, def)
		}
	}
	// The timeouts' rows are conntrack's table itself: what they apply to and where
	// the default comes from, word for word.
	for _, td := range conntrack.TimeoutDefs() {
		row := fmt.Sprintf("| %s | %d | %s | %s |", td.Name, int64(td.Default/time.Second), td.Conns, td.Source)
		if !strings.Contains(text, row) {
			t.Errorf("docs/config.md lacks the row of conntrack's table of timeouts:\n%s", row)
		}
	}
	var companions []string
	for _, d := range hostDefs {
		companions = append(companions, d.name)
	}
	for _, d := range logDefs {
		companions = append(companions, d.name)
	}
	for _, name := range companions {
		if !strings.Contains(text, "`"+name+"`") {
			t.Errorf("docs/config.md does not document companion setting %s", name)
		}
	}
	blocks := strings.Split(text, "```xml\n")[1:]
	if len(blocks) < 2 {
		t.Fatalf("found %d XML examples", len(blocks))
	}
	full := blocks[len(blocks)-1]
	full = full[:strings.Index(full, "```")]
	c, err := Parse("docs/config.md example", []byte(full))
	if err != nil {
		t.Fatal(err)
	}
	story, err := Parse("story1.cfg", readFile(t, "testdata/story1.cfg"))
	if err != nil {
		t.Fatal(err)
	}
	if string(Marshal(c)) != string(Marshal(story)) {
		t.Error("the example of docs/config.md is not testdata/story1.cfg")
	}
}

package yamlfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// The examples in docs/scripts.md are what authors copy; they must pass the checker.
func TestDocExamples(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "docs", "scripts.md"))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, part := range strings.Split(string(doc), "```yaml\n")[1:] {
		body, _, _ := strings.Cut(part, "```")
		blocks = append(blocks, body)
	}
	var steps, config string
	for _, b := range blocks {
		switch {
		case strings.Contains(b, "# say:"):
			steps = b
		case strings.Contains(b, "price_lists:"):
			config = b
		}
	}
	if steps == "" || config == "" {
		t.Fatalf("docs lost their step or config example (%d yaml blocks)", len(blocks))
	}
	script := "id: doc\nlangs: [ru, en]\nsteps:\n" + steps
	set, err := LoadScripts(fstest.MapFS{"doc.yaml": {Data: []byte(script)}})
	if err != nil {
		t.Fatalf("step examples (lines offset by 3):\n%v", err)
	}
	kinds := map[string]bool{}
	for _, st := range set.Get("doc", "en").Steps {
		kinds[st.Kind] = true
	}
	for _, k := range Kinds {
		if !kinds[k] {
			t.Errorf("docs have no example of a %s step", k)
		}
	}
	cfg, err := ParseConfig("docs config", []byte(config))
	if err != nil {
		t.Fatalf("config example:\n%v", err)
	}
	if err := cfg.CheckScripts(mustLoadShipped(t)); err != nil {
		t.Errorf("config example against shipped scripts: %v", err)
	}
}

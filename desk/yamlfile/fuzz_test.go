package yamlfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/calldesk/desk/scripts"
)

// FuzzLoadScripts feeds arbitrary bytes to the loader. It must never panic; a
// rejected file gets file:line errors for that file only; an accepted one gives
// scripts whose every branch points at a real step.
func FuzzLoadScripts(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "broken", "*.yaml"))
	for _, p := range seeds {
		if data, err := os.ReadFile(p); err == nil {
			f.Add(data)
		}
	}
	if data, err := scripts.FS.ReadFile("default.yaml"); err == nil {
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		set, err := LoadScripts(fstest.MapFS{"f.yaml": {Data: data}})
		if err != nil {
			var ve ValidationErrors
			if !errors.As(err, &ve) || len(ve) == 0 {
				t.Fatalf("error is not ValidationErrors: %v", err)
			}
			for _, e := range ve {
				if e.File != "f.yaml" || e.Line < 0 || e.Reason == "" {
					t.Fatalf("malformed error %+v", e)
				}
				if !strings.HasPrefix(e.Error(), "f.yaml") {
					t.Fatalf("error does not start with the file: %q", e.Error())
				}
			}
			return
		}
		for _, id := range set.IDs() {
			for _, lang := range set.Langs(id) {
				s := set.Get(id, lang)
				steps := map[string]bool{}
				for _, st := range s.Steps {
					steps[st.ID] = true
				}
				for _, st := range s.Steps {
					if st.Next != "" && !steps[st.Next] {
						t.Fatalf("step %q leads to missing %q", st.ID, st.Next)
					}
					for _, o := range st.Options {
						if o.Next != "" && !steps[o.Next] {
							t.Fatalf("option %q leads to missing %q", o.ID, o.Next)
						}
					}
				}
			}
		}
	})
}

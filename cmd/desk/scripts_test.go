package main

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestScriptsCheck runs `desk scripts check` as a user would before a deploy: the
// shipped scripts pass, and a broken one fails with file:line: reason.
func TestScriptsCheck(t *testing.T) {
	broken := t.TempDir()
	good, _ := os.ReadFile(filepath.Join("..", "..", "scripts", "default.yaml"))
	// The same script with one step of a kind nobody knows, on a line we can name.
	text := strings.Replace(string(good), "kind: meeting", "kind: meetup", 1)
	line := 1 + strings.Count(text[:strings.Index(text, "kind: meetup")], "\n")
	os.WriteFile(filepath.Join(broken, "default.yaml"), []byte(text), 0o644)

	for _, tc := range []struct {
		name    string
		dir     string
		wantErr bool
		want    *regexp.Regexp
	}{
		{"shipped scripts", filepath.Join("..", "..", "scripts"), false, regexp.MustCompile(`ok`)},
		{"unknown step kind", broken, true, regexp.MustCompile(`default\.yaml:` + strconv.Itoa(line) + `: .*meetup`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := &syncBuffer{}
			err := run(t.Context(), []string{"scripts", "check", tc.dir}, func(string) string { return "" }, out)
			var ex exitError
			if tc.wantErr != (err != nil) || (err != nil && (!errors.As(err, &ex) || ex.code != 1)) {
				t.Fatalf("scripts check %s: err %v\n%s", tc.dir, err, out.String())
			}
			if !tc.want.MatchString(out.String()) {
				t.Errorf("scripts check output lacks %s:\n%s", tc.want, out.String())
			}
		})
	}
}

package yamlfile

import (
	"fmt"
	"sort"
	"strings"

	"github.com/calldesk/desk/desk"
	"go.yaml.in/yaml/v3"
)

// ValidationError is one mistake in a YAML file, at the line an editor should jump to.
type ValidationError struct {
	File   string
	Line   int // 0 when the mistake concerns the whole file
	Reason string
}

func (e *ValidationError) Error() string {
	if e.Line <= 0 {
		return e.File + ": " + e.Reason
	}
	return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Reason)
}

// Is lets callers test any validation failure with errors.Is(err, desk.ErrInvalid).
func (e *ValidationError) Is(target error) bool { return target == desk.ErrInvalid }

// ValidationErrors is every mistake found, ordered by file and line.
type ValidationErrors []*ValidationError

// Error prints one mistake per line, each as file:line: reason.
func (v ValidationErrors) Error() string {
	lines := make([]string, len(v))
	for i, e := range v {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes the single errors to errors.Is and errors.As.
func (v ValidationErrors) Unwrap() []error {
	errs := make([]error, len(v))
	for i, e := range v {
		errs[i] = e
	}
	return errs
}

func (v ValidationErrors) sort() {
	sort.SliceStable(v, func(i, j int) bool {
		if v[i].File != v[j].File {
			return v[i].File < v[j].File
		}
		return v[i].Line < v[j].Line
	})
}

// errOrNil keeps a nil slice from becoming a non-nil error interface.
func (v ValidationErrors) errOrNil() error {
	if len(v) == 0 {
		return nil
	}
	v.sort()
	return v
}

// collector gathers the mistakes of one file.
type collector struct {
	file string
	errs *ValidationErrors
}

func (c *collector) at(line int, format string, args ...any) {
	*c.errs = append(*c.errs, &ValidationError{File: c.file, Line: line, Reason: fmt.Sprintf(format, args...)})
}

func (c *collector) add(n *yaml.Node, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	c.at(line, format, args...)
}

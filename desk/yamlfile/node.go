package yamlfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var yamlLineErr = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseDoc decodes the one YAML document of a file. Syntax errors are reported with
// the parser's line; nil means the file cannot be read further.
// With allowEmpty, a file without content returns nil and no error.
func (c *collector) parseDoc(data []byte, allowEmpty bool) (root *yaml.Node) {
	defer func() {
		// The parser is not ours; a panic on hostile input must become an error,
		// not take the desk down at start.
		if r := recover(); r != nil {
			c.at(0, "yaml parser failed: %v", r)
			root = nil
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			if !allowEmpty {
				c.at(0, "empty file")
			}
			return nil
		}
		c.yamlErr(err)
		return nil
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		c.add(&extra, "a file holds one document; remove the second one")
	} else if !errors.Is(err, io.EOF) {
		c.yamlErr(err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 || isNull(doc.Content[0]) {
		if !allowEmpty {
			c.at(0, "empty file")
		}
		return nil
	}
	root = doc.Content[0]
	if !c.noAliases(root) {
		return nil
	}
	return root
}

// parserProblems are the messages of yaml.v3's parser (as opposed to its scanner).
// For them the library reports the 0-based line of the enclosing collection, so
// one is added to point an editor at the right line.
var parserProblems = map[string]bool{
	"did not find expected ',' or ']'":       true,
	"did not find expected ',' or '}'":       true,
	"did not find expected '-' indicator":    true,
	"did not find expected <document start>": true,
	"did not find expected <stream-start>":   true,
	"did not find expected key":              true,
	"did not find expected node content":     true,
	"found duplicate %TAG directive":         true,
	"found duplicate %YAML directive":        true,
	"found incompatible YAML document":       true,
	"found undefined tag handle":             true,
}

func (c *collector) yamlErr(err error) {
	msg := err.Error()
	for _, l := range strings.Split(msg, "\n") {
		if m := yamlLineErr.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			if parserProblems[m[2]] {
				n++
			}
			c.at(n, "%s", m[2])
			return
		}
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	// The library leaves out "line 0", so a message without a line is about the
	// first line, unless it comes from the reader, which has no position at all.
	line := 1
	for _, r := range []string{"UTF-8", "Unicode", "control characters", "input error"} {
		if strings.Contains(msg, r) {
			line = 0
		}
	}
	c.at(line, "%s", msg)
}

// noAliases rejects anchors and aliases: they make a line number ambiguous (the
// error is in the anchor, the use is elsewhere) and a crafted file could make
// expansion explode.
func (c *collector) noAliases(n *yaml.Node) bool {
	ok := true
	var walk func(*yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.AliasNode {
			c.add(n, "aliases (*%s) are not supported; repeat the value", n.Value)
			ok = false
			return
		}
		if n.Anchor != "" {
			c.add(n, "anchors (&%s) are not supported", n.Anchor)
			ok = false
		}
		for _, ch := range n.Content {
			walk(ch)
		}
	}
	walk(n)
	return ok
}

// mapping is a YAML mapping with its keys checked.
type mapping struct {
	node *yaml.Node
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
}

// get returns the value of key, or nil when it is absent or null.
func (m mapping) get(key string) *yaml.Node {
	v := m.vals[key]
	if v == nil || isNull(v) {
		return nil
	}
	return v
}

// line is where key is written, or else where the mapping starts, for "key missing" errors.
func (m mapping) line(key string) *yaml.Node {
	if k := m.keys[key]; k != nil {
		return k
	}
	return m.node
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// mapping checks that n is a mapping whose keys are all known and unique.
func (c *collector) mapping(n *yaml.Node, what string, known ...string) (mapping, bool) {
	m := mapping{node: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		c.add(n, "%s must be a mapping (key: value), not %s", what, kindName(n))
		return m, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			c.add(k, "%s: keys must be plain words", what)
			continue
		}
		if first, dup := m.keys[k.Value]; dup {
			c.add(k, "%s: duplicate key %q (first at line %d)", what, k.Value, first.Line)
			continue
		}
		if known != nil && !contains(known, k.Value) {
			if s := closest(k.Value, known); s != "" {
				c.add(k, "%s: unknown key %q (did you mean %q?)", what, k.Value, s)
			} else {
				c.add(k, "%s: unknown key %q (known: %s)", what, k.Value, strings.Join(known, ", "))
			}
			continue
		}
		m.keys[k.Value] = k
		m.vals[k.Value] = v
	}
	return m, true
}

// str reads a scalar as text. Numbers and booleans are taken as written, because
// an id "2" or a choice "1-10" is text to the desk.
func (c *collector) str(n *yaml.Node, what string) (string, bool) {
	if n.Kind != yaml.ScalarNode || isNull(n) {
		c.add(n, "%s must be a single value, not %s", what, kindName(n))
		return "", false
	}
	return n.Value, true
}

// duration reads a Go duration from min to max; what names the key in errors,
// example shows a valid value.
func (c *collector) duration(n *yaml.Node, what, example string, min, max time.Duration) (time.Duration, bool) {
	s, ok := c.str(n, what)
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	switch {
	case err != nil:
		c.add(n, "%s %q is not a duration such as %s", what, s, example)
	case d < min || d > max:
		// "5m", not "5m0s": the bounds as a person writes them in the config.
		short := func(d time.Duration) string {
			s := d.String()
			if strings.HasSuffix(s, "m0s") {
				s = strings.TrimSuffix(s, "0s")
			}
			if strings.HasSuffix(s, "h0m") {
				s = strings.TrimSuffix(s, "0m")
			}
			return s
		}
		c.add(n, "%s %s must be between %s and %s", what, d, short(min), short(max))
	default:
		return d, true
	}
	return 0, false
}

func (c *collector) boolean(n *yaml.Node, what string) (bool, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!bool" {
		b, err := strconv.ParseBool(n.Value)
		if err == nil {
			return b, true
		}
	}
	c.add(n, "%s must be true or false, not %q", what, n.Value)
	return false, false
}

func (c *collector) seq(n *yaml.Node, what string) ([]*yaml.Node, bool) {
	if n.Kind != yaml.SequenceNode {
		c.add(n, "%s must be a list, not %s", what, kindName(n))
		return nil, false
	}
	return n.Content, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		if isNull(n) {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "nothing"
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// closest suggests the known word a typo most likely meant.
func closest(s string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := distance(s, k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// distance is the Levenshtein distance, enough for typo suggestions on short keys.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 30
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

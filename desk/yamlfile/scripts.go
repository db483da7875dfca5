package yamlfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/calldesk/desk/desk"
	"go.yaml.in/yaml/v3"
)

// maxScriptFile bounds what is read of one file; a script is a few kilobytes.
const maxScriptFile = 1 << 20

// ScriptSet is every loaded script in every language it was written in.
// It is immutable once loaded and safe for concurrent use.
type ScriptSet struct {
	byID map[string]*scriptEntry
}

type scriptEntry struct {
	langs  []string // the default first
	byLang map[string]*desk.Script
}

// Get returns the script id in lang, or in the script's default language when it
// was not written in lang ("en-GB" is tried as "en" first). It returns nil when
// there is no such script. The result is the caller's own copy.
func (s *ScriptSet) Get(id, lang string) *desk.Script {
	if s == nil {
		return nil
	}
	e := s.byID[id]
	if e == nil {
		return nil
	}
	lang = strings.ToLower(lang)
	sc := e.byLang[lang]
	if sc == nil {
		base, _, _ := strings.Cut(lang, "-")
		base, _, _ = strings.Cut(base, "_")
		sc = e.byLang[base]
	}
	if sc == nil {
		sc = e.byLang[e.langs[0]]
	}
	return cloneScript(sc)
}

// Map returns every script in lang (each falling back to its default language),
// by id: the form the switchboard takes. The scripts are the caller's own copies.
func (s *ScriptSet) Map(lang string) map[string]*desk.Script {
	out := map[string]*desk.Script{}
	for _, id := range s.IDs() {
		out[id] = s.Get(id, lang)
	}
	return out
}

// Has reports whether a script with this id was loaded.
func (s *ScriptSet) Has(id string) bool { return s != nil && s.byID[id] != nil }

// IDs lists the loaded script ids, sorted.
func (s *ScriptSet) IDs() []string {
	if s == nil {
		return nil
	}
	return sortedKeys(s.byID)
}

// Langs lists the languages of a script, its default language first.
func (s *ScriptSet) Langs(id string) []string {
	if !s.Has(id) {
		return nil
	}
	return append([]string(nil), s.byID[id].langs...)
}

// LoadScripts reads every *.yaml and *.yml file of fsys (hidden directories
// skipped), one script per file, and validates them all. On any mistake it returns
// a nil set and ValidationErrors listing every mistake as file:line: reason, with
// file names relative to fsys.
func LoadScripts(fsys fs.FS) (*ScriptSet, error) {
	return loadScripts(fsys, "")
}

// LoadScriptsDir is LoadScripts on a directory, with errors naming dir/file so an
// editor can open them from the terminal.
func LoadScriptsDir(dir string) (*ScriptSet, error) {
	return loadScripts(os.DirFS(dir), dir)
}

// Check validates the scripts of fsys, prints every mistake to w as
// file:line: reason (or a one-line summary when there is none) and returns the
// number of mistakes, for `desk scripts check`.
func Check(fsys fs.FS, w io.Writer) int {
	return report(loadScripts(fsys, ""))(w)
}

// CheckDir is Check on a directory, naming files as dir/file.
func CheckDir(dir string, w io.Writer) int {
	return report(loadScripts(os.DirFS(dir), dir))(w)
}

func report(set *ScriptSet, err error) func(io.Writer) int {
	return func(w io.Writer) int {
		if err != nil {
			ve, ok := err.(ValidationErrors)
			if !ok {
				fmt.Fprintln(w, err)
				return 1
			}
			for _, e := range ve {
				fmt.Fprintln(w, e)
			}
			return len(ve)
		}
		parts := make([]string, 0, len(set.byID))
		for _, id := range set.IDs() {
			parts = append(parts, fmt.Sprintf("%s (%s)", id, strings.Join(set.byID[id].langs, ", ")))
		}
		fmt.Fprintf(w, "ok: %d script(s): %s\n", len(parts), strings.Join(parts, "; "))
		return 0
	}
}

func loadScripts(fsys fs.FS, prefix string) (*ScriptSet, error) {
	display := func(name string) string {
		if prefix == "" {
			return name
		}
		return filepath.Join(prefix, filepath.FromSlash(name))
	}
	var errs ValidationErrors
	var files []string
	walkErr := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &ValidationError{File: display(p), Reason: err.Error()})
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			return nil
		}
		if ext := path.Ext(p); ext == ".yaml" || ext == ".yml" {
			files = append(files, p)
		}
		return nil
	})
	if walkErr != nil {
		errs = append(errs, &ValidationError{File: display("."), Reason: walkErr.Error()})
	}
	if len(files) == 0 && len(errs) == 0 {
		errs = append(errs, &ValidationError{File: display("."), Reason: "no scripts (*.yaml) found"})
	}
	sort.Strings(files)

	set := &ScriptSet{byID: map[string]*scriptEntry{}}
	firstFile := map[string]string{}
	for _, name := range files {
		c := &collector{file: display(name), errs: &errs}
		data, err := readLimited(fsys, name)
		if err != nil {
			c.at(0, "%v", err)
			continue
		}
		before := len(errs)
		ms := parseScript(c, data)
		if ms == nil || len(errs) > before {
			continue
		}
		if f, dup := firstFile[ms.id]; dup {
			c.add(ms.idNode, "script id %q is already defined in %s", ms.id, f)
			continue
		}
		firstFile[ms.id] = c.file
		e := &scriptEntry{langs: ms.langs, byLang: map[string]*desk.Script{}}
		for _, l := range ms.langs {
			e.byLang[l] = ms.render(l)
		}
		set.byID[ms.id] = e
	}
	if err := errs.errOrNil(); err != nil {
		return nil, err
	}
	return set, nil
}

func readLimited(fsys fs.FS, name string) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxScriptFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxScriptFile {
		return nil, fmt.Errorf("file is larger than %d bytes", maxScriptFile)
	}
	return data, nil
}

// tr is one text in every language of its script.
type tr map[string]string

type mScript struct {
	id     string
	idNode *yaml.Node
	title  tr
	langs  []string
	steps  []*mStep
}

type mStep struct {
	node, idNode, nextNode *yaml.Node
	id, kind, next         string
	title, text, hint      tr
	fields                 []*mField
	options                []*mOption
	// resolved is where the step leads after the implicit "next is the following
	// step" rule; renderNext is what the page is told.
	resolved, renderNext string
}

type mField struct {
	node, whenNode            *yaml.Node
	id, typ, bind, from, when string
	label                     tr
	required                  bool
	choices                   []mChoice
	quick                     []tr
}

type mChoice struct {
	id    string
	label tr
}

type mOption struct {
	node, nextNode *yaml.Node
	id, next       string
	label          tr
	set            map[string]string
	resolved       string
}

// scriptParser carries what every text of one script needs: its languages.
type scriptParser struct {
	*collector
	langs []string
}

func parseScript(c *collector, data []byte) *mScript {
	root := c.parseDoc(data, false)
	if root == nil {
		return nil
	}
	m, ok := c.mapping(root, "script", "id", "title", "langs", "steps")
	if !ok {
		return nil
	}
	ms := &mScript{idNode: m.line("id")}
	if n := m.get("id"); n == nil {
		c.add(m.line("id"), "script: id is required")
	} else if id, ok := c.str(n, "script id"); ok {
		ms.idNode = n
		if !idPattern.MatchString(id) {
			c.add(n, "script id %q may hold only letters, digits, _ . -", id)
		}
		ms.id = id
	}

	ms.langs = []string{"ru"}
	if n := m.get("langs"); n != nil {
		ms.langs = parseLangs(c, n)
		if len(ms.langs) == 0 {
			return nil
		}
	}
	p := &scriptParser{collector: c, langs: ms.langs}
	if n := m.get("title"); n != nil {
		ms.title = p.text(m.line("title"), n, "script title")
	}
	stepsNode := m.get("steps")
	if stepsNode == nil {
		c.add(m.line("steps"), "script: steps are required")
		return ms
	}
	items, ok := c.seq(stepsNode, "steps")
	if !ok {
		return ms
	}
	if len(items) == 0 {
		c.add(stepsNode, "script has no steps")
		return ms
	}
	for _, n := range items {
		if st := p.step(n); st != nil {
			ms.steps = append(ms.steps, st)
		}
	}
	p.checkFlow(ms)
	return ms
}

func parseLangs(c *collector, n *yaml.Node) []string {
	var nodes []*yaml.Node
	switch n.Kind {
	case yaml.ScalarNode:
		nodes = []*yaml.Node{n}
	case yaml.SequenceNode:
		nodes = n.Content
	default:
		c.add(n, "langs must be a list of language codes, e.g. [ru, en]")
		return nil
	}
	var langs []string
	bad := false
	for _, ln := range nodes {
		l, ok := c.str(ln, "language")
		if !ok {
			bad = true
			continue
		}
		if !langPattern.MatchString(l) {
			c.add(ln, "language %q must be a lower-case ISO 639 code such as ru or en", l)
			bad = true
			continue
		}
		if contains(langs, l) {
			c.add(ln, "language %q is listed twice", l)
			continue
		}
		langs = append(langs, l)
	}
	if len(langs) == 0 && !bad {
		c.add(n, "langs lists no language")
	}
	if bad {
		return nil
	}
	return langs
}

// text reads a translated text: a mapping language → text, or a plain string,
// which is the text in the script's default language. Every language must be
// given; at is the key the error points to.
func (p *scriptParser) text(at, n *yaml.Node, what string) tr {
	out := tr{}
	switch n.Kind {
	case yaml.ScalarNode:
		if v, ok := p.str(n, what); ok {
			out[p.langs[0]] = v
		}
	case yaml.MappingNode:
		m, _ := p.mapping(n, what)
		for _, k := range sortedKeys(m.vals) {
			v := m.vals[k]
			if !contains(p.langs, k) {
				p.add(m.keys[k], "%s: language %q is not in the script's langs (%s)", what, k, strings.Join(p.langs, ", "))
				continue
			}
			if s, ok := p.str(v, what+" ("+k+")"); ok {
				out[k] = s
				if why := checkPlaceholders(s); why != "" {
					p.add(v, "%s (%s): %s", what, k, why)
				}
			}
		}
	default:
		p.add(n, "%s must be text or a mapping of language to text, not %s", what, kindName(n))
		return out
	}
	if n.Kind == yaml.ScalarNode {
		if why := checkPlaceholders(out[p.langs[0]]); why != "" {
			p.add(n, "%s: %s", what, why)
		}
	}
	var missing []string
	for _, l := range p.langs {
		if strings.TrimSpace(out[l]) == "" {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		p.add(at, "%s: missing translation: %s", what, strings.Join(missing, ", "))
	}
	return out
}

func (p *scriptParser) id(m mapping, what string) (string, *yaml.Node) {
	n := m.get("id")
	if n == nil {
		p.add(m.node, "%s: id is required", what)
		return "", m.node
	}
	id, ok := p.str(n, what+" id")
	if !ok {
		return "", n
	}
	if !idPattern.MatchString(id) {
		p.add(n, "%s id %q may hold only letters, digits, _ . -", what, id)
	}
	return id, n
}

func (p *scriptParser) step(n *yaml.Node) *mStep {
	m, ok := p.mapping(n, "step", "id", "kind", "title", "text", "hint", "fields", "options", "next")
	if !ok {
		return nil
	}
	st := &mStep{node: n}
	st.id, st.idNode = p.id(m, "step")
	what := "step"
	if st.id != "" {
		what = fmt.Sprintf("step %q", st.id)
	}
	if kn := m.get("kind"); kn == nil {
		p.add(m.line("kind"), "%s: kind is required (%s)", what, strings.Join(Kinds, ", "))
	} else if k, ok := p.str(kn, what+" kind"); ok {
		if !contains(Kinds, k) {
			p.add(kn, "%s: unknown step kind %q (known: %s)", what, k, strings.Join(Kinds, ", "))
		} else {
			st.kind = k
		}
	}
	if v := m.get("title"); v != nil {
		st.title = p.text(m.line("title"), v, what+" title")
	}
	if v := m.get("text"); v == nil {
		p.add(m.line("text"), "%s: text is required", what)
	} else {
		st.text = p.text(m.line("text"), v, what+" text")
	}
	if v := m.get("hint"); v != nil {
		st.hint = p.text(m.line("hint"), v, what+" hint")
	}
	if v := m.get("next"); v != nil {
		if s, ok := p.str(v, what+" next"); ok {
			st.next, st.nextNode = s, v
		}
	}
	if v := m.get("fields"); v != nil {
		if items, ok := p.seq(v, what+" fields"); ok {
			seen := map[string]*yaml.Node{}
			for _, fn := range items {
				f := p.field(fn, what)
				if f == nil {
					continue
				}
				if f.id != "" {
					if first := seen[f.id]; first != nil {
						p.add(fn, "%s: duplicate field id %q (first at line %d)", what, f.id, first.Line)
					}
					seen[f.id] = fn
				}
				st.fields = append(st.fields, f)
			}
		}
	}
	if v := m.get("options"); v != nil {
		if st.kind != "" && st.kind != KindQuestion {
			p.add(m.line("options"), "%s: options are only for question steps; use a choice field", what)
		}
		if items, ok := p.seq(v, what+" options"); ok {
			seen := map[string]*yaml.Node{}
			for _, on := range items {
				o := p.option(on, what)
				if o == nil {
					continue
				}
				if o.id != "" {
					if first := seen[o.id]; first != nil {
						p.add(on, "%s: duplicate option id %q (first at line %d)", what, o.id, first.Line)
					}
					seen[o.id] = on
				}
				st.options = append(st.options, o)
			}
		}
	}
	switch {
	case st.kind == KindQuestion && len(st.options) == 0 && len(st.fields) == 0:
		p.add(n, "%s: a question needs options to branch on or fields to capture the answer", what)
	case needsFields[st.kind] && len(st.fields) == 0:
		p.add(n, "%s: a %s step needs fields", what, st.kind)
	}
	p.checkWhen(st, what)
	return st
}

func (p *scriptParser) field(n *yaml.Node, step string) *mField {
	m, ok := p.mapping(n, step+" field", "id", "label", "type", "required", "choices", "bind", "from", "when", "quick")
	if !ok {
		return nil
	}
	f := &mField{node: n}
	f.id, _ = p.id(m, step+" field")
	what := step + " field"
	if f.id != "" {
		what = fmt.Sprintf("%s field %q", step, f.id)
	}
	if v := m.get("label"); v == nil {
		p.add(m.line("label"), "%s: label is required", what)
	} else {
		f.label = p.text(m.line("label"), v, what+" label")
	}
	if v := m.get("type"); v == nil {
		p.add(m.line("type"), "%s: type is required (%s)", what, strings.Join(FieldTypes, ", "))
	} else if t, ok := p.str(v, what+" type"); ok {
		if !contains(FieldTypes, t) {
			p.add(v, "%s: unknown field type %q (known: %s)", what, t, strings.Join(FieldTypes, ", "))
		} else {
			f.typ = t
		}
	}
	if v := m.get("required"); v != nil {
		f.required, _ = p.boolean(v, what+" required")
	}
	if v := m.get("bind"); v != nil {
		if b, ok := p.str(v, what+" bind"); ok {
			if _, known := Binds[b]; !known {
				if s := closest(b, sortedKeys(Binds)); s != "" {
					p.add(v, "%s: unknown bind %q (did you mean %q?)", what, b, s)
				} else {
					p.add(v, "%s: unknown bind %q (see docs/scripts.md)", what, b)
				}
			} else {
				f.bind = b
			}
		}
	}
	if v := m.get("from"); v != nil {
		if s, ok := p.str(v, what+" from"); ok {
			switch {
			case s != FromSources && s != FromPriceList:
				p.add(v, "%s: from must be %q or %q, not %q", what, FromSources, FromPriceList, s)
			case f.typ != "" && f.typ != "choice":
				p.add(v, "%s: from is only for choice fields", what)
			default:
				f.from = s
			}
		}
	}
	if v := m.get("choices"); v != nil {
		if f.typ != "" && f.typ != "choice" {
			p.add(m.line("choices"), "%s: choices are only for choice fields", what)
		}
		if m.get("from") != nil {
			p.add(m.line("choices"), "%s: give either choices or from, not both", what)
		}
		if items, ok := p.seq(v, what+" choices"); ok {
			seen := map[string]*yaml.Node{}
			for _, cn := range items {
				ch, ok := p.choice(cn, what)
				if !ok {
					continue
				}
				if first := seen[ch.id]; first != nil {
					p.add(cn, "%s: duplicate choice %q (first at line %d)", what, ch.id, first.Line)
					continue
				}
				seen[ch.id] = cn
				if allowed := Binds[f.bind]; allowed != nil && !contains(allowed, ch.id) {
					p.add(cn, "%s: choice %q is not a value of %s (%s)", what, ch.id, f.bind, strings.Join(allowed, ", "))
				}
				f.choices = append(f.choices, ch)
			}
		}
	}
	if f.typ == "choice" && len(f.choices) == 0 && f.from == "" && m.get("choices") == nil {
		p.add(n, "%s: a choice field needs choices (or from: %s|%s)", what, FromSources, FromPriceList)
	} else if f.typ == "choice" && m.get("choices") != nil && len(f.choices) == 0 && m.get("from") == nil {
		p.add(m.line("choices"), "%s: a choice field needs at least one choice", what)
	}
	if v := m.get("when"); v != nil {
		if s, ok := p.str(v, what+" when"); ok {
			f.when, f.whenNode = s, v
		}
	}
	if v := m.get("quick"); v != nil {
		if items, ok := p.seq(v, what+" quick"); ok {
			for _, qn := range items {
				switch f.typ {
				case "date", "datetime", "time":
					// Presets are values, not words: the same in every language.
					s, ok := p.str(qn, what+" quick")
					if !ok {
						continue
					}
					if why := checkQuick(s); why != "" {
						p.add(qn, "%s: %s", what, why)
						continue
					}
					q := tr{}
					for _, l := range p.langs {
						q[l] = s
					}
					f.quick = append(f.quick, q)
				case "text", "textarea":
					f.quick = append(f.quick, p.text(qn, qn, what+" quick"))
				case "":
				default:
					p.add(qn, "%s: quick values are for text, date and time fields", what)
				}
			}
		}
	}
	return f
}

// choice reads one choice: a plain value shown as written in every language (such
// as "11-50"), or {id, label} with a translated label.
func (p *scriptParser) choice(n *yaml.Node, what string) (mChoice, bool) {
	if n.Kind == yaml.ScalarNode {
		s, ok := p.str(n, what+" choice")
		if !ok {
			return mChoice{}, false
		}
		label := tr{}
		for _, l := range p.langs {
			label[l] = s
		}
		return mChoice{id: s, label: label}, true
	}
	m, ok := p.mapping(n, what+" choice", "id", "label")
	if !ok {
		return mChoice{}, false
	}
	id, _ := p.id(m, what+" choice")
	if id == "" {
		return mChoice{}, false
	}
	ch := mChoice{id: id}
	if v := m.get("label"); v == nil {
		p.add(m.line("label"), "%s choice %q: label is required", what, id)
	} else {
		ch.label = p.text(m.line("label"), v, fmt.Sprintf("%s choice %q label", what, id))
	}
	return ch, true
}

func (p *scriptParser) option(n *yaml.Node, step string) *mOption {
	m, ok := p.mapping(n, step+" option", "id", "label", "next", "set")
	if !ok {
		return nil
	}
	o := &mOption{node: n}
	o.id, _ = p.id(m, step+" option")
	what := step + " option"
	if o.id != "" {
		what = fmt.Sprintf("%s option %q", step, o.id)
	}
	if v := m.get("label"); v == nil {
		p.add(m.line("label"), "%s: label is required", what)
	} else {
		o.label = p.text(m.line("label"), v, what+" label")
	}
	if v := m.get("next"); v != nil {
		if s, ok := p.str(v, what+" next"); ok {
			o.next, o.nextNode = s, v
		}
	}
	if v := m.get("set"); v != nil {
		sm, ok := p.mapping(v, what+" set")
		if ok {
			o.set = map[string]string{}
			for _, k := range sortedKeys(sm.vals) {
				allowed, known := Binds[k]
				if !known {
					p.add(sm.keys[k], "%s: set: unknown bind %q", what, k)
					continue
				}
				val, ok := p.str(sm.vals[k], what+" set "+k)
				if !ok {
					continue
				}
				if allowed != nil && !contains(allowed, val) {
					p.add(sm.vals[k], "%s: set: %q is not a value of %s (%s)", what, val, k, strings.Join(allowed, ", "))
					continue
				}
				o.set[k] = val
			}
		}
	}
	return o
}

// checkWhen checks "field=value" conditions against the step's own choice fields.
func (p *scriptParser) checkWhen(st *mStep, what string) {
	for _, f := range st.fields {
		if f.whenNode == nil {
			continue
		}
		ref, val, ok := strings.Cut(f.when, "=")
		ref, val = strings.TrimSpace(ref), strings.TrimSpace(val)
		if !ok || ref == "" || val == "" {
			p.add(f.whenNode, "%s field %q: when must be field=value, e.g. outcome=refusal", what, f.id)
			continue
		}
		var target *mField
		for _, g := range st.fields {
			if g.id == ref && g != f {
				target = g
			}
		}
		if target == nil {
			p.add(f.whenNode, "%s field %q: when refers to %q, which is not another field of this step", what, f.id, ref)
			continue
		}
		if target.typ == "choice" && target.from == "" && len(target.choices) > 0 {
			found := false
			for _, ch := range target.choices {
				found = found || ch.id == val
			}
			if !found {
				p.add(f.whenNode, "%s field %q: %q is not a choice of %q", what, f.id, val, ref)
				continue
			}
		}
		f.when = ref + "=" + val
	}
}

// checkFlow resolves where every step leads and checks that the branches point at
// real steps, that every step can be reached from the first, and that the script
// always ends in a wrapup.
func (p *scriptParser) checkFlow(ms *mScript) {
	// A broken reference or id makes reachability meaningless: report the cause
	// only, not the unreachable steps and loops it would seem to create.
	sound := true
	index := map[string]int{}
	for i, st := range ms.steps {
		if st.id == "" {
			sound = false
			continue
		}
		if j, dup := index[st.id]; dup {
			p.add(st.idNode, "duplicate step id %q (first at line %d)", st.id, ms.steps[j].idNode.Line)
			sound = false
			continue
		}
		index[st.id] = i
	}
	exists := func(n *yaml.Node, target, what string) bool {
		if _, ok := index[target]; ok {
			return true
		}
		sound = false
		if s := closest(target, sortedKeys(index)); s != "" {
			p.add(n, "%s: next step %q does not exist (did you mean %q?)", what, target, s)
		} else {
			p.add(n, "%s: next step %q does not exist", what, target)
		}
		return false
	}
	hasWrapup := false
	for i, st := range ms.steps {
		what := fmt.Sprintf("step %q", st.id)
		if st.kind == KindWrapup {
			hasWrapup = true
			if st.nextNode != nil {
				p.add(st.nextNode, "%s: a wrapup step ends the script; remove next", what)
			}
			continue
		}
		switch {
		case st.next != "":
			if exists(st.nextNode, st.next, what) {
				st.resolved = st.next
			}
		case i+1 < len(ms.steps):
			st.resolved = ms.steps[i+1].id
		}
		inherited := false
		for _, o := range st.options {
			if o.next != "" {
				if exists(o.nextNode, o.next, fmt.Sprintf("step %q option %q", st.id, o.id)) {
					o.resolved = o.next
				}
				continue
			}
			o.resolved, inherited = st.resolved, true
			if st.resolved == "" && st.next == "" {
				p.add(o.node, "%s option %q leads nowhere: give it next", what, o.id)
			}
		}
		if len(st.options) == 0 || inherited || st.next != "" {
			st.renderNext = st.resolved
		}
		if len(st.options) == 0 && st.resolved == "" && st.next == "" {
			p.add(st.node, "%s is the last step but not a wrapup: give it next or end with a wrapup step", what)
		}
	}
	if len(ms.steps) == 0 {
		return
	}
	if !hasWrapup {
		p.add(ms.idNode, "script has no wrapup step")
	}
	if !sound {
		return
	}
	edges := func(st *mStep) []string {
		var out []string
		if st.renderNext != "" {
			out = append(out, st.renderNext)
		}
		for _, o := range st.options {
			if o.resolved != "" {
				out = append(out, o.resolved)
			}
		}
		return out
	}
	reached := make([]bool, len(ms.steps))
	queue := []int{0}
	reached[0] = true
	for len(queue) > 0 {
		i := queue[0]
		queue = queue[1:]
		for _, t := range edges(ms.steps[i]) {
			if j, ok := index[t]; ok && !reached[j] {
				reached[j] = true
				queue = append(queue, j)
			}
		}
	}
	for i, st := range ms.steps {
		if !reached[i] {
			p.add(st.idNode, "step %q is unreachable from the first step %q", st.id, ms.steps[0].id)
		}
	}
	if !hasWrapup {
		return
	}
	// A loop with no way out would keep the operator in the script forever.
	ends := make([]bool, len(ms.steps))
	for changed := true; changed; {
		changed = false
		for i, st := range ms.steps {
			if ends[i] {
				continue
			}
			if st.kind == KindWrapup {
				ends[i], changed = true, true
				continue
			}
			for _, t := range edges(st) {
				if j, ok := index[t]; ok && ends[j] {
					ends[i], changed = true, true
					break
				}
			}
		}
	}
	for i, st := range ms.steps {
		if reached[i] && !ends[i] {
			p.add(st.idNode, "step %q never reaches a wrapup step (the script loops)", st.id)
			return
		}
	}
}

// render produces the script as the page sees it in one language.
func (ms *mScript) render(lang string) *desk.Script {
	get := func(t tr) string {
		if v, ok := t[lang]; ok {
			return v
		}
		return t[ms.langs[0]]
	}
	s := &desk.Script{ID: ms.id, Title: get(ms.title), Lang: lang, Langs: append([]string(nil), ms.langs...)}
	if s.Title == "" {
		s.Title = ms.id
	}
	for _, st := range ms.steps {
		ds := desk.Step{ID: st.id, Kind: st.kind, Title: get(st.title), Text: get(st.text), Hint: get(st.hint), Next: st.renderNext}
		for _, f := range st.fields {
			df := desk.Field{ID: f.id, Label: get(f.label), Type: f.typ, Required: f.required, Bind: f.bind, From: f.from, When: f.when}
			for _, ch := range f.choices {
				df.Choices = append(df.Choices, ch.id)
				df.Options = append(df.Options, desk.Option{ID: ch.id, Label: get(ch.label)})
			}
			for _, q := range f.quick {
				df.Quick = append(df.Quick, get(q))
			}
			ds.Fields = append(ds.Fields, df)
		}
		for _, o := range st.options {
			do := desk.Option{ID: o.id, Label: get(o.label), Next: o.resolved}
			if len(o.set) > 0 {
				do.Set = map[string]string{}
				for k, v := range o.set {
					do.Set[k] = v
				}
			}
			ds.Options = append(ds.Options, do)
		}
		s.Steps = append(s.Steps, ds)
	}
	return s
}

func cloneScript(s *desk.Script) *desk.Script {
	if s == nil {
		return nil
	}
	c := *s
	c.Langs = append([]string(nil), s.Langs...)
	c.Steps = make([]desk.Step, len(s.Steps))
	for i, st := range s.Steps {
		st.Fields = append([]desk.Field(nil), st.Fields...)
		for j := range st.Fields {
			f := &st.Fields[j]
			f.Choices = append([]string(nil), f.Choices...)
			f.Options = cloneOptions(f.Options)
			f.Quick = append([]string(nil), f.Quick...)
		}
		st.Options = cloneOptions(st.Options)
		c.Steps[i] = st
	}
	return &c
}

func cloneOptions(opts []desk.Option) []desk.Option {
	if opts == nil {
		return nil
	}
	out := make([]desk.Option, len(opts))
	for i, o := range opts {
		if o.Set != nil {
			set := make(map[string]string, len(o.Set))
			for k, v := range o.Set {
				set[k] = v
			}
			o.Set = set
		}
		out[i] = o
	}
	return out
}

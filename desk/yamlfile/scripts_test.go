package yamlfile

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/scripts"
)

// The shipped scripts are what every desk pops; they must load cleanly and carry
// the playbook of design section 2 in both languages.
func TestShippedScripts(t *testing.T) {
	set, err := LoadScripts(scripts.FS)
	if err != nil {
		t.Fatalf("shipped scripts do not load:\n%v", err)
	}
	if got := set.Langs("default"); strings.Join(got, ",") != "ru,en" {
		t.Fatalf("langs of default = %v, want [ru en]", got)
	}
	ru, en := set.Get("default", "ru"), set.Get("default", "en")
	if ru == nil || en == nil {
		t.Fatal("default script missing in ru or en")
	}
	if ru.Lang != "ru" || en.Lang != "en" || len(ru.Steps) != len(en.Steps) {
		t.Fatalf("ru/en differ in shape: %s %d steps, %s %d steps", ru.Lang, len(ru.Steps), en.Lang, len(en.Steps))
	}
	kinds := map[string]bool{}
	binds := map[string]desk.Field{}
	for i, st := range ru.Steps {
		kinds[st.Kind] = true
		if st.Text == en.Steps[i].Text {
			t.Errorf("step %q: ru and en text are the same, so it is not translated", st.ID)
		}
		for _, f := range st.Fields {
			binds[f.Bind] = f
		}
	}
	for _, k := range Kinds {
		if !kinds[k] {
			t.Errorf("the default script has no %s step", k)
		}
	}
	// The playbook: name and company required, the rest asked; callback phone apart.
	for _, b := range []string{"contact.name", "contact.company"} {
		if !binds[b].Required {
			t.Errorf("%s must be required", b)
		}
	}
	for _, b := range []string{"contact.position", "contact.email", "contact.phone", "contact.mobile",
		"contact.messenger", "contact.website", "contact.company_size", "contact.industry", "contact.callback_phone"} {
		f, ok := binds[b]
		if !ok {
			t.Errorf("contact capture lacks %s", b)
		} else if f.Required {
			t.Errorf("%s is asked, never forced, but is required", b)
		}
	}
	if binds["contact.callback_phone"].Type != "phone" || binds["source"].From != FromSources ||
		binds["price.product"].From != FromPriceList || binds["promise.due"].Type != "datetime" ||
		binds["refusal.reason"].When != "outcome=refusal" {
		t.Errorf("playbook fields are not typed as expected: %+v", binds)
	}
	need := ru.Steps[1]
	if need.Kind != KindQuestion || need.Options[0].Set["interest.type"] != "deal" || need.Options[1].Set["interest.type"] != "interest" {
		t.Errorf("need question does not branch to deal/interest: %+v", need.Options)
	}
	if fb := set.Get("default", "de"); fb == nil || fb.Lang != "ru" {
		t.Errorf("Get(default, de) should fall back to ru, got %+v", fb)
	}
	if g := set.Get("default", "en-GB"); g == nil || g.Lang != "en" {
		t.Errorf("Get(default, en-GB) should give en")
	}
	if set.Get("nope", "ru") != nil {
		t.Error("Get of an unknown script must be nil")
	}
	// The pop sends this as JSON; the page relies on these names.
	b, err := json.Marshal(en)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id":"default"`, `"lang":"en"`, `"steps":[`, `"kind":"say"`, `"next":"need"`, `"options":[`} {
		if !bytes.Contains(b, []byte(key)) {
			t.Errorf("JSON lacks %s", key)
		}
	}
	// Get hands out copies: a caller editing one must not change the next pop.
	en.Steps[0].Text = "changed"
	en.Steps[1].Options[0].Set["interest.type"] = "changed"
	again := set.Get("default", "en")
	if again.Steps[0].Text == "changed" || again.Steps[1].Options[0].Set["interest.type"] == "changed" {
		t.Error("Get returned shared state")
	}

	var out bytes.Buffer
	if n := CheckDir(filepath.Join("..", "..", "scripts"), &out); n != 0 || !strings.HasPrefix(out.String(), "ok: 1 script(s): default (ru, en)") {
		t.Errorf("CheckDir(scripts) = %d, %q", n, out.String())
	}
}

// Each broken file yields exactly these errors, each at the line an editor must
// jump to.
func TestBrokenScripts(t *testing.T) {
	tests := []struct {
		file string
		want []string
	}{
		{"unknown_kind.yaml", []string{
			`unknown_kind.yaml:5: step "a": unknown step kind "speak" (known: say, question, contact, source, price, promise, meeting, wrapup)`}},
		{"missing_next.yaml", []string{
			`missing_next.yaml:7: step "a": next step "ending" does not exist`}},
		{"option_branch.yaml", []string{
			`option_branch.yaml:11: step "need" option "product": next step "product_step" does not exist`,
			`option_branch.yaml:14: step "need" option "task": set: "maybe" is not a value of interest.type (deal, interest)`}},
		{"unreachable.yaml", []string{
			`unreachable.yaml:8: step "orphan" is unreachable from the first step "a"`}},
		{"field_type.yaml", []string{
			`field_type.yaml:9: step "contact" field "email": unknown field type "mail" (known: text, textarea, email, phone, url, number, choice, date, datetime, time, checkbox)`,
			`field_type.yaml:10: step "contact" field "size": a choice field needs choices (or from: sources|price_list)`,
			`field_type.yaml:13: step "contact": duplicate field id "name" (first at line 8)`}},
		{"translation.yaml", []string{
			`translation.yaml:3: script title: missing translation: en`,
			`translation.yaml:7: step "a" text: missing translation: en`,
			`translation.yaml:11: step "end" text: language "de" is not in the script's langs (ru, en)`,
			`translation.yaml:13: step "end" field "note" label: missing translation: en`}},
		{"duplicate_step.yaml", []string{
			`duplicate_step.yaml:7: duplicate step id "a" (first at line 4)`}},
		{"required.yaml", []string{
			`required.yaml:1: script: id is required`,
			`required.yaml:3: step: id is required`,
			`required.yaml:5: step "b": kind is required (say, question, contact, source, price, promise, meeting, wrapup)`,
			`required.yaml:5: step "b": text is required`,
			`required.yaml:6: step: unknown key "txt" (did you mean "text"?)`}},
		{"syntax.yaml", []string{
			`syntax.yaml:6: did not find expected ',' or '}'`}},
		{"no_wrapup.yaml", []string{
			`no_wrapup.yaml:1: script has no wrapup step`,
			`no_wrapup.yaml:7: step "b" is the last step but not a wrapup: give it next or end with a wrapup step`}},
		{"placeholder.yaml", []string{
			`placeholder.yaml:6: step "a" text: placeholder {{company}} must be object.field, e.g. {{contact.name|fallback}}`,
			`placeholder.yaml:9: step "b" text: "{{" is not closed with "}}"`,
			`placeholder.yaml:17: step "end" field "due": quick preset "next week" must be +DURATION (+1h, +2d) or "today|tomorrow HH:MM"`,
			`placeholder.yaml:17: step "end" field "due": quick preset "tomorrow 25:00" must be +DURATION (+1h, +2d) or "today|tomorrow HH:MM"`,
			`placeholder.yaml:18: step "end" field "outcome": choice "maybe" is not a value of outcome (deal, interest, not_prospective, refusal)`,
			`placeholder.yaml:19: step "end" field "reason": "refused" is not a choice of "outcome"`,
			`placeholder.yaml:20: step "end" field "other": unknown bind "contact.nmae" (did you mean "contact.name"?)`}},
		{"alias.yaml", []string{
			`alias.yaml:4: anchors (&greet) are not supported`,
			`alias.yaml:8: aliases (*greet) are not supported; repeat the value`}},
		{"empty.yaml", []string{`empty.yaml: empty file`}},
		{"loop.yaml", []string{
			`loop.yaml:4: step "a" never reaches a wrapup step (the script loops)`,
			`loop.yaml:12: step "end" is unreachable from the first step "a"`,
			`loop.yaml:17: step "end": a wrapup step ends the script; remove next`}},
		{"kinds.yaml", []string{
			`kinds.yaml:7: step "a": options are only for question steps; use a choice field`,
			`kinds.yaml:9: step "q": a question needs options to branch on or fields to capture the answer`,
			`kinds.yaml:12: step "c": a contact step needs fields`}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join("testdata", "broken", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			set, err := LoadScripts(fstest.MapFS{tt.file: {Data: data}})
			if set != nil {
				t.Error("a broken script must not give a set")
			}
			var ve ValidationErrors
			if !errors.As(err, &ve) || !errors.Is(err, desk.ErrInvalid) {
				t.Fatalf("err = %v (%T), want ValidationErrors wrapping desk.ErrInvalid", err, err)
			}
			got := strings.Split(err.Error(), "\n")
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tt.want, "\n      "))
			}
			var out bytes.Buffer
			if n := Check(fstest.MapFS{tt.file: {Data: data}}, &out); n != len(tt.want) || out.String() != strings.Join(tt.want, "\n")+"\n" {
				t.Errorf("Check = %d, printed %q", n, out.String())
			}
		})
	}
}

// Every file of a directory is checked in one run, and errors name dir/file.
func TestLoadScriptsDir(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const ok = "id: %s\nlangs: [en]\nsteps:\n  - {id: a, kind: say, text: Hi}\n  - {id: end, kind: wrapup, text: Bye, fields: [{id: note, type: textarea, label: Note}]}\n"
	write("a.yaml", strings.Replace(ok, "%s", "one", 1))
	write("b.yml", strings.Replace(ok, "%s", "one", 1))
	write("c.yaml", strings.Replace(strings.Replace(ok, "%s", "three", 1), "kind: say", "kind: sing", 1))
	write("README.md", "not a script")
	write(".git/x.yaml", "::: not even yaml")

	_, err := LoadScriptsDir(dir)
	want := []string{
		filepath.Join(dir, "b.yml") + `:1: script id "one" is already defined in ` + filepath.Join(dir, "a.yaml"),
		filepath.Join(dir, "c.yaml") + `:4: step "a": unknown step kind "sing" (known: say, question, contact, source, price, promise, meeting, wrapup)`,
	}
	if err == nil || err.Error() != strings.Join(want, "\n") {
		t.Errorf("got:\n%v\nwant:\n%s", err, strings.Join(want, "\n"))
	}

	empty := t.TempDir()
	if _, err := LoadScriptsDir(empty); err == nil || err.Error() != empty+": no scripts (*.yaml) found" {
		t.Errorf("empty dir: %v", err)
	}
}

// The loader resolves the implicit flow for the page: a step without next leads to
// the following one, an option without next to its step's next.
func TestFlowResolution(t *testing.T) {
	src := `id: flow
langs: [en, ru]
title: {en: Flow, ru: Поток}
steps:
  - id: q
    kind: question
    text: {en: "Which?", ru: "Какой?"}
    options:
      - {id: x, label: {en: X, ru: Икс}, next: x_step}
      - {id: y, label: {en: Y, ru: Игрек}}
    next: y_step
  - id: x_step
    kind: say
    text: {en: "X it is, {{contact.name|friend}}", ru: Икс}
    next: end
  - id: y_step
    kind: say
    text: {en: Y, ru: Игрек}
  - id: end
    kind: wrapup
    text: {en: Bye, ru: Пока}
    fields:
      - id: size
        type: choice
        label: {en: Size, ru: Размер}
        choices: ["1-10", {id: big, label: {en: Big, ru: Большая}}]
`
	set, err := LoadScripts(fstest.MapFS{"flow.yaml": {Data: []byte(src)}})
	if err != nil {
		t.Fatal(err)
	}
	s := set.Get("flow", "")
	if s.Lang != "en" || s.Title != "Flow" {
		t.Fatalf("default language should be the first of langs: %s %q", s.Lang, s.Title)
	}
	tests := []struct{ got, want string }{
		{s.Steps[0].Next, "y_step"},
		{s.Steps[0].Options[0].Next, "x_step"},
		{s.Steps[0].Options[1].Next, "y_step"},
		{s.Steps[1].Next, "end"},
		{s.Steps[2].Next, "end"},
		{s.Steps[3].Next, ""},
		{strings.Join(s.Steps[3].Fields[0].Choices, ","), "1-10,big"},
		{s.Steps[3].Fields[0].Options[1].Label, "Big"},
		{set.Get("flow", "ru").Steps[3].Fields[0].Options[1].Label, "Большая"},
		{set.Get("flow", "ru").Steps[3].Fields[0].Options[0].Label, "1-10"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestSubstitute(t *testing.T) {
	vars := map[string]string{"contact.name": "Anna", "price.min": ""}
	lookup := func(p string) (string, bool) { v, ok := vars[p]; return v, ok }
	tests := []struct{ in, want string }{
		{"Hello, {{contact.name|friend}}!", "Hello, Anna!"},
		{"Hello, {{contact.company|your company}}.", "Hello, your company."},
		{"From {{price.min|…}}", "From …"},
		{"{{ contact.name }} and {{operator.name|}}", "Anna and "},
		{"no placeholders", "no placeholders"},
		{"broken {{contact.name", "broken {{contact.name"},
	}
	for _, tt := range tests {
		if got := Substitute(tt.in, lookup); got != tt.want {
			t.Errorf("Substitute(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseQuickOffset(t *testing.T) {
	tests := []struct {
		in   string
		want string
		ok   bool
	}{
		{"1h", "1h0m0s", true}, {"2h", "2h0m0s", true}, {"30m", "30m0s", true},
		{"1d", "24h0m0s", true}, {"1d2h", "26h0m0s", true},
		{"0h", "", false}, {"-1h", "", false}, {"xd", "", false}, {"", "", false},
	}
	for _, tt := range tests {
		d, err := desk.ParseQuickOffset(tt.in)
		if (err == nil) != tt.ok || (tt.ok && d.String() != tt.want) {
			t.Errorf("ParseQuickOffset(%q) = %v, %v", tt.in, d, err)
		}
	}
}

package yamlfile

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/scripts"
)

const fullConfig = `# a complete configuration
default_script: default
ring_timeout: 15s
timezone: Asia/Yekaterinburg
language: en
trusted_trunks:
  - 10.20.0.0/16
  - 192.0.2.7
  - 2001:db8::/32
sources:
  - {id: exhibition, label: {ru: Выставка, en: Exhibition}}
  - web_search
lines:
  - {number: "+74951234567", name: Sales Moscow, script: default, source: web_search}
  - {number: expo, source: exhibition}
price_lists:
  wms-basic: {name: WMS Basic, min: 90000, max: 150000, currency: RUB}
  scanner: {min: 18_000, max: 42000.5, currency: RUB}
`

func TestParseConfig(t *testing.T) {
	cfg, err := ParseConfig("desk.yaml", []byte(fullConfig))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RingTimeout != 15*time.Second || cfg.Language != "en" || cfg.Location.String() != "Asia/Yekaterinburg" {
		t.Errorf("scalars: %v %q %v", cfg.RingTimeout, cfg.Language, cfg.Location)
	}
	wantTrunks := []string{"10.20.0.0/16", "192.0.2.7/32", "2001:db8::/32"}
	if len(cfg.TrustedTrunks) != 3 {
		t.Fatalf("trunks: %v", cfg.TrustedTrunks)
	}
	for i, p := range cfg.TrustedTrunks {
		if p.String() != wantTrunks[i] {
			t.Errorf("trunk %d = %s, want %s", i, p, wantTrunks[i])
		}
	}
	trusted := []struct {
		addr string
		want bool
	}{{"10.20.3.4", true}, {"10.21.0.1", false}, {"192.0.2.7", true}, {"::ffff:192.0.2.7", true}, {"2001:db8::1", true}, {"127.0.0.1", false}}
	for _, tt := range trusted {
		if got := cfg.Trusted(netip.MustParseAddr(tt.addr)); got != tt.want {
			t.Errorf("Trusted(%s) = %v", tt.addr, got)
		}
	}
	if l, ok := cfg.Line("expo"); !ok || l.Script != "default" || l.Name != "expo" || l.Source != "exhibition" {
		t.Errorf("expo line: %+v", l)
	}
	if l := cfg.DefaultLine(); l.Number != desk.DefaultLine || l.Script != "default" || len(cfg.Lines) != 3 {
		t.Errorf("default line not added: %+v, %d lines", l, len(cfg.Lines))
	}
	if s, _ := cfg.Source("web_search"); s.LabelIn("ru", "en") != "web_search" {
		t.Errorf("scalar source label: %+v", s)
	}
	if s, _ := cfg.Source("exhibition"); s.LabelIn("de", "en") != "Exhibition" {
		t.Errorf("label fallback: %+v", s)
	}
	p, ok := cfg.Price("scanner")
	if !ok || p.Min != 18000 || p.Max != 42000.5 || p.String() != "scanner: 18 000–42 000.50 RUB" {
		t.Errorf("price: %+v %q", p, p.String())
	}
	if cfg.PriceList[0].Product != "wms-basic" {
		t.Error("price list must keep file order")
	}
}

func TestParseConfigErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"bad CIDR", "trusted_trunks:\n  - 10.0.0.0/8\n  - 10.0.0.0/33\n  - trunk.example\n", []string{
			`c.yaml:3: trusted_trunks: "10.0.0.0/33" is not a CIDR (10.0.0.0/8) or an IP address`,
			`c.yaml:4: trusted_trunks: "trunk.example" is not a CIDR (10.0.0.0/8) or an IP address`}},
		{"unknown key", "ring_timout: 10s\nlanguage: ru\nfoo: 1\n", []string{
			`c.yaml:1: config: unknown key "ring_timout" (did you mean "ring_timeout"?)`,
			`c.yaml:3: config: unknown key "foo" (known: lines, default_script, ring_timeout, trusted_trunks, sources, price_lists, timezone, language, qualification, callback_due, webhook, channel_costs, media)`}},
		{"unknown line key", "lines:\n  - number: sales\n    scrpit: default\n", []string{
			`c.yaml:3: line: unknown key "scrpit" (did you mean "script"?)`}},
		{"bad scalars", "ring_timeout: soon\ntimezone: Mars/Olympus\nlanguage: Russian\n", []string{
			`c.yaml:1: ring_timeout "soon" is not a duration such as 20s`,
			`c.yaml:2: timezone "Mars/Olympus" is not an IANA zone such as Europe/Moscow`,
			`c.yaml:3: language "Russian" must be a lower-case ISO 639 code such as ru or en`}},
		{"ring timeout range", "ring_timeout: 0s\n", []string{
			`c.yaml:1: ring_timeout 0s must be between 1s and 5m`}},
		{"lines", "lines:\n  - {number: sales, source: radio}\n  - {number: sales}\n  - {name: nameless}\n", []string{
			`c.yaml:2: line "sales": source "radio" is not in sources (exhibition, web_search, catalogue, tv_radio, referral, other)`,
			`c.yaml:3: line "sales" is configured twice (first at line 2)`,
			`c.yaml:4: line: number is required`}},
		{"prices", "price_lists:\n  a: {min: 10, max: 5, currency: RUB}\n  b: {min: 1, max: 1, currency: rub}\n  c: {min: x, max: 2}\n  a: {min: 1, max: 2, currency: RUB}\n", []string{
			`c.yaml:2: price_lists "a": max 5 is below min 10`,
			`c.yaml:3: price_lists "b": min and max are equal; the desk never gives a bare price, give a range`,
			`c.yaml:3: price_lists "b": currency "rub" must be an ISO 4217 code such as RUB`,
			`c.yaml:4: price_lists "c": min must be a number`,
			`c.yaml:4: price_lists "c": currency is required (e.g. RUB)`,
			`c.yaml:5: price_lists: duplicate key "a" (first at line 2)`}},
		{"sources", "sources:\n  - exhibition\n  - {id: exhibition}\n  - {label: x}\n", []string{
			`c.yaml:3: duplicate source "exhibition" (first at line 2)`,
			`c.yaml:4: source: id is required`}},
		{"qualification", "qualification:\n  - {industries: [retail], size_below: 20}\n  - {size_below: -5, reason: small}\n  - {reason: says nothing}\n  - {industries: [Розница!], reason: x}\n  - {size_below: 2.5, reason: y, staff: 3}\n  - retail\n", []string{
			`c.yaml:2: qualification: reason is required; it tells the operator why the lead is not prospective`,
			`c.yaml:3: qualification: size_below must be a whole number of staff above 0`,
			`c.yaml:4: qualification: a rule needs industries, size_below or both`,
			`c.yaml:5: qualification: industry "Розница!" may hold only letters, digits, _ . -`,
			`c.yaml:6: qualification rule: unknown key "staff" (known: industries, size_below, reason)`,
			`c.yaml:6: qualification: size_below must be a whole number of staff above 0`,
			`c.yaml:7: qualification rule must be a mapping (key: value), not "retail"`}},
		{"callback due", "callback_due: soon\n", []string{
			`c.yaml:1: callback_due "soon" is not a duration such as 30m`}},
		{"callback due range", "callback_due: 10s\n", []string{
			`c.yaml:1: callback_due 10s must be between 1m and 168h`}},
		{"webhook scheme", "webhook:\n  url: ftp://crm.example/hook\n", []string{
			`c.yaml:2: webhook: url "ftp://crm.example/hook" must be an http:// or https:// address`}},
		{"webhook no url", "webhook:\n  secret: s\n  retries: 3\n", []string{
			`c.yaml:2: webhook: url is required`,
			`c.yaml:3: webhook: unknown key "retries" (known: url, secret)`}},
		{"webhook relative", "webhook: {url: /hook}\n", []string{
			`c.yaml:1: webhook: url "/hook" must be an http:// or https:// address`}},
		{"channel costs", "channel_costs:\n  currency: rub\n  costs:\n    exhibition: -5\n    radio: 10\n    web_search: lots\n", []string{
			`c.yaml:2: channel_costs: currency "rub" must be an ISO 4217 code such as RUB`,
			`c.yaml:4: channel_costs: exhibition must not be negative`,
			`c.yaml:5: channel_costs: "radio" is not in sources (exhibition, web_search, catalogue, tv_radio, referral, other)`,
			`c.yaml:6: channel_costs: web_search must be a number`}},
		{"channel costs incomplete", "channel_costs: {costs: {exhibition: 1}, budget: 3}\n", []string{
			`c.yaml:1: channel_costs: unknown key "budget" (known: currency, costs)`,
			`c.yaml:1: channel_costs: currency is required (e.g. RUB)`}},
		{"record without media", "lines:\n  - {number: sales, record: true}\n", []string{
			`c.yaml:2: line "sales": record needs media: true (only the media bridge carries the audio it would record)`}},
		{"retention", "lines:\n  - number: a\n    media: true\n    record: true\n    retention: -720h\n  - {number: b, media: true, record: true, retention: soon}\n  - {number: c, media: true, record: true, retention: 10m}\n  - {number: d, media: true, retention: 30d}\n  - {number: e, media: yes}\n", []string{
			`c.yaml:5: line "a": retention -720h must not be negative`,
			`c.yaml:6: line "b": retention "soon" is not a duration such as 720h or 90d`,
			`c.yaml:7: line "c": retention 10m0s is under an hour; recordings would be gone before anyone heard them`,
			`c.yaml:8: line "d": retention is set but the line does not record (record: true)`,
			`c.yaml:9: line "e" media must be true or false, not "yes"`}},
		{"media section", "media:\n  trunk: {uri: \"gw.example.net\", password: x}\n  recordings: {dir: \"\", roles: [operator, boss]}\n  rtp: 1\n", []string{
			`c.yaml:2: media: trunk uri "gw.example.net" must be a SIP URI such as sip:gw.example.net:5060`,
			`c.yaml:3: media: recordings dir must not be empty`,
			`c.yaml:3: media: recordings role "boss" is not operator, supervisor or admin`,
			`c.yaml:4: media: unknown key "rtp" (known: trunk, recordings)`}},
		{"trunk", "media:\n  trunk: {username: desk}\n", []string{
			`c.yaml:2: media: trunk uri is required (e.g. sip:gw.example.net:5060)`}},
		{"trunk password", "media:\n  trunk: {uri: \"sip:gw.example.net\", password: x}\n", []string{
			`c.yaml:2: media: trunk password needs a username`}},
		{"trunk ring timeout", "media:\n  trunk: {uri: \"sip:gw.example.net\", ring_timeout: 1s}\n", []string{
			`c.yaml:2: media: trunk ring_timeout 1s must be between 5s and 5m`}},
		{"trunk ring timeout syntax", "media:\n  trunk: {uri: \"sip:gw.example.net\", ring_timeout: soon}\n", []string{
			`c.yaml:2: media: trunk ring_timeout "soon" is not a duration such as 45s`}},
		{"not a mapping", "- a\n- b\n", []string{
			`c.yaml:1: config must be a mapping (key: value), not a list`}},
		{"syntax", "lines: [\n", []string{
			`c.yaml:2: did not find expected node content`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := ParseConfig("c.yaml", []byte(tt.yaml))
			if cfg != nil || !errors.Is(err, desk.ErrInvalid) {
				t.Fatalf("want a validation error, got %v, %v", cfg, err)
			}
			if err.Error() != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.ReplaceAll(err.Error(), "\n", "\n      "), strings.Join(tt.want, "\n      "))
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	cfg, err := LoadConfig("")
	if err != nil || len(cfg.Lines) != 4 {
		t.Fatalf("empty path must give the demo config: %v %v", cfg, err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "desk.yaml")
	if err := os.WriteFile(path, []byte("# all defaults\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err = LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RingTimeout != DefaultRingTimeout || cfg.Timezone != DefaultTimezone || cfg.Language != "ru" ||
		len(cfg.Sources) != 6 || len(cfg.Lines) != 1 || cfg.Lines[0].Number != desk.DefaultLine {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte("language: ru\nlanguage: en\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path); err == nil || err.Error() != path+`:2: config: duplicate key "language" (first at line 1)` {
		t.Errorf("errors must name the file: %v", err)
	}
}

// The demo config runs with the shipped scripts; a line naming a missing script is
// caught at start with its line.
func TestCheckScripts(t *testing.T) {
	set, err := LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	if err := DefaultConfig().CheckScripts(set); err != nil {
		t.Errorf("demo config: %v", err)
	}
	cfg, err := ParseConfig("c.yaml", []byte("default_script: main\nlines:\n  - number: sales\n    script: promo\n  - number: expo\n    script: default\n"))
	if err != nil {
		t.Fatal(err)
	}
	err = cfg.CheckScripts(set)
	want := `c.yaml:1: default_script "main" is not among the scripts (default)` + "\n" +
		`c.yaml:4: line "sales": script "promo" is not among the scripts (default)`
	// The default line, added with default_script "main", is reported too, at line 0.
	if err == nil || !strings.Contains(err.Error(), want) ||
		!strings.Contains(err.Error(), `c.yaml: line "default": script "main" is not among the scripts (default)`) {
		t.Errorf("got:\n%v", err)
	}
}

// Resolve gives the page the configured choices: the sources in the script's
// language and the price list as ranges.
func TestResolve(t *testing.T) {
	set, err := LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	for _, lang := range []string{"ru", "en"} {
		s := cfg.Resolve(set.Get("default", lang))
		var src, price *desk.Field
		for i := range s.Steps {
			for j := range s.Steps[i].Fields {
				switch f := &s.Steps[i].Fields[j]; f.From {
				case FromSources:
					src = f
				case FromPriceList:
					price = f
				}
			}
		}
		if src == nil || price == nil {
			t.Fatal("default script lacks source or price field")
		}
		wantWeb := map[string]string{"ru": "Поиск в интернете", "en": "Web search"}[lang]
		if len(src.Choices) != 6 || src.Choices[1] != "web_search" || src.Options[1].Label != wantWeb {
			t.Errorf("%s sources: %v %+v", lang, src.Choices, src.Options)
		}
		if len(price.Options) != 3 || price.Options[0].Label != "WMS Basic: 90 000–150 000 RUB" {
			t.Errorf("%s price: %+v", lang, price.Options)
		}
	}
	if untouched := set.Get("default", "ru"); untouched.Steps[6].Fields[0].Choices != nil {
		t.Error("Resolve changed the set's script")
	}
}

func mustLoadShipped(t *testing.T) *ScriptSet {
	t.Helper()
	set, err := LoadScripts(scripts.FS)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestConfigScripts(t *testing.T) {
	set := mustLoadShipped(t)
	cfg := DefaultConfig()
	cfg.Language = "en"
	m := cfg.Scripts(set)
	s := m["default"]
	if len(m) != 1 || s == nil || s.Lang != "en" {
		t.Fatalf("Scripts: %v", m)
	}
	if f := s.Steps[6].Fields[0]; f.From != FromSources || len(f.Options) != 6 || f.Options[0].Label != "Exhibition" {
		t.Errorf("source field not resolved: %+v", f)
	}
	if plain := set.Map("ru")["default"]; plain.Lang != "ru" || plain.Steps[6].Fields[0].Options != nil {
		t.Errorf("Map(ru) = %+v", plain.Steps[6].Fields[0])
	}
}

func TestParseSalesConfig(t *testing.T) {
	const y = `qualification:
  - {industries: [retail, ecommerce], size_below: 20, reason: WMS does not pay off below 20 staff}
  - {size_below: 5, reason: too small}
callback_due: 45m
webhook:
  url: https://crm.example/hooks/desk
  secret: s3cret
`
	cfg, err := ParseConfig("c.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	want := []desk.QualificationRule{
		{Industries: []string{"retail", "ecommerce"}, SizeBelow: 20, Reason: "WMS does not pay off below 20 staff"},
		{SizeBelow: 5, Reason: "too small"},
	}
	if fmt.Sprint(cfg.Qualification) != fmt.Sprint(want) {
		t.Errorf("qualification = %+v", cfg.Qualification)
	}
	if cfg.CallbackDue != 45*time.Minute {
		t.Errorf("callback_due = %v", cfg.CallbackDue)
	}
	if cfg.Webhook == nil || cfg.Webhook.URL != "https://crm.example/hooks/desk" || cfg.Webhook.Secret != "s3cret" {
		t.Errorf("webhook = %+v", cfg.Webhook)
	}
	if b, _ := json.Marshal(cfg.Webhook); strings.Contains(string(b), "s3cret") {
		t.Errorf("the secret leaks into JSON: %s", b)
	}
	defaults, err := ParseConfig("c.yaml", []byte("language: ru\n"))
	if err != nil {
		t.Fatal(err)
	}
	if defaults.CallbackDue != DefaultCallbackDue || defaults.Webhook != nil || defaults.Qualification != nil ||
		DefaultConfig().CallbackDue != DefaultCallbackDue {
		t.Errorf("defaults: %v %+v %+v", defaults.CallbackDue, defaults.Webhook, defaults.Qualification)
	}
	costs, err := ParseConfig("c.yaml", []byte("channel_costs: {currency: RUB, costs: {exhibition: 120000, web_search: 45_000.5}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := costs.ChannelCosts; c.Currency != "RUB" || len(c.Costs) != 2 || c.Costs["exhibition"] != 120000 || c.Costs["web_search"] != 45000.5 {
		t.Errorf("channel_costs = %+v", c)
	}
	if len(defaults.ChannelCosts.Costs) != 0 || defaults.ChannelCosts.Currency != "" {
		t.Errorf("channel_costs default = %+v", defaults.ChannelCosts)
	}
	prices := DefaultConfig().DeskPrices()
	if len(prices) != 3 || prices[0] != (desk.PriceRange{Product: "wms-basic", Min: 90000, Max: 150000, Currency: "RUB"}) {
		t.Errorf("DeskPrices = %+v", prices)
	}
}

func TestParseMediaConfig(t *testing.T) {
	const y = `lines:
  - {number: sales, media: true}
  - {number: "+74951234567", media: true, record: true}
  - {number: expo, media: true, record: true, retention: 30d}
  - {number: support, media: true, record: true, retention: 1000h}
  - {number: plain}
media:
  trunk: {uri: "sips:+{number}@gw.example.net:5061", username: desk, password: s3cret, ring_timeout: 30s}
  recordings: {dir: /var/lib/desk/rec, roles: [admin, admin]}
`
	cfg, err := ParseConfig("m.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		number         string
		media, record  bool
		retention, raw time.Duration
	}{
		{"sales", true, false, 0, 0},
		{"+74951234567", true, true, desk.DefaultRetention, 0},
		{"expo", true, true, 30 * 24 * time.Hour, 30 * 24 * time.Hour},
		{"support", true, true, 1000 * time.Hour, 1000 * time.Hour},
		{"plain", false, false, 0, 0},
		{desk.DefaultLine, false, false, 0, 0},
	}
	for _, tt := range tests {
		l, ok := cfg.Line(tt.number)
		if !ok {
			t.Fatalf("line %s missing", tt.number)
		}
		if l.Media != tt.media || l.Record != tt.record || l.Retention != tt.raw || l.RecordingRetention() != tt.retention {
			t.Errorf("line %s: media %v record %v retention %v (%v); want %v %v %v (%v)", tt.number,
				l.Media, l.Record, l.Retention, l.RecordingRetention(), tt.media, tt.record, tt.raw, tt.retention)
		}
	}
	if !cfg.Records() {
		t.Error("Records() = false")
	}
	m := cfg.Media
	if m.Trunk == nil || m.Trunk.URI != "sips:+{number}@gw.example.net:5061" || m.Trunk.Username != "desk" || m.Trunk.Password != "s3cret" ||
		m.Trunk.RingTimeout != 30*time.Second {
		t.Errorf("trunk: %+v", m.Trunk)
	}
	if m.RecordingsDir != "/var/lib/desk/rec" || len(m.RecordingRoles) != 1 || m.RecordingRoles[0] != desk.RoleAdmin {
		t.Errorf("recordings: %+v", m)
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "s3cret") {
		t.Errorf("the trunk password leaks into JSON: %s", b)
	}

	def, err := ParseConfig("d.yaml", []byte("# defaults\n"))
	if err != nil {
		t.Fatal(err)
	}
	if def.Media.Trunk != nil || def.Media.RecordingsDir != DefaultRecordingsDir ||
		fmt.Sprint(def.Media.RecordingRoles) != "[supervisor admin]" || def.Records() {
		t.Errorf("media defaults: %+v", def.Media)
	}
	if d := DefaultConfig(); fmt.Sprint(d.Media.RecordingRoles) != "[supervisor admin]" {
		t.Errorf("demo media defaults: %+v", d.Media)
	}
}

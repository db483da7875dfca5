package yamlfile

import (
	"fmt"
	"math"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	_ "time/tzdata" // the desk's zone must load in a minimal container without /usr/share/zoneinfo

	"github.com/calldesk/desk/desk"
	"go.yaml.in/yaml/v3"
)

// Config is the desk configuration of DESK_CONFIG: what the sales lines are, how
// calls ring, and the lists the scripts take their choices from.
type Config struct {
	// Lines map dialled numbers to scripts and preset sources. It always holds the
	// default line (number "default"), added with DefaultScript when not configured.
	Lines []desk.Line `json:"lines"`
	// DefaultScript is the script of the default line and of lines that name none.
	DefaultScript string `json:"default_script"`
	// RingTimeout is how long one operator rings before the call hunts on.
	RingTimeout time.Duration `json:"ring_timeout"`
	// TrustedTrunks are the networks whose P-Asserted-Identity is believed.
	TrustedTrunks []netip.Prefix `json:"trusted_trunks,omitempty"`
	// Sources are the answers to "where did you hear of us", in order.
	Sources []Source `json:"sources"`
	// PriceList holds a price range per product, in file order.
	PriceList []PriceRange `json:"price_list,omitempty"`
	// Timezone names Location, the zone of quick deadlines such as "tomorrow 10:00".
	Timezone string         `json:"timezone"`
	Location *time.Location `json:"-"`
	// Language is the desk's default language for scripts and labels.
	Language string `json:"language"`
	// Qualification are the rules that mark a lead not prospective, in file order
	// (the first that matches gives the reason).
	Qualification []desk.QualificationRule `json:"qualification,omitempty"`
	// CallbackDue is when the callback promise of a missed call is due.
	CallbackDue time.Duration `json:"callback_due"`
	// Webhook is where completed records are POSTed; nil when none is configured.
	Webhook *Webhook `json:"webhook,omitempty"`
	// ChannelCosts is what each source channel costs, for cost per lead in the
	// sources report; an admin's entries override it channel by channel.
	ChannelCosts desk.ChannelCosts `json:"channel_costs"`
	// Media is the media bridge's configuration (lines with media: true).
	Media Media `json:"media"`

	file     string
	lineAt   map[string]int // line number → YAML line of its number
	scriptAt map[string]int // line number → YAML line of its script, for CheckScripts
	defAt    int            // YAML line of default_script
}

// Webhook is the CRM endpoint completed sales records are POSTed to.
type Webhook struct {
	URL string `json:"url"`
	// Secret signs each body (HMAC-SHA256); it never leaves the desk, not even in
	// the config as JSON.
	Secret string `json:"-"`
}

// Media configures the media bridge: where callbacks are dialled out, where
// recordings are kept and who may play them.
type Media struct {
	// Trunk is where callbacks dialled from the desk go; nil when none is
	// configured (the desk then cannot dial callbacks).
	Trunk *Trunk `json:"trunk,omitempty"`
	// RecordingsDir is the directory of recordings (DefaultRecordingsDir).
	RecordingsDir string `json:"recordings_dir"`
	// RecordingRoles may play recordings (default supervisor and admin).
	RecordingRoles []desk.Role `json:"recording_roles"`
}

// Trunk is the outbound SIP trunk: the customer's number goes into the user part
// of URI, and the trunk's digest challenge is answered with Username and Password.
type Trunk struct {
	URI      string `json:"uri"`
	Username string `json:"username,omitempty"`
	// Password never leaves the desk, not even in the config as JSON.
	Password string `json:"-"`
	// RingTimeout is how long a callback lets the customer's phone ring (YAML
	// ring_timeout, 5s to 5m); 0 is the bridge's default of 45 s.
	RingTimeout time.Duration `json:"ring_timeout,omitempty"`
}

// Records reports whether any line records its calls.
func (cfg *Config) Records() bool {
	for _, l := range cfg.Lines {
		if l.Record {
			return true
		}
	}
	return false
}

// Source is one answer to "where did you hear of us".
type Source struct {
	ID string `json:"id"`
	// Label is the text per language; the key "" is a label for every language.
	Label map[string]string `json:"label"`
}

// LabelIn returns the label in lang, else in fallback, else any, else the id.
func (s Source) LabelIn(lang, fallback string) string {
	for _, l := range []string{lang, fallback, ""} {
		if v := s.Label[l]; v != "" {
			return v
		}
	}
	for _, k := range sortedKeys(s.Label) {
		return s.Label[k]
	}
	return s.ID
}

// PriceRange is what the desk may say about a product's price: a range, never a
// bare figure.
type PriceRange struct {
	Product  string  `json:"product"`
	Name     string  `json:"name"`
	Min      float64 `json:"min"`
	Max      float64 `json:"max"`
	Currency string  `json:"currency"`
}

// String gives the range as the page shows it: "WMS Basic: 90 000–150 000 RUB".
func (p PriceRange) String() string {
	return fmt.Sprintf("%s: %s–%s %s", p.Name, formatAmount(p.Min), formatAmount(p.Max), p.Currency)
}

// Config defaults.
const (
	DefaultScriptID    = "default"
	DefaultRingTimeout = 20 * time.Second
	DefaultTimezone    = "Europe/Moscow"
	DefaultLanguage    = "ru"
	DefaultCallbackDue = 30 * time.Minute
	// DefaultRecordingsDir is where recordings go when media.recordings names no
	// directory: beside the scripts, relative to the working directory.
	DefaultRecordingsDir = "recordings"
)

// DefaultRecordingRoles may play recordings when the config names none.
func DefaultRecordingRoles() []desk.Role { return []desk.Role{desk.RoleSupervisor, desk.RoleAdmin} }

// DefaultSources are the playbook's channels, used when the config lists none.
func DefaultSources() []Source {
	return []Source{
		{ID: "exhibition", Label: map[string]string{"ru": "Выставка", "en": "Exhibition"}},
		{ID: "web_search", Label: map[string]string{"ru": "Поиск в интернете", "en": "Web search"}},
		{ID: "catalogue", Label: map[string]string{"ru": "Каталог", "en": "Catalogue"}},
		{ID: "tv_radio", Label: map[string]string{"ru": "ТВ / радио", "en": "TV / radio"}},
		{ID: "referral", Label: map[string]string{"ru": "Рекомендация", "en": "Referral"}},
		{ID: "other", Label: map[string]string{"ru": "Другое", "en": "Other"}},
	}
}

// DefaultConfig is a working demo configuration: a "sales" line preset to web
// search, an "expo" line preset to exhibition, a recorded "media" line in media
// mode, the default line and a small price list, all on the default script.
func DefaultConfig() *Config {
	loc, err := time.LoadLocation(DefaultTimezone)
	if err != nil { // cannot happen with time/tzdata linked in
		loc = time.UTC
	}
	return &Config{
		Lines: []desk.Line{
			{Number: "sales", Name: "Sales", Script: DefaultScriptID, Source: "web_search"},
			{Number: "expo", Name: "Exhibition line", Script: DefaultScriptID, Source: "exhibition"},
			// Media mode (docs/media.md): supervisors can listen in, and calls are recorded.
			{Number: "media", Name: "Sales, media mode", Script: DefaultScriptID, Source: "web_search", Media: true, Record: true},
			{Number: desk.DefaultLine, Name: "Default", Script: DefaultScriptID},
		},
		DefaultScript: DefaultScriptID,
		RingTimeout:   DefaultRingTimeout,
		Sources:       DefaultSources(),
		PriceList: []PriceRange{
			{Product: "wms-basic", Name: "WMS Basic", Min: 90000, Max: 150000, Currency: "RUB"},
			{Product: "scanner", Name: "Barcode scanner", Min: 18000, Max: 42000, Currency: "RUB"},
			{Product: "racking", Name: "Pallet racking, per bay", Min: 12000, Max: 30000, Currency: "RUB"},
		},
		Timezone:    DefaultTimezone,
		Location:    loc,
		Language:    DefaultLanguage,
		CallbackDue: DefaultCallbackDue,
		Media:       Media{RecordingsDir: DefaultRecordingsDir, RecordingRoles: DefaultRecordingRoles()},
		file:        "default config",
	}
}

// LoadConfig reads DESK_CONFIG. An empty path gives DefaultConfig. Keys left out
// keep their defaults (sources default to DefaultSources; lines to the default
// line only; the price list to none). Every mistake is reported as
// file:line: reason in ValidationErrors, unknown keys included.
func LoadConfig(path string) (*Config, error) {
	if path == "" {
		return DefaultConfig(), nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

var currencyPattern = regexp.MustCompile(`^[A-Z]{3}$`)

// ParseConfig parses a configuration held in memory; name is used in errors.
func ParseConfig(name string, data []byte) (*Config, error) {
	var errs ValidationErrors
	c := &collector{file: name, errs: &errs}
	cfg := &Config{
		DefaultScript: DefaultScriptID,
		RingTimeout:   DefaultRingTimeout,
		Timezone:      DefaultTimezone,
		Language:      DefaultLanguage,
		CallbackDue:   DefaultCallbackDue,
		Media:         Media{RecordingsDir: DefaultRecordingsDir, RecordingRoles: DefaultRecordingRoles()},
		file:          name,
		lineAt:        map[string]int{},
		scriptAt:      map[string]int{},
	}
	if root := c.parseDoc(data, true); root != nil {
		c.config(root, cfg)
	} else if len(errs) == 0 {
		// A file with nothing but comments: every default applies.
		c.config(&yaml.Node{Kind: yaml.MappingNode}, cfg)
	}
	if err := errs.errOrNil(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (c *collector) config(root *yaml.Node, cfg *Config) {
	m, ok := c.mapping(root, "config", "lines", "default_script", "ring_timeout", "trusted_trunks",
		"sources", "price_lists", "timezone", "language", "qualification", "callback_due", "webhook", "channel_costs", "media")
	if !ok {
		return
	}
	if n := m.get("default_script"); n != nil {
		if s, ok := c.str(n, "default_script"); ok {
			if !idPattern.MatchString(s) {
				c.add(n, "default_script %q is not a script id", s)
			}
			cfg.DefaultScript, cfg.defAt = s, n.Line
		}
	}
	if n := m.get("ring_timeout"); n != nil {
		if d, ok := c.duration(n, "ring_timeout", "20s", time.Second, 5*time.Minute); ok {
			cfg.RingTimeout = d
		}
	}
	if n := m.get("timezone"); n != nil {
		if s, ok := c.str(n, "timezone"); ok {
			cfg.Timezone = s
		}
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil || cfg.Timezone == "" || cfg.Timezone == "Local" {
		c.add(m.line("timezone"), "timezone %q is not an IANA zone such as Europe/Moscow", cfg.Timezone)
	} else {
		cfg.Location = loc
	}
	if n := m.get("language"); n != nil {
		if s, ok := c.str(n, "language"); ok {
			if !langPattern.MatchString(s) {
				c.add(n, "language %q must be a lower-case ISO 639 code such as ru or en", s)
			} else {
				cfg.Language = s
			}
		}
	}
	if n := m.get("trusted_trunks"); n != nil {
		if items, ok := c.seq(n, "trusted_trunks"); ok {
			for _, it := range items {
				s, ok := c.str(it, "trusted_trunks entry")
				if !ok {
					continue
				}
				p, err := parsePrefix(s)
				if err != nil {
					c.add(it, "trusted_trunks: %q is not a CIDR (10.0.0.0/8) or an IP address", s)
					continue
				}
				cfg.TrustedTrunks = append(cfg.TrustedTrunks, p)
			}
		}
	}
	cfg.Sources = DefaultSources()
	if n := m.get("sources"); n != nil {
		cfg.Sources = c.sources(n)
	}
	if n := m.get("price_lists"); n != nil {
		cfg.PriceList = c.priceList(n)
	}
	if n := m.get("lines"); n != nil {
		c.lines(n, cfg)
	}
	if n := m.get("qualification"); n != nil {
		cfg.Qualification = c.qualification(n)
	}
	if n := m.get("callback_due"); n != nil {
		if s, ok := c.str(n, "callback_due"); ok {
			d, err := time.ParseDuration(s)
			switch {
			case err != nil:
				c.add(n, "callback_due %q is not a duration such as 30m", s)
			case d < time.Minute || d > 7*24*time.Hour:
				c.add(n, "callback_due %s must be between 1m and 168h", d)
			default:
				cfg.CallbackDue = d
			}
		}
	}
	if n := m.get("webhook"); n != nil {
		cfg.Webhook = c.webhook(n)
	}
	if n := m.get("channel_costs"); n != nil {
		cfg.ChannelCosts = c.channelCosts(n, cfg)
	}
	if n := m.get("media"); n != nil {
		c.media(n, &cfg.Media)
	}
	if _, ok := cfg.Line(desk.DefaultLine); !ok {
		cfg.Lines = append(cfg.Lines, desk.Line{Number: desk.DefaultLine, Name: "Default", Script: cfg.DefaultScript})
	}
}

// qualification reads the rules that mark a lead not prospective:
//
//	qualification:
//	  - {industries: [retail], size_below: 20, reason: "WMS does not pay off below 20 staff"}
func (c *collector) qualification(n *yaml.Node) []desk.QualificationRule {
	items, ok := c.seq(n, "qualification")
	if !ok {
		return nil
	}
	var out []desk.QualificationRule
	for _, it := range items {
		m, ok := c.mapping(it, "qualification rule", "industries", "size_below", "reason")
		if !ok {
			continue
		}
		var r desk.QualificationRule
		good := true
		if v := m.get("industries"); v != nil {
			if list, ok := c.seq(v, "qualification industries"); ok {
				for _, in := range list {
					if s, ok := c.str(in, "qualification industry"); ok {
						if !idPattern.MatchString(s) {
							c.add(in, "qualification: industry %q may hold only letters, digits, _ . -", s)
							good = false
							continue
						}
						r.Industries = append(r.Industries, s)
					} else {
						good = false
					}
				}
			} else {
				good = false
			}
		}
		if v := m.get("size_below"); v != nil {
			n, err := strconv.Atoi(v.Value)
			if v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil || n < 1 {
				c.add(v, "qualification: size_below must be a whole number of staff above 0")
				good = false
			} else {
				r.SizeBelow = n
			}
		}
		if v := m.get("reason"); v == nil {
			c.add(m.line("reason"), "qualification: reason is required; it tells the operator why the lead is not prospective")
			good = false
		} else if s, ok := c.str(v, "qualification reason"); ok && strings.TrimSpace(s) != "" {
			r.Reason = strings.TrimSpace(s)
		} else {
			if ok {
				c.add(v, "qualification: reason is empty")
			}
			good = false
		}
		if good && len(r.Industries) == 0 && r.SizeBelow == 0 {
			c.add(it, "qualification: a rule needs industries, size_below or both")
			good = false
		}
		if good {
			out = append(out, r)
		}
	}
	return out
}

// webhook reads the CRM endpoint: {url: https://crm.example/hook, secret: ...}.
func (c *collector) webhook(n *yaml.Node) *Webhook {
	m, ok := c.mapping(n, "webhook", "url", "secret")
	if !ok {
		return nil
	}
	w := &Webhook{}
	v := m.get("url")
	if v == nil {
		c.add(m.line("url"), "webhook: url is required")
		return nil
	}
	s, ok := c.str(v, "webhook url")
	if !ok {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add(v, "webhook: url %q must be an http:// or https:// address", s)
		return nil
	}
	w.URL = s
	if v := m.get("secret"); v != nil {
		if s, ok := c.str(v, "webhook secret"); ok {
			w.Secret = s
		}
	}
	return w
}

// channelCosts reads what each source channel costs, in one currency:
//
//	channel_costs:
//	  currency: RUB
//	  costs: {exhibition: 120000, web_search: 45000}
//
// Each channel must be one of the sources; each cost a number, 0 or more.
func (c *collector) channelCosts(n *yaml.Node, cfg *Config) desk.ChannelCosts {
	out := desk.ChannelCosts{Costs: map[string]float64{}}
	m, ok := c.mapping(n, "channel_costs", "currency", "costs")
	if !ok {
		return out
	}
	if v := m.get("currency"); v == nil {
		c.add(m.line("currency"), "channel_costs: currency is required (e.g. RUB)")
	} else if s, ok := c.str(v, "channel_costs currency"); ok {
		if !currencyPattern.MatchString(s) {
			c.add(v, "channel_costs: currency %q must be an ISO 4217 code such as RUB", s)
		}
		out.Currency = s
	}
	v := m.get("costs")
	if v == nil {
		c.add(m.line("costs"), "channel_costs: costs is required, a mapping of source to cost")
		return out
	}
	cm, ok := c.mapping(v, "channel_costs costs")
	if !ok {
		return out
	}
	ids := make([]string, len(cfg.Sources))
	for i, src := range cfg.Sources {
		ids[i] = src.ID
	}
	for i := 0; i+1 < len(v.Content); i += 2 {
		k := v.Content[i]
		if cm.keys[k.Value] != k { // a duplicate or bad key, already reported
			continue
		}
		if _, known := cfg.Source(k.Value); !known {
			c.add(k, "channel_costs: %q is not in sources (%s)", k.Value, strings.Join(ids, ", "))
			continue
		}
		var f float64
		if c.amount(cm, k.Value, "channel_costs", &f) {
			out.Costs[k.Value] = f
		}
	}
	return out
}

// DeskPrices is the price list as the desk's sales record names ranges.
func (cfg *Config) DeskPrices() []desk.PriceRange {
	out := make([]desk.PriceRange, len(cfg.PriceList))
	for i, p := range cfg.PriceList {
		out[i] = desk.PriceRange{Product: p.Product, Min: p.Min, Max: p.Max, Currency: p.Currency}
	}
	return out
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func (c *collector) sources(n *yaml.Node) []Source {
	items, ok := c.seq(n, "sources")
	if !ok {
		return DefaultSources()
	}
	var out []Source
	seen := map[string]int{}
	for _, it := range items {
		var src Source
		if it.Kind == yaml.ScalarNode {
			s, ok := c.str(it, "source")
			if !ok {
				continue
			}
			src = Source{ID: s, Label: map[string]string{"": s}}
		} else {
			m, ok := c.mapping(it, "source", "id", "label")
			if !ok {
				continue
			}
			idn := m.get("id")
			if idn == nil {
				c.add(it, "source: id is required")
				continue
			}
			id, ok := c.str(idn, "source id")
			if !ok {
				continue
			}
			src = Source{ID: id, Label: map[string]string{}}
			if ln := m.get("label"); ln != nil {
				src.Label = c.labels(ln, "source "+strconv.Quote(id)+" label")
			} else {
				src.Label[""] = id
			}
		}
		if !idPattern.MatchString(src.ID) {
			c.add(it, "source id %q may hold only letters, digits, _ . -", src.ID)
			continue
		}
		if first, dup := seen[src.ID]; dup {
			c.add(it, "duplicate source %q (first at line %d)", src.ID, first)
			continue
		}
		seen[src.ID] = it.Line
		out = append(out, src)
	}
	if len(out) == 0 && len(items) == 0 {
		c.add(n, "sources lists nothing; leave the key out for the default channels")
	}
	return out
}

// labels reads a label given as text or as a mapping language → text.
func (c *collector) labels(n *yaml.Node, what string) map[string]string {
	out := map[string]string{}
	if n.Kind == yaml.ScalarNode {
		if s, ok := c.str(n, what); ok {
			out[""] = s
		}
		return out
	}
	m, ok := c.mapping(n, what)
	if !ok {
		return out
	}
	for _, k := range sortedKeys(m.vals) {
		if !langPattern.MatchString(k) {
			c.add(m.keys[k], "%s: %q is not a language code", what, k)
			continue
		}
		if s, ok := c.str(m.vals[k], what); ok {
			out[k] = s
		}
	}
	return out
}

func (c *collector) priceList(n *yaml.Node) []PriceRange {
	m, ok := c.mapping(n, "price_lists")
	if !ok {
		return nil
	}
	var out []PriceRange
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if m.keys[k.Value] != k { // a duplicate or bad key, already reported
			continue
		}
		product := k.Value
		what := fmt.Sprintf("price_lists %q", product)
		if !idPattern.MatchString(product) {
			c.add(k, "%s: product id may hold only letters, digits, _ . -", what)
			continue
		}
		pm, ok := c.mapping(n.Content[i+1], what, "name", "min", "max", "currency")
		if !ok {
			continue
		}
		pr := PriceRange{Product: product, Name: product}
		if v := pm.get("name"); v != nil {
			if s, ok := c.str(v, what+" name"); ok {
				pr.Name = s
			}
		}
		minOK := c.amount(pm, "min", what, &pr.Min)
		maxOK := c.amount(pm, "max", what, &pr.Max)
		if minOK && maxOK && pr.Max < pr.Min {
			c.add(pm.line("max"), "%s: max %s is below min %s", what, formatAmount(pr.Max), formatAmount(pr.Min))
		}
		if minOK && maxOK && pr.Max == pr.Min {
			c.add(pm.line("max"), "%s: min and max are equal; the desk never gives a bare price, give a range", what)
		}
		if v := pm.get("currency"); v == nil {
			c.add(pm.line("currency"), "%s: currency is required (e.g. RUB)", what)
		} else if s, ok := c.str(v, what+" currency"); ok {
			if !currencyPattern.MatchString(s) {
				c.add(v, "%s: currency %q must be an ISO 4217 code such as RUB", what, s)
			}
			pr.Currency = s
		}
		out = append(out, pr)
	}
	return out
}

func (c *collector) amount(m mapping, key, what string, dst *float64) bool {
	v := m.get(key)
	if v == nil {
		c.add(m.line(key), "%s: %s is required", what, key)
		return false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(v.Value, "_", ""), 64)
	if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") || err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		c.add(v, "%s: %s must be a number", what, key)
		return false
	}
	if f < 0 {
		c.add(v, "%s: %s must not be negative", what, key)
		return false
	}
	*dst = f
	return true
}

func (c *collector) lines(n *yaml.Node, cfg *Config) {
	items, ok := c.seq(n, "lines")
	if !ok {
		return
	}
	for _, it := range items {
		m, ok := c.mapping(it, "line", "number", "name", "script", "source", "media", "record", "retention")
		if !ok {
			continue
		}
		var l desk.Line
		nn := m.get("number")
		if nn == nil {
			c.add(it, "line: number is required")
			continue
		}
		if s, ok := c.str(nn, "line number"); ok {
			l.Number = strings.TrimSpace(s)
		}
		if l.Number == "" {
			continue
		}
		what := fmt.Sprintf("line %q", l.Number)
		if first, dup := cfg.lineAt[l.Number]; dup {
			c.add(nn, "%s is configured twice (first at line %d)", what, first)
			continue
		}
		l.Name = l.Number
		if v := m.get("name"); v != nil {
			if s, ok := c.str(v, what+" name"); ok {
				l.Name = s
			}
		}
		l.Script = cfg.DefaultScript
		cfg.lineAt[l.Number] = nn.Line
		cfg.scriptAt[l.Number] = nn.Line
		if v := m.get("script"); v != nil {
			if s, ok := c.str(v, what+" script"); ok {
				l.Script = s
				cfg.scriptAt[l.Number] = v.Line
			}
		}
		if v := m.get("source"); v != nil {
			if s, ok := c.str(v, what+" source"); ok {
				if _, known := cfg.Source(s); !known {
					ids := make([]string, len(cfg.Sources))
					for i, src := range cfg.Sources {
						ids[i] = src.ID
					}
					c.add(v, "%s: source %q is not in sources (%s)", what, s, strings.Join(ids, ", "))
				}
				l.Source = s
			}
		}
		c.lineMedia(m, what, &l)
		cfg.Lines = append(cfg.Lines, l)
	}
}

// lineMedia reads a line's media mode, recording and retention, as in
// {number: "+74951234567", media: true, record: true, retention: 90d}. Recording needs media mode (only the bridge carries the audio), and a
// retention needs recording.
func (c *collector) lineMedia(m mapping, what string, l *desk.Line) {
	if v := m.get("media"); v != nil {
		if b, ok := c.boolean(v, what+" media"); ok {
			l.Media = b
		}
	}
	if v := m.get("record"); v != nil {
		if b, ok := c.boolean(v, what+" record"); ok {
			l.Record = b
			if b && !l.Media {
				c.add(v, "%s: record needs media: true (only the media bridge carries the audio it would record)", what)
			}
		}
	}
	if v := m.get("retention"); v != nil {
		s, ok := c.str(v, what+" retention")
		if !ok {
			return
		}
		d, err := desk.ParseQuickOffset(strings.TrimSpace(s))
		switch {
		case strings.HasPrefix(strings.TrimSpace(s), "-"):
			c.add(v, "%s: retention %s must not be negative", what, s)
		case err != nil:
			c.add(v, "%s: retention %q is not a duration such as 720h or 90d", what, s)
		case d < time.Hour:
			c.add(v, "%s: retention %s is under an hour; recordings would be gone before anyone heard them", what, d)
		case !l.Record:
			c.add(v, "%s: retention is set but the line does not record (record: true)", what)
		default:
			l.Retention = d
		}
	}
}

// media reads the media bridge's section:
//
//	media:
//	  trunk: {uri: "sip:gw.example.net:5060", username: desk, password: secret}
//	  recordings: {dir: /var/lib/desk/recordings, roles: [supervisor, admin]}
func (c *collector) media(n *yaml.Node, out *Media) {
	m, ok := c.mapping(n, "media", "trunk", "recordings")
	if !ok {
		return
	}
	if v := m.get("trunk"); v != nil {
		out.Trunk = c.trunk(v)
	}
	v := m.get("recordings")
	if v == nil {
		return
	}
	rm, ok := c.mapping(v, "media recordings", "dir", "roles")
	if !ok {
		return
	}
	if d := rm.get("dir"); d != nil {
		if s, ok := c.str(d, "media recordings dir"); ok {
			if s = strings.TrimSpace(s); s == "" {
				c.add(d, "media: recordings dir must not be empty")
			} else {
				out.RecordingsDir = s
			}
		}
	}
	if r := rm.get("roles"); r != nil {
		items, ok := c.seq(r, "media recordings roles")
		if !ok {
			return
		}
		var roles []desk.Role
		for _, it := range items {
			s, ok := c.str(it, "media recordings role")
			if !ok {
				continue
			}
			if role := desk.Role(s); !role.Valid() {
				c.add(it, "media: recordings role %q is not operator, supervisor or admin", s)
			} else if !contains(roleStrings(roles), s) {
				roles = append(roles, role)
			}
		}
		out.RecordingRoles = roles
	}
}

func roleStrings(rs []desk.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

// trunk reads the outbound trunk: {uri: sip:host[:port], username, password,
// ring_timeout}.
func (c *collector) trunk(n *yaml.Node) *Trunk {
	m, ok := c.mapping(n, "media trunk", "uri", "username", "password", "ring_timeout")
	if !ok {
		return nil
	}
	v := m.get("uri")
	if v == nil {
		c.add(m.line("uri"), "media: trunk uri is required (e.g. sip:gw.example.net:5060)")
		return nil
	}
	s, ok := c.str(v, "media trunk uri")
	if !ok {
		return nil
	}
	t := &Trunk{URI: strings.TrimSpace(s)}
	rest, sip := strings.CutPrefix(t.URI, "sip:")
	if !sip {
		rest, sip = strings.CutPrefix(t.URI, "sips:")
	}
	if _, host, found := strings.Cut(rest, "@"); found {
		rest = host
	}
	if !sip || rest == "" || strings.ContainsAny(rest, " \t\r\n<>\"") {
		c.add(v, "media: trunk uri %q must be a SIP URI such as sip:gw.example.net:5060", s)
		return nil
	}
	if u := m.get("username"); u != nil {
		if s, ok := c.str(u, "media trunk username"); ok {
			t.Username = s
		}
	}
	if p := m.get("password"); p != nil {
		if s, ok := c.str(p, "media trunk password"); ok {
			t.Password = s
			if t.Username == "" {
				c.add(p, "media: trunk password needs a username")
			}
		}
	}
	if r := m.get("ring_timeout"); r != nil {
		if d, ok := c.duration(r, "media: trunk ring_timeout", "45s", 5*time.Second, 5*time.Minute); ok {
			t.RingTimeout = d
		}
	}
	return t
}

// Line returns the configured line with exactly this number.
func (cfg *Config) Line(number string) (desk.Line, bool) {
	for _, l := range cfg.Lines {
		if l.Number == number {
			return l, true
		}
	}
	return desk.Line{}, false
}

// DefaultLine is the line that catches every number not otherwise configured.
func (cfg *Config) DefaultLine() desk.Line {
	if l, ok := cfg.Line(desk.DefaultLine); ok {
		return l
	}
	return desk.Line{Number: desk.DefaultLine, Name: "Default", Script: cfg.DefaultScript}
}

// Source returns the source with this id.
func (cfg *Config) Source(id string) (Source, bool) {
	for _, s := range cfg.Sources {
		if s.ID == id {
			return s, true
		}
	}
	return Source{}, false
}

// Price returns the price range of a product.
func (cfg *Config) Price(product string) (PriceRange, bool) {
	for _, p := range cfg.PriceList {
		if p.Product == product {
			return p, true
		}
	}
	return PriceRange{}, false
}

// Trusted reports whether addr is inside a trusted trunk network.
func (cfg *Config) Trusted(addr netip.Addr) bool {
	addr = addr.Unmap()
	for _, p := range cfg.TrustedTrunks {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// CheckScripts reports, as file:line: reason, every line whose script is not in
// set, and a default_script that is not. Run it at start after both are loaded.
func (cfg *Config) CheckScripts(set *ScriptSet) error {
	var errs ValidationErrors
	c := &collector{file: cfg.file, errs: &errs}
	if cfg.file == "" {
		c.file = "config"
	}
	if !set.Has(cfg.DefaultScript) {
		c.at(cfg.defAt, "default_script %q is not among the scripts (%s)", cfg.DefaultScript, strings.Join(set.IDs(), ", "))
	}
	for _, l := range cfg.Lines {
		if l.Script != "" && !set.Has(l.Script) {
			c.at(cfg.scriptAt[l.Number], "line %q: script %q is not among the scripts (%s)", l.Number, l.Script, strings.Join(set.IDs(), ", "))
		}
	}
	return errs.errOrNil()
}

// Resolve returns a copy of s whose fields with from: sources or from: price_list
// carry the choices of this configuration, labelled in the script's language.
// Price list choices show the range ("WMS Basic: 90 000–150 000 RUB"), never a
// bare price.
func (cfg *Config) Resolve(s *desk.Script) *desk.Script {
	out := cloneScript(s)
	if out == nil {
		return nil
	}
	for i := range out.Steps {
		for j := range out.Steps[i].Fields {
			f := &out.Steps[i].Fields[j]
			switch f.From {
			case FromSources:
				f.Choices, f.Options = nil, nil
				for _, src := range cfg.Sources {
					f.Choices = append(f.Choices, src.ID)
					f.Options = append(f.Options, desk.Option{ID: src.ID, Label: src.LabelIn(out.Lang, cfg.Language)})
				}
			case FromPriceList:
				f.Choices, f.Options = nil, nil
				for _, p := range cfg.PriceList {
					f.Choices = append(f.Choices, p.Product)
					f.Options = append(f.Options, desk.Option{ID: p.Product, Label: p.String()})
				}
			}
		}
	}
	return out
}

// Scripts returns every script of set in the desk's language with the
// configuration's choices filled in (Resolve): what the pop should send.
func (cfg *Config) Scripts(set *ScriptSet) map[string]*desk.Script {
	out := set.Map(cfg.Language)
	for id, s := range out {
		out[id] = cfg.Resolve(s)
	}
	return out
}

// formatAmount writes 150000 as "150 000" and 9.5 as "9.50".
func formatAmount(f float64) string {
	s := strconv.FormatFloat(f, 'f', 2, 64)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, r := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(r)
	}
	if frac != "00" {
		b.WriteString("." + frac)
	}
	return b.String()
}

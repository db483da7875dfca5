package desk

// Script is a guided call script: the steps an operator walks through on a line.
// Scripts are YAML files in scripts/, loaded and validated at start (desk/yamlfile).
type Script struct {
	ID    string `json:"id" yaml:"id"`
	Title string `json:"title" yaml:"title"`
	Lang  string `json:"lang" yaml:"lang"`
	// Langs are every language the script exists in, the default first, so a page
	// can offer to switch.
	Langs []string `json:"langs,omitempty" yaml:"langs"`
	Steps []Step   `json:"steps" yaml:"steps"`
}

// Step is one step of a script.
type Step struct {
	ID    string `json:"id" yaml:"id"`
	Kind  string `json:"kind" yaml:"kind"`
	Title string `json:"title,omitempty" yaml:"title"`
	Text  string `json:"text,omitempty" yaml:"text"`
	// Hint is advice for the operator, shown but not read aloud.
	Hint    string   `json:"hint,omitempty" yaml:"hint"`
	Fields  []Field  `json:"fields,omitempty" yaml:"fields"`
	Options []Option `json:"options,omitempty" yaml:"options"`
	Next    string   `json:"next,omitempty" yaml:"next"`
}

// Field is a value the operator captures in a step.
type Field struct {
	ID       string   `json:"id" yaml:"id"`
	Label    string   `json:"label" yaml:"label"`
	Type     string   `json:"type" yaml:"type"`
	Required bool     `json:"required,omitempty" yaml:"required"`
	Choices  []string `json:"choices,omitempty" yaml:"choices"`
	// Options are the choices with their labels in the script's language, in the
	// order of Choices (which holds their ids, the values stored).
	Options []Option `json:"options,omitempty" yaml:"-"`
	// Bind names the sales-record attribute the field fills, e.g. "contact.name" or
	// "promise.due" (see yamlfile.Binds); the engine keys its rules on it.
	Bind string `json:"bind,omitempty" yaml:"bind"`
	// From is where a choice field's choices come from at pop time: "sources" or
	// "price_list" of the desk configuration.
	From string `json:"from,omitempty" yaml:"from"`
	// When shows the field only when another field of the step has a value:
	// "outcome=refusal".
	When string `json:"when,omitempty" yaml:"when"`
	// Quick are one-click values: phrases for text fields, presets such as "+2h" or
	// "tomorrow 10:00" for date and time fields.
	Quick []string `json:"quick,omitempty" yaml:"quick"`
}

// Option is an answer to a question step; Next branches the script.
type Option struct {
	ID    string `json:"id" yaml:"id"`
	Label string `json:"label" yaml:"label"`
	Next  string `json:"next,omitempty" yaml:"next"`
	// Set is what choosing the option records, e.g. {"interest.type": "deal"}.
	Set map[string]string `json:"set,omitempty" yaml:"set"`
}

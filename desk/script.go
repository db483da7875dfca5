package desk

// Script is a guided call script: the steps an operator walks through on a line.
// Scripts are YAML files in scripts/, loaded and validated at start (desk/yamlfile).
type Script struct {
	ID    string `json:"id" yaml:"id"`
	Title string `json:"title" yaml:"title"`
	Lang  string `json:"lang" yaml:"lang"`
	Steps []Step `json:"steps" yaml:"steps"`
}

// Step is one step of a script.
type Step struct {
	ID      string   `json:"id" yaml:"id"`
	Kind    string   `json:"kind" yaml:"kind"`
	Title   string   `json:"title,omitempty" yaml:"title"`
	Text    string   `json:"text,omitempty" yaml:"text"`
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
}

// Option is an answer to a question step; Next branches the script.
type Option struct {
	ID    string `json:"id" yaml:"id"`
	Label string `json:"label" yaml:"label"`
	Next  string `json:"next,omitempty" yaml:"next"`
}

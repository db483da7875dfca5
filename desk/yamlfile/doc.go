// Package yamlfile loads the desk's YAML files: the call scripts (scripts/*.yaml)
// and the optional desk configuration (DESK_CONFIG).
//
// Both are read through yaml.Node rather than straight into structs, because every
// mistake an author makes must be reported as file:line: reason, and all of them at
// once: an operator fixing a script should not have to rerun the check once per typo.
// For the same reason unknown keys are errors, never silently ignored.
//
// A script file holds one script in one or more languages. Every piece of text the
// operator reads is given per language ({ru: ..., en: ...}); the loader checks that
// no translation is missing and produces one desk.Script per language, which is what
// the pop sends to the page. See docs/scripts.md for the schema.
package yamlfile

// Package scripts holds the call scripts shipped with the desk, embedded so the
// binary runs without the directory; DESK_SCRIPTS points at a directory to use
// edited ones instead. The schema is in docs/scripts.md.
package scripts

import "embed"

// FS holds every shipped script (*.yaml).
//
//go:embed *.yaml
var FS embed.FS

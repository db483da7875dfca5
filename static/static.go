// Package static holds the desk's browser pages, embedded into the binary: the
// operator page (index.html), the supervisor page, their scripts, styles and the
// Russian and English dictionary. There is no build step; the scripts are plain
// ES modules, loaded from files because the Content-Security-Policy forbids
// inline script.
package static

import "embed"

// FS holds the page files at its root.
//
//go:embed index.html supervisor.html desk.css common.js desk.js supervisor.js i18n.js outbox.js script.js promises.js card.js favicon.svg
var FS embed.FS

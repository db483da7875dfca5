// Package static holds the desk's browser pages, embedded into the binary: the
// operator page (index.html), the supervisor's live board (supervisor.html), the
// reports with their charts (reports.html), their scripts, styles and the Russian
// and English dictionary. There is no build step; the scripts are plain ES
// modules, loaded from files because the Content-Security-Policy forbids inline
// script, and the one library, Chart.js, is vendored in vendor/ with its licence.
package static

import "embed"

// FS holds the page files at its root.
//
//go:embed index.html supervisor.html reports.html desk.css common.js desk.js supervisor.js reports.js whisper.js i18n.js outbox.js script.js promises.js card.js favicon.svg vendor/chart.umd.min.js vendor/chart.js.LICENSE.md vendor/README.md
var FS embed.FS

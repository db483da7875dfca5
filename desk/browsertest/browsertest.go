// Package browsertest drives Debian's headless Chromium for page tests, with the
// flags this closed network needs (no background networking, no component updates).
//
// A missing browser fails the test rather than skipping it: CI installs chromium,
// and a page test that silently skips proves nothing. DESK_NO_BROWSER=1 skips on purpose.
package browsertest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Start starts Debian's headless chromium for a page test. The CI installs it,
// so a missing browser fails the test; DESK_NO_BROWSER=1 skips it on purpose.
func Start(t testing.TB) context.Context {
	t.Helper()
	if os.Getenv("DESK_NO_BROWSER") == "1" {
		t.Skip("DESK_NO_BROWSER=1: page tests skipped")
	}
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatalf("page test needs chromium (apt-get install chromium), or set DESK_NO_BROWSER=1 to skip: %v", err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("lang", "en-US"),
		chromedp.Flag("window-size", "1100,900"),
		chromedp.UserDataDir(t.TempDir()),
	)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil { // start the browser without a deadline
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// Step runs actions with a 15 s deadline and fails the test on error.
func Step(t testing.TB, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Text returns the textContent of the element with that id.
func Text(t testing.TB, ctx context.Context, id string) string {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.getElementById(`+QuoteJS(id)+`).textContent`))
	if err != nil {
		t.Fatalf("read #%s: %v", id, err)
	}
	return v
}

// Eval evaluates a JavaScript expression.
func Eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// WaitFor polls a JavaScript expression until it is truthy, for up to 10 s.
func WaitFor(t testing.TB, ctx context.Context, what, expr string) {
	t.Helper()
	Step(t, ctx, "wait for "+what, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(10*time.Second)))
}

// QuoteJS quotes s as a JavaScript string literal.
func QuoteJS(s string) string { return "'" + strings.ReplaceAll(s, "'", `\'`) + "'" }

// Screenshot saves a PNG of the page to $DESK_SCREENSHOTS/name.png when that is set,
// so a person can look at what the test saw.
func Screenshot(t testing.TB, ctx context.Context, name string) {
	dir := os.Getenv("DESK_SCREENSHOTS")
	if dir == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
}

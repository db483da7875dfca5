package recordfile

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/calldesk/desk/desk"
)

func TestCreateOpenSweep(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	dir := filepath.Join(t.TempDir(), "rec")
	d, err := New(dir, WithClock(clock))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v; want 0700", st.Mode().Perm())
	}

	const id = "a84b4c76e66710@pc33.example.com"
	f, err := d.Create(id, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("RIFF....WAVE"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, _ := os.Stat(f.Name()); st.Mode().Perm() != 0o600 {
		t.Errorf("file mode %v; want 0600", st.Mode().Perm())
	}
	name := filepath.Base(f.Name())
	if strings.Contains(name, "pc33") || !strings.HasSuffix(name, Ext) {
		t.Errorf("file name %q must hide the Call-ID and end in %s", name, Ext)
	}
	if exp, _, ok := parse(name); !ok || !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("name %q: expiry %v, %v; want %v", name, exp, ok, now.Add(time.Hour))
	}
	if _, err := d.Create(id, time.Hour); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Create: %v; want ErrExist", err)
	}

	r, err := d.OpenRecording(id)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "RIFF....WAVE" {
		t.Errorf("read %q", b)
	}

	tests := []struct {
		name string
		id   string
		at   time.Time
	}{
		{"unknown call", "other@host", now},
		{"empty call id", "", now},
		{"expired but not swept", id, now.Add(time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			now = tc.at
			defer func() { now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }()
			if _, err := d.Open(tc.id); !errors.Is(err, desk.ErrNotFound) {
				t.Errorf("Open: %v; want ErrNotFound", err)
			}
		})
	}

	// Another file in the directory is never swept.
	other := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(other, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := d.Create("second@host", 48*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if n, err := d.Sweep(now.Add(30 * time.Minute)); err != nil || n != 0 {
		t.Errorf("early sweep removed %d, %v; want 0", n, err)
	}
	if n, err := d.Sweep(now.Add(2 * time.Hour)); err != nil || n != 1 {
		t.Errorf("sweep removed %d, %v; want 1", n, err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("a foreign file was swept: %v", err)
	}
	if f, err := d.Open("second@host"); err != nil {
		t.Errorf("the recording kept 48h is gone: %v", err)
	} else {
		f.Close()
	}
}

func TestCreateRefuses(t *testing.T) {
	d, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		id   string
		keep time.Duration
	}{
		{"no call id", "", time.Hour},
		{"no retention", "x@y", 0},
		{"negative retention", "x@y", -time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := d.Create(tc.id, tc.keep); !errors.Is(err, desk.ErrInvalid) {
				t.Errorf("Create: %v; want ErrInvalid", err)
			}
		})
	}
	if _, err := New(""); !errors.Is(err, desk.ErrInvalid) {
		t.Errorf("New(\"\"): %v; want ErrInvalid", err)
	}
}

func TestRunSweepsUntilCancelled(t *testing.T) {
	now := time.Now()
	d, err := New(t.TempDir(), WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	f, err := d.Create("gone@host", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	now = now.Add(time.Minute)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx, time.Hour); close(done) }()
	deadline := time.Now().Add(2 * time.Second)
	for {
		if _, err := os.Stat(f.Name()); errors.Is(err, fs.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not sweep at start")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
}

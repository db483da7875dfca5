// Package recordfile keeps call recordings (stereo WAV files written by the media
// bridge) in one directory, and deletes each when its retention is over.
//
// A file's name carries its expiry and a hash of the call's SIP Call-ID:
//
//	<expiry, Unix seconds>-<first 32 hex digits of SHA-256(SIP Call-ID)>.wav
//
// so retention needs no database (a sweep reads the directory and removes the
// names whose time has passed), and no name reveals a Call-ID, which holds host
// names and is chosen by the caller's equipment. The directory is 0700 and the
// files 0600: recordings are personal data.
package recordfile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/calldesk/desk/desk"
)

// Ext is the extension of every recording.
const Ext = ".wav"

// hashLen is how many hex digits of the SHA-256 name a file: 128 bits, so two
// calls never share a name.
const hashLen = 32

// Dir is a directory of recordings. It is safe for concurrent use.
type Dir struct {
	dir string
	log *slog.Logger
	now func() time.Time
}

// Option configures a Dir.
type Option func(*Dir)

// WithLogger sets the logger of Run.
func WithLogger(l *slog.Logger) Option {
	return func(d *Dir) {
		if l != nil {
			d.log = l
		}
	}
}

// WithClock replaces time.Now (Create's expiry and Open's check), for tests.
func WithClock(now func() time.Time) Option {
	return func(d *Dir) {
		if now != nil {
			d.now = now
		}
	}
}

// New returns the store in dir, creating it (0700) when missing.
func New(dir string, opts ...Option) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("recordings: no directory given: %w", desk.ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("recordings: %w", err)
	}
	d := &Dir{dir: dir, log: slog.Default(), now: time.Now}
	for _, o := range opts {
		o(d)
	}
	return d, nil
}

// Path returns the directory.
func (d *Dir) Path() string { return d.dir }

// key is the hashed part of the names of sipCallID's recordings.
func key(sipCallID string) string {
	sum := sha256.Sum256([]byte(sipCallID))
	return hex.EncodeToString(sum[:])[:hashLen]
}

// parse splits a recording's file name; false for any other file.
func parse(name string) (expiry time.Time, k string, ok bool) {
	base, found := strings.CutSuffix(name, Ext)
	if !found {
		return time.Time{}, "", false
	}
	exp, k, found := strings.Cut(base, "-")
	if !found || len(k) != hashLen {
		return time.Time{}, "", false
	}
	sec, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || sec <= 0 {
		return time.Time{}, "", false
	}
	return time.Unix(sec, 0), k, true
}

// Create creates the recording of the call sipCallID, to be kept for keep (at
// least a second), and returns it open for writing (0600). A recording of that
// call that already exists is an error wrapping fs.ErrExist.
func (d *Dir) Create(sipCallID string, keep time.Duration) (*os.File, error) {
	if sipCallID == "" {
		return nil, fmt.Errorf("recording: no SIP Call-ID: %w", desk.ErrInvalid)
	}
	if keep < time.Second {
		return nil, fmt.Errorf("recording of %s: retention %s is under a second: %w", sipCallID, keep, desk.ErrInvalid)
	}
	if f, err := d.Open(sipCallID); err == nil {
		f.Close()
		return nil, fmt.Errorf("recording of %s: %w", sipCallID, fs.ErrExist)
	}
	// Rounded up, so a recording is never removed before its retention is over.
	exp := d.now().Add(keep + time.Second - 1).Unix()
	name := filepath.Join(d.dir, strconv.FormatInt(exp, 10)+"-"+key(sipCallID)+Ext)
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recording of %s: %w", sipCallID, err)
	}
	return f, nil
}

// Open opens the call's recording for reading. It wraps desk.ErrNotFound when
// there is none or its retention is over (even before a sweep removed it).
func (d *Dir) Open(sipCallID string) (*os.File, error) {
	if sipCallID == "" {
		return nil, fmt.Errorf("recording: no SIP Call-ID: %w", desk.ErrNotFound)
	}
	// The hash is hex, so the pattern holds no glob characters of the Call-ID's.
	matches, err := filepath.Glob(filepath.Join(d.dir, "*-"+key(sipCallID)+Ext))
	if err != nil {
		return nil, fmt.Errorf("recording of %s: %w", sipCallID, err)
	}
	now := d.now()
	var best string
	var bestExp time.Time
	for _, m := range matches {
		exp, _, ok := parse(filepath.Base(m))
		if !ok || !exp.After(now) {
			continue
		}
		if best == "" || exp.After(bestExp) {
			best, bestExp = m, exp
		}
	}
	if best == "" {
		return nil, fmt.Errorf("recording of %s: %w", sipCallID, desk.ErrNotFound)
	}
	f, err := os.Open(best)
	if errors.Is(err, fs.ErrNotExist) { // swept meanwhile
		return nil, fmt.Errorf("recording of %s: %w", sipCallID, desk.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("recording of %s: %w", sipCallID, err)
	}
	return f, nil
}

// OpenRecording is Open; it makes *Dir a desk.Recordings.
func (d *Dir) OpenRecording(sipCallID string) (*os.File, error) { return d.Open(sipCallID) }

var _ desk.Recordings = (*Dir)(nil)

// Sweep removes the recordings whose retention is over at now, and reports how
// many it removed. Other files in the directory are left alone. It goes on past a
// file it cannot remove and returns the first such error.
func (d *Dir) Sweep(now time.Time) (removed int, err error) {
	entries, err := os.ReadDir(d.dir)
	if err != nil {
		return 0, fmt.Errorf("recordings sweep: %w", err)
	}
	var firstErr error
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		exp, _, ok := parse(e.Name())
		if !ok || exp.After(now) {
			continue
		}
		if err := os.Remove(filepath.Join(d.dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			if firstErr == nil {
				firstErr = fmt.Errorf("recordings sweep: %w", err)
			}
			continue
		}
		removed++
	}
	return removed, firstErr
}

// Run sweeps at once and then every every (an hour when not positive), until ctx
// ends. Every node may run it on a shared directory: removing a file twice is
// harmless.
func (d *Dir) Run(ctx context.Context, every time.Duration) {
	if every <= 0 {
		every = time.Hour
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := d.Sweep(d.now())
		if err != nil {
			d.log.Warn("recordings: sweep failed", "dir", d.dir, "removed", n, "err", err)
		} else if n > 0 {
			d.log.Info("recordings: expired recordings removed", "dir", d.dir, "removed", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

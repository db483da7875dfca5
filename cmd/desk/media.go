package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/recordfile"
	"github.com/calldesk/desk/desk/yamlfile"
	"github.com/calldesk/desk/sip"
	"github.com/calldesk/desk/sip/b2bua"
	"github.com/prometheus/client_golang/prometheus"
)

// mediaBridge adapts the media bridge (sip/b2bua) to what the desk asks of it
// (desk.MediaBridge), so desk never imports diago and the bridge knows no desk.
type mediaBridge struct {
	e     *b2bua.Engine
	store desk.Store
	lines []desk.Line
	log   *slog.Logger
}

var _ desk.MediaBridge = (*mediaBridge)(nil)

// phoneOf fails with desk.ErrNoPhone when the supervisor has no registered phone,
// so the board says so at once instead of a leg that rings nobody.
func (m *mediaBridge) phoneOf(ctx context.Context, login string) error {
	bs, err := m.store.Bindings(ctx, login)
	if err != nil {
		return fmt.Errorf("bindings of %s: %w", login, err)
	}
	if len(bs) == 0 {
		return fmt.Errorf("%s: %w", login, desk.ErrNoPhone)
	}
	return nil
}

func bridgeError(err error) error {
	switch {
	case errors.Is(err, b2bua.ErrNoCall):
		return fmt.Errorf("%w: %w", desk.ErrNotLive, err)
	case errors.Is(err, b2bua.ErrNoTrunk):
		return fmt.Errorf("%w: %w", desk.ErrNoTrunk, err)
	case errors.Is(err, b2bua.ErrBadMode):
		return fmt.Errorf("%w: %w", desk.ErrInvalid, err)
	}
	return err
}

func (m *mediaBridge) Monitor(ctx context.Context, sipCallID, supervisor string, mode desk.MonitorMode) error {
	if err := m.phoneOf(ctx, supervisor); err != nil {
		return err
	}
	return bridgeError(m.e.Monitor(ctx, sipCallID, supervisor, b2bua.Mode(mode)))
}

func (m *mediaBridge) StopMonitor(ctx context.Context, sipCallID, supervisor string) error {
	return bridgeError(m.e.StopMonitor(ctx, sipCallID, supervisor))
}

// Callback needs no phone check here: Sales checked the operator's registration
// before asking (desk.Sales.Callback).
func (m *mediaBridge) Callback(ctx context.Context, cb desk.CallbackRequest) (string, error) {
	var keep time.Duration
	for _, l := range m.lines {
		if l.Number == cb.Line && l.Media {
			keep = l.RecordingRetention()
		}
	}
	id, err := m.e.Callback(ctx, b2bua.Callback{Operator: cb.Operator, Number: cb.Number, Line: cb.Line,
		Promise: cb.PromiseID, CallRef: cb.CallID, Record: keep})
	return id, bridgeError(err)
}

// monitorLeg routes the bridge's leg to a supervisor's own phone: no desk call, no
// pop, no hunting (Quiet). Only staff are rung: the leg hears the call.
func (h *sipHandler) monitorLeg(ctx context.Context, inv sip.Invite) sip.Decision {
	if len(inv.Tried) > 0 {
		return sip.Decision{Status: 480, Reason: "Supervisor Did Not Answer", Quiet: true}
	}
	u, err := h.store.User(ctx, inv.Dialled)
	if err != nil || (u.Role != desk.RoleSupervisor && u.Role != desk.RoleAdmin) {
		return sip.Decision{Status: 403, Reason: "Not A Supervisor", Quiet: true}
	}
	bs, err := h.Bindings(ctx, inv.Dialled)
	if err != nil || len(bs) == 0 {
		return sip.Decision{Status: 480, Reason: "No Registered Phone", Quiet: true}
	}
	return sip.Decision{Target: inv.Dialled, Contacts: bs, RingTimeout: 30 * time.Second, Quiet: true}
}

// mediaSetup is what serve needs to run the bridge.
type mediaSetup struct {
	bridge  *mediaBridge
	engine  *b2bua.Engine
	records *recordfile.Dir
}

// usesMedia tells whether the desk needs its bridge: a media line, or a trunk to
// dial callbacks through.
func usesMedia(settings *yamlfile.Config) bool {
	for _, l := range settings.Lines {
		if l.Media {
			return true
		}
	}
	return settings.Media.Trunk != nil
}

// startMedia starts the bridge on DESK_MEDIA_ADDR (default: the SIP host's IP, a
// free port), with recordings in media.recordings.dir (a temporary directory in
// demo mode, where nothing survives a restart either).
func startMedia(ctx context.Context, cfg *config, settings *yamlfile.Config, sipHost string, store desk.Store,
	reg prometheus.Registerer, log *slog.Logger, sup *desk.Supervisor, sales *desk.Sales, sb *desk.Switchboard) (*mediaSetup, error) {
	addr := cfg.MediaAddr
	if addr == "" {
		host := "127.0.0.1"
		if ip, err := netip.ParseAddr(sipHost); err == nil && !ip.IsUnspecified() {
			host = ip.String()
		}
		addr = net.JoinHostPort(host, "0")
	}
	opts := []b2bua.Option{
		b2bua.WithLogger(log),
		b2bua.WithListen(addr),
		b2bua.WithDomain(cfg.SIPDomain),
		b2bua.WithRegisterer(reg),
		b2bua.OnMonitor(func(ev b2bua.MonitorEvent) {
			// MonitorChanged waits for the call's worker: never on the bridge's path.
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := sup.MonitorChanged(ctx, desk.MonitorChange{SIPCallID: ev.CallID, Supervisor: ev.Supervisor,
					Mode: desk.MonitorMode(ev.Mode), State: ev.State, Reason: ev.Reason, At: ev.At}); err != nil {
					log.Warn("monitor change not recorded", "sip_call_id", ev.CallID, "err", err)
				}
			}()
		}),
		b2bua.OnCallbackAnswered(func(callID, promise string) {
			// Queued at once, before the bridge joins the two: a callback that ends
			// without this report closes as unreached.
			sb.CallbackConnected(callID)
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if err := sales.CallbackAnswered(ctx, callID, promise); err != nil {
					log.Warn("callback answer not recorded", "sip_call_id", callID, "promise", promise, "err", err)
				}
			}()
		}),
		// Not in a goroutine: the report must be queued before the operator leg's
		// BYE reaches the switchboard (it only queues, so it does not block). It
		// gives the reason; the missing CallbackConnected is what makes the call
		// unreached.
		b2bua.OnCallbackUnanswered(sb.CallbackUnreached),
	}
	if lo, hi, ok := strings.Cut(cfg.RTPPorts, "-"); ok {
		a, err1 := strconv.Atoi(strings.TrimSpace(lo))
		b, err2 := strconv.Atoi(strings.TrimSpace(hi))
		if err1 != nil || err2 != nil || a <= 0 || b <= a || b > 65535 {
			return nil, fmt.Errorf("DESK_RTP_PORTS %q: want min-max, e.g. 10000-20000", cfg.RTPPorts)
		}
		opts = append(opts, b2bua.WithRTPPorts(a, b))
	} else if cfg.RTPPorts != "" {
		return nil, fmt.Errorf("DESK_RTP_PORTS %q: want min-max, e.g. 10000-20000", cfg.RTPPorts)
	}
	if t := settings.Media.Trunk; t != nil {
		opts = append(opts, b2bua.WithTrunk(b2bua.Trunk{URI: t.URI, Username: t.Username, Password: t.Password}),
			b2bua.WithCallbackRingTimeout(t.RingTimeout))
	}
	var rec *recordfile.Dir
	if settings.Records() {
		dir := settings.Media.RecordingsDir
		if cfg.Demo && dir == yamlfile.DefaultRecordingsDir {
			tmp, err := os.MkdirTemp("", "desk-recordings-")
			if err != nil {
				return nil, err
			}
			dir = tmp
		}
		var err error
		if rec, err = recordfile.New(dir, recordfile.WithLogger(log)); err != nil {
			return nil, fmt.Errorf("recordings: %w", err)
		}
		go rec.Run(ctx, 10*time.Minute)
		opts = append(opts, b2bua.WithRecorder(func(callID string, keep time.Duration) (io.WriteSeeker, io.Closer, error) {
			f, err := rec.Create(callID, keep)
			return f, f, err
		}))
		log.Info("recording media-mode lines", "dir", rec.Path())
	}
	e, err := b2bua.New(opts...)
	if err != nil {
		return nil, err
	}
	if err := e.Start(ctx); err != nil {
		return nil, err
	}
	mb := &mediaBridge{e: e, store: store, lines: settings.Lines, log: log}
	sup.SetMediaBridge(mb)
	sales.SetMediaBridge(mb)
	return &mediaSetup{bridge: mb, engine: e, records: rec}, nil
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/phone"
	"github.com/calldesk/desk/sip"
)

// sipHandler adapts the desk domain to the small interface package sip consumes, so
// neither imports the other.
type sipHandler struct {
	store desk.Store
	sb    *desk.Switchboard
	pub   desk.Publisher
	log   *slog.Logger
}

func (h *sipHandler) DigestHA1(ctx context.Context, user string) (string, error) {
	u, err := h.store.User(ctx, user)
	if errors.Is(err, desk.ErrNotFound) || (err == nil && u.SIPHA1 == "") {
		return "", fmt.Errorf("digest user %q: %w", user, sip.ErrUnknownUser)
	}
	if err != nil {
		return "", err
	}
	return u.SIPHA1, nil
}

func (h *sipHandler) Bindings(ctx context.Context, user string) ([]sip.Binding, error) {
	bs, err := h.store.Bindings(ctx, user)
	if err != nil {
		return nil, err
	}
	out := make([]sip.Binding, len(bs))
	for i, b := range bs {
		out[i] = toSIPBinding(b)
	}
	return out, nil
}

func (h *sipHandler) PutBindings(ctx context.Context, user string, bs []sip.Binding) error {
	in := make([]desk.Binding, len(bs))
	for i, b := range bs {
		in[i] = desk.Binding{Login: user, Contact: b.Contact, Source: b.Source, Transport: b.Transport,
			Expires: b.Expires, CallID: b.CallID, CSeq: b.CSeq, UserAgent: b.UserAgent}
	}
	if err := h.store.PutBindings(ctx, user, in); err != nil {
		return err
	}
	// The pages show the phone's registration state. Reading the operator's presence
	// back is off the REGISTER's path: the phone has its 200 OK by then.
	go h.publishPresence(user)
	return nil
}

func (h *sipHandler) publishPresence(login string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	o, err := h.store.Operator(ctx, login)
	if errors.Is(err, desk.ErrNotFound) {
		return // a supervisor's or admin's phone: no operator presence to show
	}
	if err != nil {
		h.log.Warn("presence after REGISTER not published", "login", login, "err", err)
		return
	}
	h.pub.Publish(desk.Event{Type: desk.EventPresence, Operators: []string{login},
		Payload: hub.PresencePayload{Operator: o}})
}

func (h *sipHandler) Route(ctx context.Context, inv sip.Invite) sip.Decision {
	if inv.Leg == sip.LegMonitor {
		return h.monitorLeg(ctx, inv)
	}
	r := h.sb.Route(ctx, desk.Incoming{
		SIPCallID:  inv.CallID,
		Caller:     inv.Caller,
		CallerName: inv.CallerName,
		Dialled:    inv.Dialled,
		Tried:      inv.Tried,
		Received:   time.Now(),
		// The proxy sets Leg only on the media bridge's own INVITEs.
		Bridged:   inv.Leg != "",
		Operator:  inv.Operator,
		Callback:  inv.Leg == sip.LegCallback,
		PromiseID: inv.Promise,
	})
	d := sip.Decision{Target: r.Operator, RingTimeout: r.RingTimeout, Status: r.Status, Reason: r.Reason,
		Media: r.Media, Record: r.Record, Retention: r.Retention}
	for _, b := range r.Bindings {
		d.Contacts = append(d.Contacts, toSIPBinding(b))
	}
	return d
}

func (h *sipHandler) CallEvent(ev sip.CallEvent) {
	switch ev.Kind {
	case sip.EventRinging:
		h.sb.Ringing(ev.CallID, ev.Target)
	case sip.EventAnswered:
		h.sb.Answered(ev.CallID, ev.Target, ev.At)
	case sip.EventTargetFailed:
		h.sb.TargetFailed(ev.CallID, ev.Target, ev.Status)
	case sip.EventMissed:
		h.sb.Missed(ev.CallID, ev.Status)
	case sip.EventEnded:
		h.sb.Ended(ev.CallID, ev.By, ev.At)
	}
}

func toSIPBinding(b desk.Binding) sip.Binding {
	return sip.Binding{User: b.Login, Contact: b.Contact, Source: b.Source, Transport: b.Transport,
		Expires: b.Expires, CallID: b.CallID, CSeq: b.CSeq, UserAgent: b.UserAgent}
}

type demoUser struct {
	Login, Name, Password, SIPPassword string
	Role                               desk.Role
}

// demoUsers exist only when the desk runs in demo mode (embedded Redis by default),
// so a newcomer can log in at once. Their passwords are printed at start.
var demoUsers = []demoUser{
	{Login: "maria", Name: "Мария Иванова", Password: "maria-demo", SIPPassword: "maria-sip", Role: desk.RoleOperator},
	{Login: "oleg", Name: "Олег Смирнов", Password: "oleg-demo", SIPPassword: "oleg-sip", Role: desk.RoleOperator},
	// sveta's softphone is what she listens in with on media-mode calls.
	{Login: "sveta", Name: "Светлана Орлова", Password: "sveta-demo", SIPPassword: "sveta-sip", Role: desk.RoleSupervisor},
	{Login: "admin", Name: "Admin", Password: "admin-demo", Role: desk.RoleAdmin},
}

// demoContact is a known caller, so `desk call --from +79161234567` pops a full card.
var demoContact = desk.Contact{Name: "Анна Смирнова", Company: "ООО Ромашка", Position: "Закупки",
	Phones: []string{"+79161234567"}, Manager: "maria", Notes: "Demo contact: ask about the spring order."}

// bootstrapUsers creates the admin from DESK_ADMIN and, in demo mode, the demo users
// and contact. Existing users are left alone, so a restart changes nothing.
func bootstrapUsers(ctx context.Context, store desk.Store, cfg *config, stdout io.Writer, log *slog.Logger) error {
	create := func(login, name, pw, sipPW string, role desk.Role) error {
		if _, err := store.User(ctx, login); err == nil {
			return nil
		} else if !errors.Is(err, desk.ErrNotFound) {
			return fmt.Errorf("bootstrap user %s: %w", login, err)
		}
		hash, err := desk.HashPassword(pw)
		if err != nil {
			return err
		}
		u := &desk.User{Login: login, Name: name, Role: role, PasswordHash: hash, Created: time.Now()}
		if sipPW != "" {
			u.SIPHA1 = desk.SIPHA1(login, cfg.SIPDomain, sipPW)
		}
		if err := store.CreateUser(ctx, u); err != nil && !errors.Is(err, desk.ErrExists) {
			return fmt.Errorf("bootstrap user %s: %w", login, err)
		}
		log.Info("user created", "login", login, "role", role)
		return nil
	}
	if cfg.Admin != "" {
		login, pw, _ := strings.Cut(cfg.Admin, ":")
		if err := create(login, "Administrator", pw, "", desk.RoleAdmin); err != nil {
			return err
		}
	}
	if !cfg.Demo {
		return nil
	}
	for _, u := range demoUsers {
		if err := create(u.Login, u.Name, u.Password, u.SIPPassword, u.Role); err != nil {
			return err
		}
	}
	if _, err := store.ContactByPhone(ctx, demoContact.Phones[0]); errors.Is(err, desk.ErrNotFound) {
		c := demoContact
		if _, err := phone.Normalize(c.Phones[0], cfg.Region); err != nil {
			return err
		}
		return store.CreateContact(ctx, &c)
	}
	return nil
}

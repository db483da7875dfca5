package httpapi

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/calldesk/desk/desk"
)

// historyReach is how many of a contact's past calls are searched for the
// operator's: the store keeps the newest ones, and an operator who talked to a
// contact only longer ago than that reaches it through his interest, his
// promises or as its manager.
const historyReach = 200

// mayReadContact is the rule for an operator's access to a contact (supervisors
// and admins read every contact). The contact is within his work when
//   - he is its personal manager;
//   - he is ringing or talking with it now (a live call of his from the contact,
//     by contact id or by one of its numbers), or owes the wrap-up of such a call;
//   - one of its past calls was his (its history names him);
//   - its open interest is his;
//   - it has an open promise of his or of the pool (callbacks of missed calls,
//     which every operator sees in his list).
//
// Anything else is ErrForbidden: GET /api/contacts/:id, /card, the lookup by
// phone, notes and the manager change answer 403. Creating a contact stays open
// to operators (the response carries it; he names himself manager to keep it).
func (s *Server) mayReadContact(ctx context.Context, u *desk.User, ct *desk.Contact) error {
	if u == nil {
		return desk.ErrUnauthorized
	}
	if u.Role != desk.RoleOperator {
		return nil
	}
	if ct.Manager != "" && ct.Manager == u.Login {
		return nil
	}
	ours := func(c *desk.Call) bool {
		return c != nil && c.Operator == u.Login &&
			((c.ContactID != "" && c.ContactID == ct.ID) || (c.From != "" && slices.Contains(ct.Phones, c.From)))
	}
	calls, err := s.liveCalls(ctx)
	if err != nil {
		return fmt.Errorf("contact %s: live calls: %w", ct.ID, err)
	}
	if slices.ContainsFunc(calls, ours) {
		return nil
	}
	if id, err := s.store.PendingWrapup(ctx, u.Login); err != nil {
		return fmt.Errorf("contact %s: pending wrap-up: %w", ct.ID, err)
	} else if id != "" {
		c, err := s.store.Call(ctx, id)
		if err != nil && !errors.Is(err, desk.ErrNotFound) {
			return fmt.Errorf("contact %s: pending wrap-up: %w", ct.ID, err)
		}
		if ours(c) {
			return nil
		}
	}
	hist, err := s.store.History(ctx, ct.ID, historyReach)
	if err != nil {
		return fmt.Errorf("contact %s: history: %w", ct.ID, err)
	}
	if slices.ContainsFunc(hist, func(h desk.CallSummary) bool { return h.Operator == u.Login }) {
		return nil
	}
	switch it, err := s.store.OpenInterest(ctx, ct.ID); {
	case err == nil && it.Owner == u.Login:
		return nil
	case err != nil && !errors.Is(err, desk.ErrNotFound):
		return fmt.Errorf("contact %s: interest: %w", ct.ID, err)
	}
	ps, err := s.store.ContactPromises(ctx, ct.ID)
	if err != nil {
		return fmt.Errorf("contact %s: promises: %w", ct.ID, err)
	}
	if slices.ContainsFunc(ps, func(p *desk.Promise) bool { return p.Owner == u.Login || p.Owner == "" }) {
		return nil
	}
	return fmt.Errorf("contact %s is outside the work of %s: %w", ct.ID, u.Login, desk.ErrForbidden)
}

// contactFor loads the contact and applies mayReadContact; an unknown contact is
// ErrNotFound for everyone.
func (s *Server) contactFor(ctx context.Context, u *desk.User, id string) (*desk.Contact, error) {
	ct, err := s.store.Contact(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.mayReadContact(ctx, u, ct); err != nil {
		return nil, err
	}
	return ct, nil
}

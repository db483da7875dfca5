package desk

import (
	"context"
	"time"
)

// UserStore keeps users and their credentials.
type UserStore interface {
	CreateUser(ctx context.Context, u *User) error // ErrExists when the login is taken
	User(ctx context.Context, login string) (*User, error)
	Users(ctx context.Context) ([]*User, error)
}

// SessionStore keeps web sessions. Tokens are random and opaque.
type SessionStore interface {
	CreateSession(ctx context.Context, login string, ttl time.Duration) (token string, err error)
	Session(ctx context.Context, token string) (login string, err error) // ErrNotFound when expired or unknown
	DeleteSession(ctx context.Context, token string) error
}

// ContactStore keeps contacts with an index by every E.164 phone.
type ContactStore interface {
	// CreateContact assigns ID, Created and Updated. Phones must already be E.164.
	CreateContact(ctx context.Context, c *Contact) error
	Contact(ctx context.Context, id string) (*Contact, error)
	// ContactByPhone finds a contact by an E.164 number; ErrNotFound when none.
	ContactByPhone(ctx context.Context, e164 string) (*Contact, error)
}

// BindingStore keeps registrations, shared by every node.
type BindingStore interface {
	// PutBindings replaces the login's bindings; an empty slice unregisters.
	PutBindings(ctx context.Context, login string, b []Binding) error
	// Bindings returns the login's bindings that have not expired.
	Bindings(ctx context.Context, login string) ([]Binding, error)
}

// PresenceStore keeps what routing needs to know about operators, atomically.
type PresenceStore interface {
	// Operators returns every operator with his presence.
	Operators(ctx context.Context) ([]*Operator, error)
	SetAway(ctx context.Context, login string, away bool) error
	// PageOpened and PageClosed count desk pages per operator and node.
	PageOpened(ctx context.Context, login, node string) error
	PageClosed(ctx context.Context, login, node string) error
	// Claim atomically reserves a free operator for a call for ttl. It returns
	// ErrClaimed when another call holds him, on this node or any other.
	Claim(ctx context.Context, login, callID string, status Status, ttl time.Duration) error
	// UpdateClaim changes the status and ttl of the claim callID holds on login (ringing
	// → talking once answered). ErrNotFound when the claim is gone, ErrClaimed when
	// another call holds him.
	UpdateClaim(ctx context.Context, login, callID string, status Status, ttl time.Duration) error
	// Release frees the operator if callID still holds him, and marks him idle now.
	Release(ctx context.Context, login, callID string) error
}

// CallStore keeps calls and their timelines.
type CallStore interface {
	SaveCall(ctx context.Context, c *Call) error
	Call(ctx context.Context, id string) (*Call, error)
	CallBySIPID(ctx context.Context, sipCallID string) (*Call, error)
	// LiveCalls returns calls ringing or in talk.
	LiveCalls(ctx context.Context) ([]*Call, error)
}

// Store is everything the desk keeps. desk/redisstore implements it on Redis.
type Store interface {
	UserStore
	SessionStore
	ContactStore
	BindingStore
	PresenceStore
	CallStore
	Ping(ctx context.Context) error
}

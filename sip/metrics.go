package sip

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	registrations *prometheus.CounterVec
	invites       *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	authFailures  *prometheus.CounterVec
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_sip_registrations_total",
			Help: "REGISTER requests by result (ok, challenge, stale, forbidden, too_brief, bad_request, store_error, error).",
		}, []string{"result"}),
		invites: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_sip_invites_total",
			Help: "Incoming INVITEs by outcome (answered, missed, cancelled, rejected, relay_denied, draining, error).",
		}, []string{"outcome"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_sip_refused_total",
			Help: "SIP messages dropped or refused before any handler work, by reason (scanner, rate, oversize, control_chars, invalid).",
		}, []string{"reason"}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_sip_auth_failures_total",
			Help: "Failed REGISTER authentications by reason (bad_password, unknown_user, bad_nonce, replay, throttled, bad_request).",
		}, []string{"reason"}),
	}
	if r != nil {
		m.registrations = register(r, m.registrations)
		m.invites = register(r, m.invites)
		m.dropped = register(r, m.dropped)
		m.authFailures = register(r, m.authFailures)
	}
	return m
}

// register tolerates a second Server on the same registry (tests, restarts in-process)
// by reusing the collector already there.
func register(r prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if err := r.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
				return existing
			}
		}
	}
	return c
}

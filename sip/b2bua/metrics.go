package b2bua

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	active       prometheus.Gauge
	calls        *prometheus.CounterVec
	monitor      *prometheus.CounterVec
	setup        prometheus.Histogram
	sent         prometheus.Counter
	received     prometheus.Counter
	lost         prometheus.Counter
	late         prometheus.Counter
	refused      prometheus.Counter
	recordErrors prometheus.Counter
	mixSeconds   prometheus.Counter
	skipped      prometheus.Counter
}

func newMetrics(r prometheus.Registerer) *metrics {
	m := &metrics{
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "desk_bridge_calls_active", Help: "Calls the media bridge carries now."}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "desk_bridge_calls_total",
			Help: "Calls through the media bridge by kind (inbound, callback) and outcome."}, []string{"kind", "outcome"}),
		monitor: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "desk_bridge_monitor_total",
			Help: "Supervisor leg changes by state."}, []string{"state"}),
		setup: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "desk_bridge_monitor_setup_seconds",
			Help:    "From a supervisor's request to his phone's answer.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}),
		sent:         prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_rtp_sent_total", Help: "RTP packets the mixer sent."}),
		received:     prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_rtp_received_total", Help: "RTP packets received on ended legs."}),
		lost:         prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_rtp_lost_total", Help: "RTP packets missing by sequence number on ended legs."}),
		late:         prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_rtp_late_total", Help: "Frames that missed their 20 ms slot or overflowed the jitter buffer, on ended legs."}),
		refused:      prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_refused_total", Help: "Requests refused because they did not come from the proxy."}),
		recordErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_record_errors_total", Help: "Recordings stopped by a write error."}),
		mixSeconds:   prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_mix_seconds_total", Help: "Time spent mixing, summed over ended calls."}),
		skipped:      prometheus.NewCounter(prometheus.CounterOpts{Name: "desk_bridge_frames_skipped_total", Help: "Frame times a late mixer dropped rather than replay (over 100 ms behind)."}),
	}
	if r != nil {
		r.MustRegister(m.active, m.calls, m.monitor, m.setup, m.sent, m.received, m.lost, m.late, m.refused, m.recordErrors, m.mixSeconds, m.skipped)
	}
	return m
}

// account adds an ended leg's counters to the totals.
func (m *metrics) account(l *leg) {
	m.received.Add(float64(l.received.Load()))
	m.lost.Add(float64(l.lost.Load()))
	m.late.Add(float64(l.late.Load()))
}

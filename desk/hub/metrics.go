package hub

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	published      *prometheus.CounterVec
	dropped        *prometheus.CounterVec
	publishSeconds prometheus.Histogram
	conns          prometheus.Gauge
	frames         prometheus.Counter
	slow           prometheus.Counter
	snapshots      prometheus.Counter
	resumes        *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_hub_published_total", Help: "Events published, by path (redis or local fallback).",
		}, []string{"path"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_hub_dropped_total", Help: "Events dropped before publishing, by reason.",
		}, []string{"reason"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "desk_hub_publish_seconds", Help: "Time to publish one event.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .5, 1, 2.5},
		}),
		conns: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "desk_hub_connections", Help: "Open page websockets on this node.",
		}),
		frames: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "desk_hub_frames_sent_total", Help: "Frames written to pages.",
		}),
		slow: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "desk_hub_slow_pages_total", Help: "Pages dropped because their send queue was full.",
		}),
		snapshots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "desk_hub_snapshots_total", Help: "Snapshot frames sent.",
		}),
		resumes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "desk_hub_resumes_total", Help: "Reconnecting pages, by how they were resumed (replay or snapshot).",
		}, []string{"how"}),
	}
	if reg != nil {
		reg.MustRegister(m.published, m.dropped, m.publishSeconds, m.conns, m.frames, m.slow, m.snapshots, m.resumes)
	}
	return m
}

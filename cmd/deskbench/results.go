package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// results is everything one run measured; it is the JSON file as written.
type results struct {
	Date    string `json:"date"`
	Machine string `json:"machine"`
	Command string `json:"command"`
	Setup   setup  `json:"setup"`

	Desk                  *rateSearch    `json:"desk_rate,omitempty"`
	Kamailio              *rateSearch    `json:"kamailio_rate,omitempty"`
	RateRatio             float64        `json:"rate_ratio_desk_to_kamailio,omitempty"`
	Pop                   *popResult     `json:"pop,omitempty"`
	Fanout                *fanoutResult  `json:"fanout,omitempty"`
	Memory                *memoryResult  `json:"memory,omitempty"`
	Registrations         *registrations `json:"registrations,omitempty"`
	KamailioRegistrations *registrations `json:"kamailio_registrations,omitempty"`
	Media                 *mediaResult   `json:"media,omitempty"`
	Targets               []target       `json:"targets"`
}

type setup struct {
	Operators  int     `json:"operators"`
	RingMS     float64 `json:"ring_ms"`
	TalkMS     float64 `json:"talk_ms"`
	StepSec    float64 `json:"step_seconds"`
	PopRate    int     `json:"pop_rate"`
	FanoutRate int     `json:"fanout_rate"`
	Quick      bool    `json:"quick"`
}

type rateSearch struct {
	CleanRate int          `json:"clean_rate"`
	Ceiling   bool         `json:"all_rates_clean,omitempty"` // the search never failed: CleanRate is a floor
	Steps     []loadResult `json:"steps"`
}

type latency struct {
	N   int     `json:"n"`
	P50 float64 `json:"p50_ms"`
	P99 float64 `json:"p99_ms"`
	Max float64 `json:"max_ms"`
}

type popResult struct {
	Load    loadResult `json:"load"`
	Matched int        `json:"matched"`
	Latency latency    `json:"latency"`
	// PublishedWithin5ms is the share of pops the desk itself published within
	// 5 ms of the INVITE (its desk_pop_latency_seconds histogram): the rest of
	// the latency is the hub's delivery through Redis and the page's read.
	PublishedWithin5ms float64 `json:"published_within_5ms"`
}

type fanoutResult struct {
	Pages            int        `json:"pages"`
	Load             loadResult `json:"load"`
	Frames           int        `json:"frames"`
	SlowPagesDropped int        `json:"slow_pages_dropped"`
	Delay            latency    `json:"delay"`
}

type memReading struct {
	RSS        int64 `json:"rss_bytes"`
	HeapLive   int64 `json:"heap_live_bytes"` // heap_alloc right after a forced collection
	Goroutines int   `json:"goroutines"`
}

type memoryResult struct {
	Target          int        `json:"target_live_calls"`
	Live            int        `json:"live_calls"`
	Load            loadResult `json:"load"`
	Before          memReading `json:"before"`
	Peak            memReading `json:"peak"`
	After           memReading `json:"after"`
	RSSPerCall      float64    `json:"rss_bytes_per_live_call"`
	HeapPerCall     float64    `json:"heap_bytes_per_live_call"`
	BaselineRegains bool       `json:"baseline_came_back"`
}

// finish derives the per-call figures. The baseline came back when the
// goroutines are within 5% (and 20) of the start and the live heap within 10%
// (and 2 MiB): the desk keeps bounded caches (numbers, finished Call-IDs for two
// minutes) that a run fills.
func (m *memoryResult) finish() {
	if m.Live > 0 {
		m.RSSPerCall = float64(m.Peak.RSS-m.Before.RSS) / float64(m.Live)
		m.HeapPerCall = float64(m.Peak.HeapLive-m.Before.HeapLive) / float64(m.Live)
	}
	gOK := m.After.Goroutines <= m.Before.Goroutines+max(20, m.Before.Goroutines/20)
	hOK := m.After.HeapLive <= m.Before.HeapLive+max(2<<20, m.Before.HeapLive/10)
	m.BaselineRegains = gOK && hOK
}

type target struct {
	Name  string `json:"name"`
	Want  string `json:"want"`
	Got   string `json:"got"`
	Met   bool   `json:"met"`
	Valid bool   `json:"valid"` // false in a -quick run, whose loads are too small to judge
}

func newResults(o *options) *results {
	host, _ := os.Hostname()
	return &results{
		Date:    time.Now().UTC().Format(time.RFC3339),
		Machine: fmt.Sprintf("%s, %d CPUs, %s, %s", host, runtime.NumCPU(), cpuModel(), runtime.Version()),
		Setup: setup{Operators: o.Operators, RingMS: msf(o.Ring), TalkMS: msf(o.Talk), StepSec: o.Step.Seconds(),
			PopRate: o.PopRate, FanoutRate: o.FanoutRate, Quick: o.Quick},
	}
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// finish compares the figures with the targets.
func (r *results) finish(o *options) {
	valid := !o.Quick
	add := func(name, want, got string, met bool) {
		r.Targets = append(r.Targets, target{Name: name, Want: want, Got: got, Met: met, Valid: valid})
	}
	if r.Desk != nil && r.Kamailio != nil && r.Kamailio.CleanRate > 0 {
		r.RateRatio = float64(r.Desk.CleanRate) / float64(r.Kamailio.CleanRate)
		add("clean rate vs Kamailio", ">= 1.00", fmt.Sprintf("%.2f (%d / %d calls/s)", r.RateRatio, r.Desk.CleanRate, r.Kamailio.CleanRate),
			r.RateRatio >= 1)
	}
	if r.Pop != nil {
		add(fmt.Sprintf("pop latency p99 at %d calls/s", o.PopRate), "<= 5 ms", fmt.Sprintf("%.2f ms", r.Pop.Latency.P99),
			r.Pop.Latency.P99 <= 5 && o.PopRate >= 100)
	}
	if r.Memory != nil {
		got := fmt.Sprintf("%.1f KB at %d calls", r.Memory.HeapPerCall/1024, r.Memory.Live)
		if r.Memory.HeapPerCall <= 0 {
			// Less heap with the calls up than before them: the baseline still held
			// garbage of earlier phases, and the figure says nothing.
			got += " (baseline not settled: no figure)"
		}
		add("memory per live call (live heap)", "<= 20 KB", got, r.Memory.HeapPerCall > 0 && r.Memory.HeapPerCall <= 20*1024)
		add("baseline back after the load", "yes", yesNo(r.Memory.BaselineRegains), r.Memory.BaselineRegains)
	}
	if r.Fanout != nil {
		add(fmt.Sprintf("fan-out p99 to %d pages", r.Fanout.Pages), "<= 50 ms", fmt.Sprintf("%.2f ms", r.Fanout.Delay.P99),
			r.Fanout.Delay.P99 <= 50)
	}
	if r.Registrations != nil {
		add("digest REGISTERs per second", ">= 1000", fmt.Sprintf("%.0f", r.Registrations.PerSecond), r.Registrations.PerSecond >= 1000)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// write prints the plain table.
func (r *results) write(w io.Writer) {
	fmt.Fprintf(w, "\ndeskbench %s on %s\n%s\n\n", r.Date, r.Machine, r.Command)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	rate := func(who string, rs *rateSearch) {
		if rs == nil {
			return
		}
		for _, s := range rs.Steps {
			cpu := ""
			if s.ServerCPUPerCall > 0 {
				cpu = fmt.Sprintf("; CPU per call: %s %.2f ms, Redis %.2f ms", who, s.ServerCPUPerCall, s.RedisCPUPerCall)
			}
			fmt.Fprintf(tw, "%s rate step\t%d calls/s\t%d/%d ok, %d failed, %d retransmissions\t%s%s\n", who, s.Rate,
				s.Successful, s.Calls, s.Failed, s.Retrans, map[bool]string{true: "clean", false: "NOT clean"}[s.Clean], cpu)
		}
		floor := ""
		if rs.Ceiling {
			floor = " (every rate tried was clean)"
		}
		fmt.Fprintf(tw, "%s clean rate\t%d calls/s%s\t\t\n", who, rs.CleanRate, floor)
	}
	rate("desk", r.Desk)
	rate("kamailio", r.Kamailio)
	if r.RateRatio > 0 {
		fmt.Fprintf(tw, "clean rate desk/kamailio\t%.2f\t\t\n", r.RateRatio)
	}
	if p := r.Pop; p != nil {
		fmt.Fprintf(tw, "pop latency at %d calls/s\tp50 %.2f ms\tp99 %.2f ms, max %.2f ms\t%d pops of %d calls; %.1f%% published by the desk within 5 ms\n",
			p.Load.Rate, p.Latency.P50, p.Latency.P99, p.Latency.Max, p.Matched, p.Load.Calls, 100*p.PublishedWithin5ms)
	}
	if f := r.Fanout; f != nil {
		fmt.Fprintf(tw, "fan-out to %d pages\tp50 %.2f ms\tp99 %.2f ms, max %.2f ms\t%d frames, %d slow pages dropped\n",
			f.Pages, f.Delay.P50, f.Delay.P99, f.Delay.Max, f.Frames, f.SlowPagesDropped)
	}
	if m := r.Memory; m != nil {
		mb := func(n int64) float64 { return float64(n) / (1 << 20) }
		fmt.Fprintf(tw, "memory before\tRSS %.1f MiB\theap %.1f MiB\t%d goroutines\n", mb(m.Before.RSS), mb(m.Before.HeapLive), m.Before.Goroutines)
		fmt.Fprintf(tw, "memory at %d live calls\tRSS %.1f MiB\theap %.1f MiB\t%d goroutines\n", m.Live, mb(m.Peak.RSS), mb(m.Peak.HeapLive), m.Peak.Goroutines)
		fmt.Fprintf(tw, "memory after\tRSS %.1f MiB\theap %.1f MiB\t%d goroutines\n", mb(m.After.RSS), mb(m.After.HeapLive), m.After.Goroutines)
		fmt.Fprintf(tw, "per live call\tRSS %.1f KB\theap %.1f KB\tbaseline back: %s\n", m.RSSPerCall/1024, m.HeapPerCall/1024, yesNo(m.BaselineRegains))
	}
	reg := func(who string, g *registrations) {
		if g != nil {
			fmt.Fprintf(tw, "%s digest REGISTERs\t%.0f /s\t%d in %.2fs\t%d failed, %d retransmissions\n", who, g.PerSecond, g.Successful, g.Seconds, g.Failed, g.Retrans)
		}
	}
	reg("desk", r.Registrations)
	reg("kamailio", r.KamailioRegistrations)
	r.Media.write(tw)
	tw.Flush()
	if len(r.Targets) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintf(tw, "target\twant\tgot\tmet\n")
		for _, t := range r.Targets {
			met := yesNo(t.Met)
			if !t.Valid {
				met = "(smoke run: not judged)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Want, t.Got, met)
		}
		tw.Flush()
	}
}

func (r *results) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

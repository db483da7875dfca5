// Command deskbench is the desk's load harness. It starts a built desk on a real
// Redis, registers sipp operator phones with digest, opens a logged-in page per
// operator, and drives sipp callers through the project's scenarios. It prints
// the desk's figures (clean rate, pop latency, memory per live call, fan-out to
// thousands of pages, digest REGISTERs per second) beside the same sipp load
// through Kamailio, and media mode's (concurrent bridged calls under 1% of
// packets lost or late, CPU per call, a supervisor leg's setup), as a table and
// as JSON.
//
// It is a measuring tool, not a test: the figures depend on the machine, and
// nothing here asserts a target. Its smoke test only checks that calls succeed
// and every figure is produced, so the harness cannot rot.
//
//	go run ./cmd/deskbench            # the full run, about ten minutes
//	go run ./cmd/deskbench -quick     # the CI smoke run, under a minute
//
// All traffic stays on 127.0.0.1, with bounded counts and durations.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "deskbench:", err)
		os.Exit(1)
	}
}

// options are the harness's knobs; defaults are the figures.
type options struct {
	Operators     int           // phones with an open page, taking the rate, pop and fan-out load
	Rates         []int         // calls/s tried, in order, for the clean rate
	Step          time.Duration // how long each rate runs
	Ring          time.Duration // how long an operator's phone rings before answering
	Talk          time.Duration // how long the caller talks before BYE in the rate phases
	PopRate       int
	PopFor        time.Duration
	Live          int           // concurrent calls held for the memory figure
	LiveRate      int           // calls/s while building them up
	Settle        time.Duration // wait after the load before the "after" reading
	Pages         int           // supervisor pages for the fan-out figure
	FanoutRate    int
	FanoutFor     time.Duration
	Registrations int           // digest REGISTERs for the registration figure (the memory phase's phones)
	MediaCalls    []int         // concurrent media-mode calls tried, in order
	MediaHold     time.Duration // how long every step's calls are all up at once
	MediaRate     int           // calls/s while a media step sets its calls up
	MediaMonitors int           // supervisor legs timed
	MediaRecord   bool          // the media line records its calls
	Kamailio      string
	JSON          string
	DeskBin       string
	RedisURL      string
	Repo          string
	Profile       string // directory for pprof profiles of the desk, none when empty
	Only          string // comma-separated phases to run, all when empty
	Quick         bool
	noDesk        bool // the multi-node test starts its own nodes
}

func parseOptions(args []string, stderr io.Writer) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("deskbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.Operators, "operators", 50, "operator phones (sipp, digest-registered) with a logged-in page each")
	rates := fs.String("rates", "100,200,300,400,600,800,1000,1500,2000,3000,4000", "calls/s tried in order for the clean rate; the search stops at the first unclean one and tries the midpoint once")
	fs.DurationVar(&o.Step, "step", 10*time.Second, "how long each rate runs (the clean rate needs at least 10s)")
	fs.DurationVar(&o.Ring, "ring", 20*time.Millisecond, "how long an operator's phone rings before it answers")
	fs.DurationVar(&o.Talk, "talk", 0, "how long callers hold after the answer in the rate, pop and fan-out phases")
	fs.IntVar(&o.PopRate, "pop-rate", 100, "calls/s for the pop latency figure")
	fs.DurationVar(&o.PopFor, "pop-for", 10*time.Second, "how long the pop latency phase runs")
	fs.IntVar(&o.Live, "live", 2000, "concurrent calls held for the memory figure")
	fs.IntVar(&o.LiveRate, "live-rate", 100, "calls/s while the memory phase builds up its live calls")
	fs.DurationVar(&o.Settle, "settle", 60*time.Second, "wait after the memory phase's calls end before reading the baseline again")
	fs.IntVar(&o.Pages, "pages", 2000, "supervisor pages connected for the fan-out figure")
	fs.IntVar(&o.FanoutRate, "fanout-rate", 5, "calls/s while the fan-out pages listen (each call is about 5 events to every page)")
	fs.DurationVar(&o.FanoutFor, "fanout-for", 10*time.Second, "how long the fan-out phase runs")
	fs.IntVar(&o.Registrations, "registrations", 0, "digest REGISTERs timed (one per extra phone of the memory phase); default: -live")
	mediaCalls := fs.String("media-calls", "25,50,100,200,300,400,500,600,700,800,1000", "concurrent media-mode calls tried in order; the search stops at the first step with 1% or more of packets lost or late")
	fs.DurationVar(&o.MediaHold, "media-hold", 15*time.Second, "how long each media step's calls are all up at once")
	fs.IntVar(&o.MediaRate, "media-rate", 50, "calls/s while a media step sets up (and later ends) its calls")
	fs.IntVar(&o.MediaMonitors, "media-monitors", 20, "supervisor legs timed (listen, over the HTTP API) with the last clean step's calls up; 0 for none")
	fs.BoolVar(&o.MediaRecord, "media-record", false, "record the media line's calls (stereo WAV in the work directory)")
	fs.StringVar(&o.Kamailio, "kamailio", "auto", "run the same load through Kamailio: auto (when installed), on, off")
	fs.StringVar(&o.JSON, "json", "bench.json", "where the JSON results go; empty for none")
	fs.StringVar(&o.DeskBin, "desk", "", "desk binary to measure; default: go build ./cmd/desk")
	fs.StringVar(&o.RedisURL, "redis-url", "", "Redis the desk uses; default: a private redis-server on a free port (its data is the harness's)")
	fs.StringVar(&o.Repo, "repo", "", "the project's root (scenarios, scripts); default: found from the working directory")
	fs.StringVar(&o.Profile, "profile", "", "directory for CPU and heap profiles of the desk taken during the pop phase, and of each media step's set-up and hold")
	fs.StringVar(&o.Only, "only", "", "phases to run, comma-separated: register,rate,pop,fanout,memory,media (default all)")
	fs.BoolVar(&o.Quick, "quick", false, "a smoke run of a few seconds per phase at low rates (what CI runs)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if o.Quick { // smaller defaults; flags given explicitly still win
		quick := map[string]func(){
			"operators":      func() { o.Operators = 5 },
			"rates":          func() { *rates = "20,40" },
			"step":           func() { o.Step = 3 * time.Second },
			"pop-rate":       func() { o.PopRate = 20 },
			"pop-for":        func() { o.PopFor = 3 * time.Second },
			"live":           func() { o.Live = 40 },
			"live-rate":      func() { o.LiveRate = 40 },
			"settle":         func() { o.Settle = 3 * time.Second },
			"pages":          func() { o.Pages = 20 },
			"fanout-rate":    func() { o.FanoutRate = 5 },
			"fanout-for":     func() { o.FanoutFor = 2 * time.Second },
			"registrations":  func() { o.Registrations = 40 },
			"media-calls":    func() { *mediaCalls = "4" },
			"media-hold":     func() { o.MediaHold = 3 * time.Second },
			"media-monitors": func() { o.MediaMonitors = 3 },
		}
		for name, f := range quick {
			if !set[name] {
				f()
			}
		}
	}
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-rates: %q is not a positive number", r)
		}
		o.Rates = append(o.Rates, n)
	}
	for _, r := range strings.Split(*mediaCalls, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("-media-calls: %q is not a positive number", r)
		}
		o.MediaCalls = append(o.MediaCalls, n)
	}
	if o.MediaRate < 1 || o.MediaHold <= 0 || o.MediaMonitors < 0 {
		return nil, errors.New("-media-rate and -media-hold must be positive, -media-monitors not negative")
	}
	if o.Registrations == 0 {
		o.Registrations = o.Live
	}
	if o.Operators < 1 || o.Pages < 1 || o.Live < 1 || o.PopRate < 1 || o.FanoutRate < 1 || o.LiveRate < 1 {
		return nil, errors.New("counts and rates must be positive")
	}
	switch o.Kamailio {
	case "auto", "on", "off":
	default:
		return nil, fmt.Errorf("-kamailio: want auto, on or off, got %q", o.Kamailio)
	}
	return o, nil
}

// phase reports whether the named phase is to run.
func (o *options) phase(name string) bool {
	if o.Only == "" {
		return true
	}
	for _, p := range strings.Split(o.Only, ",") {
		if strings.TrimSpace(p) == name {
			return true
		}
	}
	return false
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, o, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	res, err := b.run(ctx)
	if res != nil {
		res.Command = "go run ./cmd/deskbench " + strings.Join(args, " ")
		res.write(stdout)
		if o.JSON != "" {
			if werr := res.writeJSON(o.JSON); werr != nil && err == nil {
				err = werr
			}
		}
	}
	return err
}

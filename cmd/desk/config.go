package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// config is what `desk serve` runs with. Each setting comes from an environment
// variable (design section 4) and from a flag of the same meaning; a flag wins.
type config struct {
	HTTPAddr     string
	SIPAddr      string
	SIPHost      string
	SIPDomain    string
	RedisURL     string
	Admin        string
	ConfigFile   string
	Scripts      string
	Region       string
	Node         string
	Demo         bool
	DrainTimeout time.Duration
	// SIP abuse limits (sip.Limits); zero keeps sip.DefaultLimits.
	SIPRate         float64
	SIPBurst        int
	SIPAuthFailures int
	// TrustedProxies are the networks (CIDRs) whose X-Forwarded-For is believed.
	TrustedProxies []*net.IPNet
	// PprofAddr, when set, serves net/http/pprof there, apart from the public
	// HTTP address, so profiles are never reachable from the pages' listener.
	PprofAddr string
	// SIPFront is the SIP front (a Kamailio dispatcher, host:port) several nodes
	// sit behind; see sip.WithFront.
	SIPFront string
	// MediaAddr is where the media bridge serves SIP and binds RTP (docs/media.md).
	MediaAddr string
	// RTPPorts is the bridge's RTP port range, "min-max"; "" takes free ports.
	RTPPorts string
}

// env names, kept together because they are a public interface.
var envNames = map[string]string{
	"http-addr":         "DESK_HTTP_ADDR",
	"sip-addr":          "DESK_SIP_ADDR",
	"sip-host":          "DESK_SIP_HOST",
	"sip-domain":        "DESK_SIP_DOMAIN",
	"redis-url":         "DESK_REDIS_URL",
	"admin":             "DESK_ADMIN",
	"config":            "DESK_CONFIG",
	"scripts":           "DESK_SCRIPTS",
	"region":            "DESK_REGION",
	"node":              "DESK_NODE",
	"demo":              "DESK_DEMO",
	"drain-timeout":     "DESK_DRAIN_TIMEOUT",
	"sip-rate":          "DESK_SIP_RATE",
	"sip-burst":         "DESK_SIP_BURST",
	"sip-auth-failures": "DESK_SIP_AUTH_FAILURES",
	"trusted-proxies":   "DESK_TRUSTED_PROXIES",
	"pprof-addr":        "DESK_PPROF_ADDR",
	"sip-front":         "DESK_SIP_FRONT",
}

func parseConfig(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	env := func(flagName, def string) string {
		if v := getenv(envNames[flagName]); v != "" {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet("desk serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c := &config{}
	fs.StringVar(&c.HTTPAddr, "http-addr", env("http-addr", ":8080"), "HTTP listen address ($DESK_HTTP_ADDR)")
	fs.StringVar(&c.SIPAddr, "sip-addr", env("sip-addr", ":5060"), "SIP listen address, UDP and TCP ($DESK_SIP_ADDR)")
	fs.StringVar(&c.SIPHost, "sip-host", env("sip-host", ""), "address phones reach the desk at, put in Via and Record-Route; default: the SIP listen IP, or this host's first non-loopback IP ($DESK_SIP_HOST)")
	fs.StringVar(&c.SIPDomain, "sip-domain", env("sip-domain", ""), "SIP realm and domain; default: the SIP host ($DESK_SIP_DOMAIN)")
	fs.StringVar(&c.RedisURL, "redis-url", env("redis-url", ""), "Redis URL; empty runs an embedded in-memory Redis ($DESK_REDIS_URL)")
	fs.StringVar(&c.Admin, "admin", env("admin", ""), "login:password of the admin created at start if absent ($DESK_ADMIN)")
	fs.StringVar(&c.ConfigFile, "config", env("config", ""), "YAML file with lines, routing and price lists ($DESK_CONFIG)")
	fs.StringVar(&c.Scripts, "scripts", env("scripts", "scripts"), "directory of call scripts; the built-in ones when it does not exist ($DESK_SCRIPTS)")
	fs.StringVar(&c.Region, "region", env("region", "RU"), "country assumed for numbers without a country code ($DESK_REGION)")
	fs.StringVar(&c.Node, "node", env("node", ""), "node id in logs and metrics; default: hostname ($DESK_NODE)")
	demoDef := env("demo", "")
	fs.BoolVar(&c.Demo, "demo", false, "create demo users and a demo contact; default on with the embedded Redis ($DESK_DEMO)")
	drain, err := time.ParseDuration(env("drain-timeout", "30s"))
	if err != nil {
		return nil, fmt.Errorf("DESK_DRAIN_TIMEOUT: %w", err)
	}
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", drain, "how long live calls may go on after SIGTERM ($DESK_DRAIN_TIMEOUT)")
	rate, err := strconv.ParseFloat(env("sip-rate", "0"), 64)
	if err != nil {
		return nil, fmt.Errorf("DESK_SIP_RATE: %w", err)
	}
	fs.Float64Var(&c.SIPRate, "sip-rate", rate, "SIP requests per second allowed from one source address, 0 for the default 100 ($DESK_SIP_RATE)")
	burst, err := strconv.Atoi(env("sip-burst", "0"))
	if err != nil {
		return nil, fmt.Errorf("DESK_SIP_BURST: %w", err)
	}
	fs.IntVar(&c.SIPBurst, "sip-burst", burst, "SIP requests one source may send at once, 0 for the default 200 ($DESK_SIP_BURST)")
	fails, err := strconv.Atoi(env("sip-auth-failures", "0"))
	if err != nil {
		return nil, fmt.Errorf("DESK_SIP_AUTH_FAILURES: %w", err)
	}
	fs.IntVar(&c.SIPAuthFailures, "sip-auth-failures", fails, "failed REGISTERs per source address per minute before it is refused unchecked, 0 for the default 5 ($DESK_SIP_AUTH_FAILURES)")
	fs.StringVar(&c.SIPFront, "sip-front", env("sip-front", ""), "host:port of the SIP front (a Kamailio dispatcher) when several desk nodes share one Redis: Record-Route names it so in-dialog requests survive a node ($DESK_SIP_FRONT)")
	fs.StringVar(&c.MediaAddr, "media-addr", env("media-addr", ""), "ip:port of the media bridge for media-mode lines (SIP over UDP, and the IP its RTP binds to); default: the SIP host's IP and a free port ($DESK_MEDIA_ADDR)")
	fs.StringVar(&c.RTPPorts, "rtp-ports", env("rtp-ports", ""), "RTP port range of the media bridge, e.g. 10000-20000; default: free ports ($DESK_RTP_PORTS)")
	fs.StringVar(&c.PprofAddr, "pprof-addr", env("pprof-addr", ""), "address serving /debug/pprof for profiling, e.g. 127.0.0.1:6060; empty (the default) serves none ($DESK_PPROF_ADDR)")
	proxies := fs.String("trusted-proxies", env("trusted-proxies", ""), "comma-separated CIDRs of HTTP proxies whose X-Forwarded-For is believed ($DESK_TRUSTED_PROXIES)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	demoSet := false
	fs.Visit(func(f *flag.Flag) { demoSet = demoSet || f.Name == "demo" })
	if !demoSet {
		switch strings.ToLower(demoDef) {
		case "":
			c.Demo = c.RedisURL == ""
		case "1", "true", "yes", "on":
			c.Demo = true
		case "0", "false", "no", "off":
			c.Demo = false
		default:
			return nil, fmt.Errorf("DESK_DEMO: want true or false, got %q", demoDef)
		}
	}
	for _, p := range strings.Split(*proxies, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		_, n, err := net.ParseCIDR(p)
		if err != nil {
			return nil, fmt.Errorf("DESK_TRUSTED_PROXIES: %w", err)
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	if c.Admin != "" && !strings.Contains(c.Admin, ":") {
		return nil, fmt.Errorf("DESK_ADMIN: want login:password")
	}
	return c, nil
}

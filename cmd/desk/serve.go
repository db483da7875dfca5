package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/httpapi"
	"github.com/calldesk/desk/desk/hub"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/webhook"
	"github.com/calldesk/desk/desk/yamlfile"
	"github.com/calldesk/desk/scripts"
	"github.com/calldesk/desk/sip"
	"github.com/calldesk/desk/static"
)

// keyPrefix is where the desk keeps its keys, so one Redis can serve other apps too.
const keyPrefix = "desk:"

// serve runs the desk until ctx is cancelled, then drains: new INVITEs get 503, live
// calls may finish within DrainTimeout, and then everything stops.
func serve(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cfg, err := parseConfig(args, getenv, stdout)
	if err != nil {
		return err
	}
	log := newLogger(os.Stderr)
	if cfg.Node == "" {
		cfg.Node, _ = os.Hostname()
	}
	log = log.With("node", cfg.Node)

	settings, err := loadSettings(cfg)
	if err != nil {
		return err
	}
	scriptSet, err := loadScripts(cfg.Scripts, log)
	if err != nil {
		return err
	}
	if err := settings.CheckScripts(scriptSet); err != nil {
		return err
	}

	rdb, closeRedis, err := openRedis(cfg.RedisURL, log)
	if err != nil {
		return err
	}
	defer closeRedis()

	// Listen first, so the realm can default to the address phones actually reach.
	sipHost, err := advertisedHost(cfg.SIPAddr, cfg.SIPHost)
	if err != nil {
		return err
	}
	if cfg.SIPDomain == "" {
		cfg.SIPDomain = sipHost
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	store := redisstore.New(rdb, redisstore.WithPrefix(keyPrefix), redisstore.WithLogger(log))
	if err := bootstrapUsers(ctx, store, cfg, stdout, log); err != nil {
		return err
	}
	if cfg.Demo { // a week of plausible history, so a newcomer sees full reports at once
		if err := seedDemo(ctx, store, time.Now(), settings.Location); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}

	// The hub's snapshots read live calls from the switchboard, and the switchboard
	// publishes through the hub: the closures break the cycle.
	var (
		sb    *desk.Switchboard
		sales *desk.Sales
	)
	board := desk.NewBoard(store, desk.WithBoardLocation(settings.Location), desk.WithBoardLogger(log),
		desk.WithBoardLiveCalls(func(ctx context.Context) ([]*desk.Call, error) { return sb.Live(ctx) }))
	h := hub.New(rdb,
		hub.WithPrefix(keyPrefix),
		hub.WithLogger(log),
		hub.WithNode(cfg.Node),
		hub.WithPresence(store),
		hub.WithSnapshot(func(ctx context.Context, u *desk.User) (any, error) {
			return httpapi.SnapshotFunc(store, sb.Live, httpapi.WithSales(sales),
				httpapi.WithBoard(func(ctx context.Context) (any, error) { return board.State(ctx) }))(ctx, u)
		}),
		hub.WithRegisterer(reg),
	)

	// The CRM webhook, when configured, gets every completed sales record.
	var wh *webhook.Webhook
	salesOpts := []desk.SalesOption{
		desk.WithSalesLogger(log),
		desk.WithSalesScripts(settings.Scripts(scriptSet)),
		desk.WithSalesLines(settings.Lines, settings.DefaultScript),
		desk.WithPriceList(settings.DeskPrices()),
		desk.WithQualification(settings.Qualification),
		desk.WithCallbackDue(settings.CallbackDue),
		desk.WithLocation(settings.Location),
		desk.WithSalesRegion(cfg.Region),
		desk.WithUnsavedCalls(func(id string) bool { return sb.Unsaved(id) }),
	}
	if settings.Webhook != nil {
		wh = webhook.New(settings.Webhook.URL, settings.Webhook.Secret,
			webhook.WithRedis(rdb, keyPrefix), webhook.WithLogger(log), webhook.WithNode(cfg.Node))
		salesOpts = append(salesOpts, desk.WithNotifier(wh))
	}
	sales = desk.NewSales(store, h, salesOpts...)
	sb = desk.NewSwitchboard(store, h,
		desk.WithSwitchboardLogger(log),
		desk.WithLines(settings.Lines, settings.DefaultScript),
		desk.WithScripts(settings.Scripts(scriptSet)),
		desk.WithRegion(cfg.Region),
		desk.WithRingTimeout(settings.RingTimeout),
		desk.WithRegisterer(reg),
		desk.WithCards(sales.Card),
		desk.WithPopPrices(settings.DeskPrices()),
		desk.WithCallHooks(sales.CallEnded, sales.CallMissed),
	)

	// Every node must verify the nonces of every other: the key lives in Redis.
	nonceKey, err := sharedSecret(ctx, rdb, keyPrefix+"sip:nonce-key")
	if err != nil {
		return err
	}
	supervisor := desk.NewSupervisor(store, h, desk.WithSupervisorLogger(log), desk.WithCallMonitors(sb))
	// Media-mode lines (docs/media.md): the bridge starts before the proxy, which
	// must know the bridge's address; the bridge learns the proxy's once it listens.
	var media *mediaSetup
	if usesMedia(settings) {
		if cfg.SIPFront != "" {
			log.Warn("media-mode lines behind a SIP front are not supported: the bridge takes requests from this node's proxy only (docs/media.md)")
		}
		if media, err = startMedia(ctx, cfg, settings, sipHost, store, reg, log, supervisor, sales, sb); err != nil {
			return fmt.Errorf("media bridge: %w", err)
		}
		defer media.engine.Close()
	}
	sipOpts := []sip.Option{
		sip.WithLogger(log),
		sip.WithDomain(cfg.SIPDomain),
		sip.WithHost(sipHost),
		sip.WithRingTimeout(settings.RingTimeout),
		sip.WithTrustedTrunks(settings.TrustedTrunks),
		sip.WithRegisterer(reg),
		sip.WithLimits(sipLimits(cfg)),
		sip.WithFront(cfg.SIPFront),
		sip.WithNonceKey(nonceKey),
	}
	if media != nil {
		sipOpts = append(sipOpts, sip.WithBridge(media.engine.Addr()))
	}
	sipSrv, err := sip.New(&sipHandler{store: store, sb: sb, pub: h, log: log}, sipOpts...)
	if err != nil {
		return err
	}

	apiOpts := []httpapi.Option{
		httpapi.WithLogger(log),
		httpapi.WithStatic(static.FS),
		httpapi.WithRegion(cfg.Region),
		httpapi.WithRealm(cfg.SIPDomain),
		httpapi.WithRegisterer(reg),
		httpapi.WithGatherer(reg),
		httpapi.WithLiveCalls(sb.Live),
		httpapi.WithReady(func(ctx context.Context) error { return store.Ping(ctx) }),
		httpapi.WithSales(sales),
		httpapi.WithLocation(settings.Location),
		httpapi.WithTrustedProxies(cfg.TrustedProxies...),
		httpapi.WithSupervisor(supervisor),
		httpapi.WithReports(desk.NewReports(store,
			desk.WithReportsLocation(settings.Location),
			desk.WithReportsSources(sourceIDs(settings)),
			desk.WithReportsLines(settings.Lines),
			desk.WithChannelCosts(settings.ChannelCosts.Costs, settings.ChannelCosts.Currency))),
	}
	if wh != nil { // never a nil *Webhook in the interface: it would not be nil
		apiOpts = append(apiOpts, httpapi.WithDeliveries(wh))
	}
	if media != nil && media.records != nil {
		apiOpts = append(apiOpts, httpapi.WithRecordings(media.records, settings.Media.RecordingRoles...))
	}
	api := httpapi.New(store, h, apiOpts...)

	httpLn, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	if err := sipSrv.Listen(ctx, cfg.SIPAddr); err != nil {
		httpLn.Close()
		return fmt.Errorf("sip listen: %w", err)
	}
	if media != nil {
		media.engine.SetProxy(sipSrv.Addr())
		log.Info("media bridge ready", "addr", media.engine.Addr(), "proxy", sipSrv.Addr())
	}

	runCtx, stopAll := context.WithCancel(context.WithoutCancel(ctx))
	defer stopAll()
	errc := make(chan error, 3)
	go func() { errc <- h.Run(runCtx) }()
	go func() { errc <- sipSrv.Serve(runCtx) }()
	go sales.RunScheduler(runCtx, cfg.Node)
	if wh != nil {
		wh.Start(runCtx)
		defer wh.Close()
	}
	httpSrv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := httpSrv.Serve(httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http: %w", err)
		}
	}()

	if cfg.PprofAddr != "" {
		pp, err := servePprof(runCtx, cfg.PprofAddr)
		if err != nil {
			return err
		}
		log.Info("pprof serving", "addr", pp)
		fmt.Fprintf(stdout, "desk: pprof http://%s/debug/pprof/\n", pp)
	}
	printBanner(stdout, cfg, httpLn.Addr().String(), sipSrv.Addr(), sipHost)
	log.Info("desk started", "http", httpLn.Addr().String(), "sip", sipSrv.Addr(), "domain", cfg.SIPDomain,
		"redis", redactURL(cfg.RedisURL), "scripts", scriptSet.IDs())

	select {
	case <-ctx.Done():
	case err := <-errc:
		log.Error("desk stopping on error", "err", err)
		stopAll()
		return err
	}

	// Drain: refuse new calls with 503 + Retry-After, let live ones end.
	log.Info("draining", "live_calls", sipSrv.Active(), "limit", cfg.DrainTimeout)
	sipSrv.Drain()
	deadline := time.Now().Add(cfg.DrainTimeout)
	for sipSrv.Active() > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	httpSrv.Shutdown(shutCtx)
	stopAll()
	sb.Close()
	store.Close()
	log.Info("desk stopped", "left_live_calls", sipSrv.Active())
	return nil
}

func newLogger(w *os.File) *slog.Logger {
	level := slog.LevelInfo
	if os.Getenv("DESK_DEBUG") != "" {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if st, err := w.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}

// loadSettings reads DESK_CONFIG; without one the demo config (a "sales" and an
// "expo" line, sources and a small price list) applies.
func loadSettings(cfg *config) (*yamlfile.Config, error) {
	return yamlfile.LoadConfig(cfg.ConfigFile)
}

// loadScripts reads DESK_SCRIPTS, or the scripts built into the binary when that
// directory does not exist, so the binary runs from anywhere.
func loadScripts(dir string, log *slog.Logger) (*yamlfile.ScriptSet, error) {
	var fsys fs.FS = scripts.FS
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		fsys = os.DirFS(dir)
	} else {
		log.Info("scripts directory not found, using the built-in scripts", "dir", dir)
	}
	return yamlfile.LoadScripts(fsys)
}

// openRedis connects to DESK_REDIS_URL, or starts an in-memory Redis for trying the
// desk out. The embedded one keeps nothing across restarts.
func openRedis(url string, log *slog.Logger) (redis.UniversalClient, func(), error) {
	if url == "" {
		mr := miniredis.NewMiniRedis()
		if err := mr.Start(); err != nil {
			return nil, nil, fmt.Errorf("embedded redis: %w", err)
		}
		log.Warn("using the embedded in-memory Redis: nothing survives a restart; set DESK_REDIS_URL for production")
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		return rdb, func() { rdb.Close(); mr.Close() }, nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, fmt.Errorf("DESK_REDIS_URL: %w", err)
	}
	// Short timeouts: the call path must never hang on Redis.
	opts.DialTimeout = 500 * time.Millisecond
	opts.ReadTimeout = 500 * time.Millisecond
	opts.WriteTimeout = 500 * time.Millisecond
	// While Redis is down a command must fail at once, not after go-redis' five
	// dials and three retries (seconds each): the switchboard's workers would fall
	// behind and operators whose calls ended would stay busy. One retry still
	// covers a pooled connection that died with a restarted server.
	opts.DialerRetries = 1
	opts.MaxRetries = 1
	rdb := redis.NewClient(opts)
	return rdb, func() { rdb.Close() }, nil
}

// advertisedHost is the address put in Via and Record-Route: what phones reach us at.
func advertisedHost(listen, explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("DESK_SIP_ADDR %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		return host, nil
	}
	// Listening on every interface: the first non-loopback address is our best guess.
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "127.0.0.1", nil
}

func redactURL(u string) string {
	if u == "" {
		return "embedded"
	}
	if i := strings.Index(u, "@"); i > 0 {
		if j := strings.Index(u, "://"); j > 0 && j < i {
			return u[:j+3] + "***" + u[i:]
		}
	}
	return u
}

// printBanner tells a newcomer where everything is. Tests read the "web" and "sip"
// lines to find the ports chosen for port 0.
func printBanner(w io.Writer, cfg *config, httpAddr, sipAddr, sipHost string) {
	local := func(addr string) string { // a wildcard listen address, as one types it here
		if h, p, err := net.SplitHostPort(addr); err == nil && (h == "::" || h == "0.0.0.0" || h == "") {
			return net.JoinHostPort("127.0.0.1", p)
		}
		return addr
	}
	web, sipLocal := local(httpAddr), local(sipAddr)
	_, sipPort, _ := net.SplitHostPort(sipAddr)
	fmt.Fprintf(w, "desk: web         http://%s/  (supervisor: http://%s/supervisor.html)\n", web, web)
	fmt.Fprintf(w, "desk: sip         %s udp+tcp, domain %s; phones elsewhere use proxy %s\n",
		sipLocal, cfg.SIPDomain, net.JoinHostPort(sipHost, sipPort))
	if cfg.RedisURL == "" {
		fmt.Fprintf(w, "desk: redis       embedded, in memory (set DESK_REDIS_URL to keep data)\n")
	}
	if cfg.Demo {
		for _, u := range demoUsers {
			line := fmt.Sprintf("desk: demo %-10s login %s / password %s", u.Role, u.Login, u.Password)
			if u.SIPPassword != "" {
				line += fmt.Sprintf(" / SIP password %s", u.SIPPassword)
			}
			fmt.Fprintln(w, line)
		}
		server := ""
		if sipLocal != "127.0.0.1:5060" {
			server = " --server " + sipLocal
		}
		fmt.Fprintf(w, "desk: try         go run ./cmd/desk call%s --from +79161234567 --to sales\n", server)
		fmt.Fprintf(w, "desk: media mode  dial \"media\" instead: supervisors listen in from the board, calls are recorded (docs/media.md)\n")
	}
}

func sourceIDs(settings *yamlfile.Config) []string {
	ids := make([]string, len(settings.Sources))
	for i, src := range settings.Sources {
		ids[i] = src.ID
	}
	return ids
}

// sipLimits is sip.DefaultLimits with what the operator of the desk changed.
func sipLimits(cfg *config) sip.Limits {
	l := sip.DefaultLimits()
	if cfg.SIPRate > 0 {
		l.RequestRate = cfg.SIPRate
	}
	if cfg.SIPBurst > 0 {
		l.RequestBurst = cfg.SIPBurst
	}
	if cfg.SIPAuthFailures > 0 {
		l.FailuresPerIP = cfg.SIPAuthFailures
	}
	return l
}

// sharedSecret returns the 32-byte secret at key, creating it when absent, so that
// every node on one Redis uses the same one. It never expires: a nonce outlives no
// restart otherwise, and phones would all re-authenticate at once.
func sharedSecret(ctx context.Context, rdb redis.UniversalClient, key string) ([]byte, error) {
	fresh := make([]byte, 32)
	if _, err := rand.Read(fresh); err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		ok, err := rdb.SetNX(ctx, key, hex.EncodeToString(fresh), 0).Result()
		if err == nil && ok {
			return fresh, nil
		}
		if err == nil {
			// Taken by another node: use its secret (a malformed one is retried, then
			// left for this node's own below).
			v, gerr := rdb.Get(ctx, key).Result()
			if b, derr := hex.DecodeString(v); gerr == nil && derr == nil && len(b) == 32 {
				return b, nil
			}
		}
		if attempt >= 2 {
			// A Redis away at start must not keep the desk down: nonces then stay
			// this node's own until a restart, which costs re-challenges, not calls.
			return fresh, nil
		}
		time.Sleep(200 * time.Millisecond)
	}
}

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/calldesk/desk/desk"
	"github.com/calldesk/desk/desk/redisstore"
	"github.com/calldesk/desk/desk/redistest"
)

const (
	domain        = "127.0.0.1"  // realm and domain, as the desk's tests use
	password      = "bench-Pa55" // every bench user's web and SIP password
	supervisor    = "sup"
	knownContacts = 500 // contacts the desk knows; half the callers are among them
	deskPrefix    = "desk:"
	sessionLife   = 6 * time.Hour
)

// bench is one harness run: the processes it started and what it measures with.
type bench struct {
	o     *options
	log   io.Writer
	dir   string
	repo  string
	sipps string // the project's sipp scenarios

	redisSrv *redistest.Server
	redisURL string
	rdb      *redis.Client
	store    *redisstore.Store
	mu       sync.Mutex
	sessions map[string]string // login → session token
	hash     string            // the bench password, argon2id

	desk    *process // the measured node
	nodes   []*deskNode
	web     string // http://127.0.0.1:PORT
	sipAddr string
	pprof   string

	phones []*phone // sipp UASes answering for the operators

	operators *operatorPool
}

// process is a child the harness started and must stop.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func (p *process) stop() {
	if p == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(5 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// wait waits for the process to end, or stops it when ctx ends first.
func (p *process) wait(ctx context.Context) error {
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		p.stop()
		return ctx.Err()
	}
}

func (p *process) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (b *bench) start(name string, cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL} // never outlive the harness
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	return p, nil
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "deskbench: "+format+"\n", args...)
}

// newBench starts Redis, provisions the users, builds and starts the desk and the
// operators' phone (one sipp UAS that answers for every operator).
func newBench(ctx context.Context, o *options, log io.Writer) (b *bench, err error) {
	b = &bench{o: o, log: log, sessions: map[string]string{}}
	defer func() {
		if err != nil {
			b.close()
		}
	}()
	for _, tool := range []string{"sipp", "redis-server"} {
		if _, err := exec.LookPath(tool); err != nil && (tool == "sipp" || o.RedisURL == "") {
			return nil, fmt.Errorf("%s is not installed (Debian: apt-get install sip-tester redis-server; .ci/test does it)", tool)
		}
	}
	if b.repo, err = findRepo(o.Repo); err != nil {
		return nil, err
	}
	b.sipps = filepath.Join(b.repo, "cmd", "desk", "testdata", "sipp")
	if b.dir, err = os.MkdirTemp("", "deskbench-"); err != nil {
		return nil, err
	}
	b.logf("work files in %s", b.dir)

	b.redisURL = o.RedisURL
	if b.redisURL == "" {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		b.redisSrv = redistest.NewServer(filepath.Join(b.dir, "redis"), port)
		os.MkdirAll(filepath.Join(b.dir, "redis"), 0o755)
		if err := b.redisSrv.Start(); err != nil {
			return nil, err
		}
		b.redisURL = "redis://" + b.redisSrv.Addr + "/0"
	}
	ropt, err := redis.ParseURL(b.redisURL)
	if err != nil {
		return nil, fmt.Errorf("-redis-url: %w", err)
	}
	b.rdb = redis.NewClient(ropt)
	b.store = redisstore.New(b.rdb, redisstore.WithPrefix(deskPrefix))
	if err := b.provision(ctx); err != nil {
		return nil, err
	}
	if o.noDesk {
		return b, nil
	}
	if err := b.startDesk(ctx); err != nil {
		return nil, err
	}
	b.operators = newOperatorPool(b, b.web)
	return b, nil
}

func (b *bench) close() {
	if b.operators != nil {
		b.operators.close()
	}
	for _, p := range b.phones {
		p.proc.stop()
	}
	for _, n := range b.nodes {
		n.proc.stop()
	}
	if b.rdb != nil {
		b.rdb.Close()
	}
	if b.redisSrv != nil {
		b.redisSrv.Stop()
	}
}

// findRepo walks up from dir (default: the working directory) to the go.mod of
// the desk's module.
func findRepo(dir string) (string, error) {
	if dir == "" {
		var err error
		if dir, err = os.Getwd(); err != nil {
			return "", err
		}
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/calldesk/desk\n") {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no desk go.mod above %s; run from the project or pass -repo", dir)
		}
	}
}

// opLogin names the i-th operator (from 1).
func opLogin(i int) string { return "op" + strconv.Itoa(i) }

// provision writes the supervisor, the first -operators operators, their sessions
// and the known contacts straight into the store the desk will use; the memory
// phase's operators are added when it starts (addOperators), so that the rate,
// pop and fan-out phases see a team of -operators.
func (b *bench) provision(ctx context.Context) error {
	hash, err := desk.HashPassword(password)
	if err != nil {
		return err
	}
	b.hash = hash
	sup := &desk.User{Login: supervisor, Name: "Bench supervisor", Role: desk.RoleSupervisor, PasswordHash: hash}
	if err := b.addUser(ctx, sup); err != nil {
		return err
	}
	if err := b.addOperators(ctx, 1, b.o.Operators); err != nil {
		return err
	}
	for i := 0; i < knownContacts; i++ {
		c := &desk.Contact{Name: fmt.Sprintf("Known caller %d", i), Company: "Bench Client " + strconv.Itoa(i%37),
			Phones: []string{knownNumber(i)}}
		if err := b.store.CreateContact(ctx, c); err != nil && !errors.Is(err, desk.ErrExists) {
			return fmt.Errorf("provision contact: %w", err)
		}
	}
	b.logf("provisioned %d operators, a supervisor and %d contacts", b.o.Operators, knownContacts)
	return nil
}

// addOperators provisions operators from..to. They share one argon2id hash,
// computed once: the login's deliberate cost is not what this harness measures,
// and 2,000 of them would take a minute. Everything else goes through the desk.
func (b *bench) addOperators(ctx context.Context, from, to int) error {
	for i := from; i <= to; i++ {
		l := opLogin(i)
		u := &desk.User{Login: l, Name: "Operator " + strconv.Itoa(i), Role: desk.RoleOperator,
			PasswordHash: b.hash, SIPHA1: desk.SIPHA1(l, domain, password)}
		if err := b.addUser(ctx, u); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) addUser(ctx context.Context, u *desk.User) error {
	if err := b.store.CreateUser(ctx, u); err != nil && !errors.Is(err, desk.ErrExists) {
		return fmt.Errorf("provision %s: %w", u.Login, err)
	}
	tok, err := b.store.CreateSession(ctx, u.Login, sessionLife)
	if err != nil {
		return fmt.Errorf("provision session %s: %w", u.Login, err)
	}
	b.mu.Lock()
	b.sessions[u.Login] = tok
	b.mu.Unlock()
	return nil
}

func knownNumber(i int) string   { return fmt.Sprintf("+7495100%04d", i) }
func unknownNumber(i int) string { return fmt.Sprintf("+7495200%04d", i) }

var (
	webLine   = regexp.MustCompile(`desk: web\s+(http://\S+?)/\s`)
	sipLine   = regexp.MustCompile(`desk: sip\s+(\S+) `)
	pprofLine = regexp.MustCompile(`desk: pprof\s+http://(\S+?)/debug`)
)

// deskNode is one running desk process.
type deskNode struct {
	name    string
	proc    *process
	web     string // http://127.0.0.1:PORT
	sipAddr string
	pprof   string
	logPath string
}

// startDesk builds the desk (unless -desk names a binary) and starts the node
// the harness measures.
func (b *bench) startDesk(ctx context.Context) error {
	n, err := b.startNode(ctx, "bench")
	if err != nil {
		return err
	}
	b.desk, b.web, b.sipAddr, b.pprof = n.proc, n.web, n.sipAddr, n.pprof
	b.logf("desk pid %d: web %s, sip %s", n.proc.cmd.Process.Pid, b.web, b.sipAddr)
	return nil
}

// deskBinary returns the desk binary, building it once.
func (b *bench) deskBinary(ctx context.Context) (string, error) {
	if b.o.DeskBin != "" {
		return b.o.DeskBin, nil
	}
	bin := filepath.Join(b.dir, "desk")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	b.logf("building the desk")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/desk")
	cmd.Dir = b.repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/desk: %v\n%s", err, out)
	}
	return bin, nil
}

// startNode starts a desk node on free loopback ports (env may set others) with
// the per-source SIP limits lifted: every sipp peer shares 127.0.0.1, which the
// limits would rightly take for a flood.
func (b *bench) startNode(ctx context.Context, name string, env ...string) (*deskNode, error) {
	bin, err := b.deskBinary(ctx)
	if err != nil {
		return nil, err
	}
	var full []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "DESK_") {
			full = append(full, kv)
		}
	}
	full = append(full,
		"DESK_HTTP_ADDR=127.0.0.1:0",
		"DESK_SIP_ADDR=127.0.0.1:0",
		"DESK_SIP_DOMAIN="+domain,
		"DESK_REDIS_URL="+b.redisURL,
		"DESK_SCRIPTS="+filepath.Join(b.repo, "scripts"),
		"DESK_NODE="+name,
		"DESK_DEMO=false",
		"DESK_SIP_RATE=1000000",
		"DESK_SIP_BURST=1000000",
		"DESK_PPROF_ADDR=127.0.0.1:0",
		"DESK_DRAIN_TIMEOUT=1s",
	)
	full = append(full, env...) // later entries win in exec
	n := &deskNode{name: name, logPath: filepath.Join(b.dir, name+".log")}
	logf, err := os.Create(n.logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = full
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if n.proc, err = b.start("desk "+name, cmd); err != nil {
		return nil, err
	}
	b.nodes = append(b.nodes, n)
	banner := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			fmt.Fprintln(logf, sc.Text())
			select {
			case banner <- sc.Text():
			default:
			}
		}
	}()
	deadline := time.After(30 * time.Second)
	for n.web == "" || n.sipAddr == "" || n.pprof == "" {
		select {
		case line := <-banner:
			if m := webLine.FindStringSubmatch(line + " "); m != nil {
				n.web = m[1]
			}
			if m := sipLine.FindStringSubmatch(line); m != nil {
				n.sipAddr = m[1]
			}
			if m := pprofLine.FindStringSubmatch(line); m != nil {
				n.pprof = m[1]
			}
		case <-n.proc.done:
			return nil, fmt.Errorf("desk %s exited at start (%v); see %s", name, n.proc.err, n.logPath)
		case <-deadline:
			return nil, fmt.Errorf("desk %s printed no addresses within 30s; see %s", name, n.logPath)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return n, nil
}

// phone is one sipp UAS that answers, after -ring, for a batch of operators. The
// desk sends a UDP INVITE to the address the REGISTER came from (what a NAT lets
// back in), so a batch registers from the port its phone then listens on.
type phone struct {
	port int
	proc *process
	stat string
}

// startPhone starts the phone of the operators registered from port.
func (b *bench) startPhone(port int) (*phone, error) {
	ph := &phone{port: port, stat: filepath.Join(b.dir, fmt.Sprintf("phone_%d_stat.csv", port))}
	cmd := b.sippCmd("-sf", filepath.Join(b.sipps, "uas.xml"), "-p", strconv.Itoa(port),
		"-d", ms(b.o.Ring), "-trace_stat", "-stf", ph.stat, "-fd", "1")
	var err error
	if ph.proc, err = b.start("sipp phone", cmd); err != nil {
		return nil, err
	}
	b.phones = append(b.phones, ph)
	time.Sleep(300 * time.Millisecond)
	if ph.proc.exited() {
		return nil, fmt.Errorf("sipp phone exited at start: %v", ph.proc.err)
	}
	return ph, nil
}

// restartPhones starts every phone afresh on its port, dropping the calls it still
// held; the bindings stay valid, as they name the port.
func (b *bench) restartPhones() error {
	old := b.phones
	b.phones = nil
	for _, p := range old {
		p.proc.stop()
	}
	for _, p := range old {
		if _, err := b.startPhone(p.port); err != nil {
			return err
		}
	}
	return nil
}

// phoneRetrans sums the phones' retransmissions so far.
func (b *bench) phoneRetrans() int {
	n := 0
	for _, p := range b.phones {
		st, _ := readStats(p.stat)
		n += st.Retransmissions
	}
	return n
}

// sippCmd is sipp bound to loopback, without a keyboard, with large socket
// buffers so that the figures are the servers', not sipp's UDP queue.
func (b *bench) sippCmd(args ...string) *exec.Cmd {
	base := []string{"-i", "127.0.0.1", "-nostdin", "-t", "u1", "-buff_size", "4194304"}
	cmd := exec.Command("sipp", append(base, args...)...)
	cmd.Dir = b.dir
	return cmd
}

func ms(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }

func freePort() (int, error) {
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port, nil
		}
	}
	return 0, errors.New("no free port")
}

// httpGet fetches url and returns the body; used for /metrics and pprof.
func httpGet(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return body, err
}

// writeFile writes a work file and returns its path.
func (b *bench) writeFile(name, content string) (string, error) {
	p := filepath.Join(b.dir, name)
	return p, os.WriteFile(p, []byte(content), 0o644)
}

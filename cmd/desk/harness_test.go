package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/calldesk/desk/desk/redistest"
	"github.com/gorilla/websocket"
)

// testDesk is a desk started in-process through run, on free ports.
type testDesk struct {
	Base    string // http://127.0.0.1:PORT
	SIPAddr string // 127.0.0.1:PORT
	Out     *syncBuffer
	stop    context.CancelFunc
	done    chan error
}

var (
	webLine = regexp.MustCompile(`desk: web\s+(http://\S+?)/\s`)
	sipLine = regexp.MustCompile(`desk: sip\s+(\S+) `)
)

// startDesk runs the desk like main does, with env on top of sane test defaults
// (loopback, port 0), and stops it at cleanup.
func startDesk(t *testing.T, env map[string]string) *testDesk {
	t.Helper()
	vars := map[string]string{
		"DESK_HTTP_ADDR":     "127.0.0.1:0",
		"DESK_SIP_ADDR":      "127.0.0.1:0",
		"DESK_SIP_DOMAIN":    "127.0.0.1",
		"DESK_REGION":        "RU",
		"DESK_SCRIPTS":       "../../scripts",
		"DESK_DRAIN_TIMEOUT": "2s",
	}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &testDesk{Out: &syncBuffer{}, stop: cancel, done: make(chan error, 1)}
	go func() { d.done <- run(ctx, nil, func(k string) string { return vars[k] }, d.Out) }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		out := d.Out.String()
		if w, s := webLine.FindStringSubmatch(out), sipLine.FindStringSubmatch(out); w != nil && s != nil {
			d.Base, d.SIPAddr = w[1], s[1]
			break
		}
		select {
		case err := <-d.done:
			t.Fatalf("desk exited at start: %v\n%s", err, d.Out.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if d.Base == "" {
		t.Fatalf("desk did not print its addresses:\n%s", d.Out.String())
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-d.done:
			if err != nil {
				t.Errorf("desk run returned %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("desk did not stop within 15s of cancel")
		}
	})
	return d
}

// startDeskAsAdmin starts the desk on a private redis-server with admin
// "admin:Adm1n-pass" and returns it with the admin logged in, and the Redis server.
func startDeskAsAdmin(t *testing.T, env map[string]string) (*testDesk, *webClient, *redistest.Server) {
	t.Helper()
	rs := redistest.StartServer(t)
	vars := map[string]string{"DESK_REDIS_URL": "redis://" + rs.Addr + "/0", "DESK_ADMIN": "admin:Adm1n-pass"}
	for k, v := range env {
		vars[k] = v
	}
	d := startDesk(t, vars)
	admin := newWebClient(t, d.Base)
	admin.login("admin", "Adm1n-pass")
	return d, admin, rs
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader in two goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// webClient is a browser-like HTTP client: cookie jar and Origin header.
type webClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newWebClient(t *testing.T, base string) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, base: base, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
}

// send sends JSON and returns the status and body; a network error is returned, not
// fatal, for tests that expect the desk to be down for a while.
func (c *webClient) send(method, path string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.base+path, r)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", c.base)
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, data, nil
}

// do sends JSON and decodes the JSON answer into out (when not nil).
func (c *webClient) do(method, path string, body any, out any) int {
	c.t.Helper()
	status, data, err := c.send(method, path, body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %d %q: %v", method, path, status, data, err)
		}
	}
	return status
}

func (c *webClient) mustDo(method, path string, body any, out any) {
	c.t.Helper()
	var raw json.RawMessage
	code := c.do(method, path, body, &raw)
	if code/100 != 2 {
		c.t.Fatalf("%s %s: HTTP %d %s", method, path, code, raw)
	}
	if out != nil {
		json.Unmarshal(raw, out)
	}
}

func (c *webClient) login(login, password string) {
	c.t.Helper()
	c.mustDo("POST", "/api/session", map[string]string{"login": login, "password": password}, nil)
}

// frame is one websocket frame with the moment it was read.
type frame struct {
	At   time.Time
	Type string
	Raw  json.RawMessage
}

// wsPage is a logged-in page's websocket, collecting frames in the background.
type wsPage struct {
	conn   *websocket.Conn
	mu     sync.Mutex
	frames []frame
	more   chan struct{}
}

func (c *webClient) openWS() *wsPage {
	c.t.Helper()
	u, _ := url.Parse(c.base + "/ws")
	h := http.Header{}
	var cookies []string
	for _, ck := range c.hc.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	h.Set("Cookie", strings.Join(cookies, "; "))
	h.Set("Origin", c.base)
	conn, resp, err := websocket.DefaultDialer.Dial(strings.Replace(c.base, "http", "ws", 1)+"/ws", h)
	if err != nil {
		st := 0
		if resp != nil {
			st = resp.StatusCode
		}
		c.t.Fatalf("websocket: %v (HTTP %d)", err, st)
	}
	p := &wsPage{conn: conn, more: make(chan struct{}, 1)}
	go func() {
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			var head struct {
				Type string `json:"type"`
			}
			json.Unmarshal(msg, &head)
			p.mu.Lock()
			p.frames = append(p.frames, frame{At: time.Now(), Type: head.Type, Raw: msg})
			p.mu.Unlock()
			select {
			case p.more <- struct{}{}:
			default:
			}
		}
	}()
	c.t.Cleanup(func() { conn.Close() })
	return p
}

// wait returns the first frame of type typ, waiting up to d.
func (p *wsPage) wait(t *testing.T, typ string, d time.Duration) frame {
	t.Helper()
	deadline := time.After(d)
	for {
		p.mu.Lock()
		for _, f := range p.frames {
			if f.Type == typ {
				p.mu.Unlock()
				return f
			}
		}
		p.mu.Unlock()
		select {
		case <-p.more:
		case <-deadline:
			t.Fatalf("no %s frame within %v; got %s", typ, d, p.types())
		}
	}
}

func (p *wsPage) types() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var s []string
	for _, f := range p.frames {
		s = append(s, f.Type)
	}
	return strings.Join(s, ",")
}

func (p *wsPage) all() []frame {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]frame(nil), p.frames...)
}

// sipp runs the project's sipp scenarios.
type sipp struct {
	t   *testing.T
	dir string
}

func newSipp(t *testing.T) *sipp {
	t.Helper()
	if _, err := exec.LookPath("sipp"); err != nil {
		t.Fatalf("sipp is not installed (Debian: sip-tester); .ci/test installs it")
	}
	return &sipp{t: t, dir: t.TempDir()}
}

// scenario copies testdata/sipp/NAME with @KEY@ placeholders replaced.
func (s *sipp) scenario(name string, repl map[string]string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "sipp", name))
	if err != nil {
		s.t.Fatal(err)
	}
	text := string(b)
	for k, v := range repl {
		text = strings.ReplaceAll(text, "@"+k+"@", v)
	}
	p := filepath.Join(s.dir, name)
	os.WriteFile(p, []byte(text), 0o644)
	return p
}

// register registers login's phone through sipp with digest auth, its Contact at
// 127.0.0.1:port, over transport ("u1" or "t1"); expires "0" unregisters.
func (s *sipp) register(ctx context.Context, d *testDesk, login, password, port, transport, expires string) {
	s.t.Helper()
	reg := s.scenario("register.xml", map[string]string{"LOGIN": login, "PASSWORD": password,
		"DOMAIN": "127.0.0.1", "CONTACT_PORT": port, "EXPIRES": expires})
	out, err := s.command(ctx, "-sf", reg, d.SIPAddr, "-t", transport, "-p", port, "-m", "1").CombinedOutput()
	if err != nil {
		s.t.Fatalf("REGISTER %s (expires %s) through sipp failed: %v\n%s\ndesk:\n%s", login, expires, err, out, d.Out.String())
	}
}

func (s *sipp) file(name, content string) string {
	p := filepath.Join(s.dir, name)
	os.WriteFile(p, []byte(content), 0o644)
	return p
}

// command builds a bounded sipp run: -m calls, -timeout overall, no keyboard.
func (s *sipp) command(ctx context.Context, args ...string) *exec.Cmd {
	base := []string{"-i", "127.0.0.1", "-nostdin", "-timeout", "20", "-timeout_error"}
	cmd := exec.CommandContext(ctx, "sipp", append(base, args...)...)
	cmd.Dir = s.dir
	return cmd
}

// traceTime finds when sipp sent or received (dir) the first message whose start line
// begins with startLine, in a -trace_msg message file.
func traceTime(t *testing.T, path, transport, dir, startLine string) time.Time {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("sipp trace: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var stamp time.Time
	var match bool
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "-----------") {
			fields := strings.Fields(line)
			if len(fields) >= 3 {
				stamp, _ = time.ParseInLocation("2006-01-02 15:04:05.000000", fields[1]+" "+fields[2], time.Local)
			}
			match = false
			continue
		}
		if strings.HasPrefix(line, transport+" message "+dir) {
			match = true
			continue
		}
		if match && strings.HasPrefix(line, startLine) {
			return stamp
		}
	}
	t.Fatalf("sipp trace %s: no %s %q", path, dir, startLine)
	return time.Time{}
}

func freePort(t *testing.T) int {
	t.Helper()
	// Both UDP and TCP must be free: sipp listens on both for some transports.
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func jsonGet(raw json.RawMessage, path ...string) any {
	var v any
	json.Unmarshal(raw, &v)
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func str(v any) string {
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

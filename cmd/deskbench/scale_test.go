package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/calldesk/desk/desk/httpapi"
)

// TestTwoNodesBehindKamailio is issue 7's multi-node test, on loopback: two desk
// nodes on one Redis behind Kamailio's dispatcher (deploy/kamailio/dispatcher.cfg).
// Operators register through the dispatcher and calls arrive through it; pages
// are on both nodes. Midway node b is killed: the test prints how long the
// dispatcher took to notice, asserts that no new call fails after that, and
// counts what became of the calls node b was carrying.
func TestTwoNodesBehindKamailio(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Kamailio, two desk nodes and sipp")
	}
	for _, tool := range []string{"sipp", "redis-server", "kamailio"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is not installed; .ci/test installs it", tool)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const operators = 8
	o, err := parseOptions([]string{"-operators", strconv.Itoa(operators), "-registrations", "1"}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	o.noDesk = true
	var log syncLog
	b, err := newBench(ctx, o, &log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	defer func() {
		if t.Failed() {
			t.Logf("harness log:\n%s\nwork files in %s", log.String(), b.dir)
		}
	}()

	ports := make([]int, 3)
	for i := range ports {
		if ports[i], err = freePort(); err != nil {
			t.Fatal(err)
		}
	}
	front := "127.0.0.1:" + strconv.Itoa(ports[0])
	nodes := map[string]*deskNode{}
	for i, name := range []string{"a", "b"} {
		n, err := b.startNode(ctx, name, "DESK_SIP_ADDR=127.0.0.1:"+strconv.Itoa(ports[i+1]), "DESK_SIP_FRONT="+front)
		if err != nil {
			t.Fatal(err)
		}
		nodes[name] = n
	}
	list, err := b.writeFile("dispatcher.list", fmt.Sprintf("# set destination\n1 sip:%s\n1 sip:%s\n",
		nodes["a"].sipAddr, nodes["b"].sipAddr))
	if err != nil {
		t.Fatal(err)
	}
	kam, err := b.runKamailio(ctx, "dispatcher.cfg", front, "-A", `DISPATCHER_LIST="`+list+`"`)
	if err != nil {
		t.Fatal(err)
	}
	defer kam.proc.stop()
	// Both nodes must be up in the dispatcher before the phones register.
	time.Sleep(3 * time.Second)

	phonePort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.register(ctx, front, 1, operators, 50, phonePort, phonePort, "scale_register"); err != nil {
		t.Fatalf("REGISTER through the dispatcher: %v", err)
	}
	if _, err := b.startPhone(phonePort); err != nil {
		t.Fatal(err)
	}
	// Odd operators' pages on node a, even ones' on node b; a supervisor on each.
	pools := map[string]*operatorPool{"a": newOperatorPool(b, nodes["a"].web), "b": newOperatorPool(b, nodes["b"].web)}
	pageNode := map[string]string{}
	for i := 1; i <= operators; i++ {
		n := map[bool]string{true: "a", false: "b"}[i%2 == 1]
		pageNode[opLogin(i)] = n
		if err := pools[n].openLogins(ctx, []string{opLogin(i)}); err != nil {
			t.Fatal(err)
		}
	}
	defer pools["a"].close()
	sups := map[string]*callWatcher{}
	for _, n := range []string{"a", "b"} {
		if sups[n], err = watchCalls(ctx, b, nodes[n].web); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(time.Second)

	// 1. Calls through the dispatcher, both nodes up.
	first, err := b.runCallers(ctx, callerLoad{target: front, rate: 4, dur: 5 * time.Second, name: "scale_both"})
	if err != nil {
		t.Fatal(err)
	}
	if first.Successful != first.Calls || first.Failed != 0 {
		t.Fatalf("with both nodes up: %d/%d calls succeeded, %d failed", first.Successful, first.Calls, first.Failed)
	}
	pools["a"].settle(5 * time.Second)
	pools["b"].settle(5 * time.Second)
	routedBy := routedCalls(t, nodes)
	cross := map[string]int{} // "b→a": handled by node b, popped on a page on node a
	pops := mergePops(pools["a"].takePops(), pools["b"].takePops())
	for id, c := range routedBy {
		if _, ok := pops[id]; !ok {
			t.Errorf("call %s (node %s, operator %s) popped on no operator page", id, c.node, c.operator)
		}
		cross[c.node+"→"+pageNode[c.operator]]++
		for _, n := range []string{"a", "b"} {
			if !sups[n].saw(id) {
				t.Errorf("the supervisor on node %s never saw call %s, handled by node %s", n, id, c.node)
			}
		}
	}
	if len(routedBy) < first.Calls {
		t.Errorf("the nodes' logs name %d routed calls, sipp placed %d", len(routedBy), first.Calls)
	}
	if cross["a→b"] == 0 || cross["b→a"] == 0 {
		t.Errorf("no call popped across nodes both ways: %v", cross)
	}
	figure("scale: %d calls through the dispatcher with both nodes up: %d ok; handled→page %v", first.Calls, first.Successful, cross)

	// 2. Long calls in progress, then node b dies.
	earlier := routedCalls(t, nodes)
	long, longRes, err := b.startCallers(ctx, callerLoad{target: front, rate: 2, dur: 2 * time.Second, hold: 8 * time.Second, name: "scale_long"})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second) // every long call answered
	onB := 0
	for id, c := range routedCalls(t, nodes) {
		if _, old := earlier[id]; !old && c.node == "b" {
			onB++
		}
	}
	killed := time.Now()
	if err := nodes["b"].proc.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-nodes["b"].proc.done
	noticed, err := kam.waitLog(ctx, "DESK-NODE-DOWN", killed, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	detect := noticed.Sub(killed)
	figure("scale: node b killed with %d calls in progress on it; the dispatcher noticed after %d ms", onB, detect.Milliseconds())

	// Pages that were on node b move to node a, as a browser reconnects.
	pools["b"].close()
	var moved []string
	for l, n := range pageNode {
		if n == "b" {
			moved = append(moved, l)
		}
	}
	if err := pools["a"].openLogins(ctx, moved); err != nil {
		t.Fatalf("pages moving to node a: %v", err)
	}

	// 3. New calls after the dispatcher noticed: none may fail.
	after, err := b.runCallers(ctx, callerLoad{target: front, rate: 4, dur: 5 * time.Second, name: "scale_after"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-long.done:
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	st, err := readStats(longRes.statFile)
	if err != nil {
		t.Fatal(err)
	}
	figure("scale: after node b died: %d/%d new calls ok, %d failed; calls in progress: %d of %d ended cleanly (%d were on node b)",
		after.Successful, after.Calls, after.Failed, st.Successful, longRes.Calls, onB)
	if after.Failed != 0 || after.Successful != after.Calls {
		t.Errorf("%d of %d new calls failed after the dispatcher noticed node b was down", after.Calls-after.Successful, after.Calls)
	}
	// Every call has ended, those node b carried included: none may stay live in
	// the store, holding its operator.
	var live []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		live = liveCalls(t, b, nodes["a"].web)
		if len(live) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if len(live) != 0 {
		t.Errorf("%d calls still live on node a after every call ended: %v", len(live), live)
	}
}

// liveCalls is GET /api/calls/live as the supervisor.
func liveCalls(t *testing.T, b *bench, web string) []map[string]any {
	t.Helper()
	req, _ := http.NewRequest("GET", web+"/api/calls/live", nil)
	req.AddCookie(&http.Cookie{Name: httpapi.CookieName, Value: b.session(supervisor)})
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("live calls: %d %v", resp.StatusCode, err)
	}
	return out
}

func figure(format string, args ...any) { fmt.Println("FIGURE " + fmt.Sprintf(format, args...)) }

// routed is what a node's log says of a call it routed.
type routed struct{ node, operator string }

var routedLine = regexp.MustCompile(`"msg":"switchboard: routed".*"sip_call_id":"([^"]+)".*"operator":"([^"]+)"`)

// routedCalls reads, from the nodes' JSON logs, which node routed each call, by Call-ID.
func routedCalls(t *testing.T, nodes map[string]*deskNode) map[string]routed {
	t.Helper()
	out := map[string]routed{}
	for name, n := range nodes {
		f, err := os.Open(n.logPath)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			if m := routedLine.FindStringSubmatch(sc.Text()); m != nil {
				if _, seen := out[m[1]]; !seen {
					out[m[1]] = routed{node: name, operator: m[2]}
				}
			}
		}
		f.Close()
	}
	return out
}

func mergePops(ms ...map[string]time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// callWatcher is a supervisor's page collecting the Call-IDs of the calls it saw.
type callWatcher struct {
	conn *websocket.Conn
	mu   sync.Mutex
	seen map[string]bool
}

func watchCalls(ctx context.Context, b *bench, web string) (*callWatcher, error) {
	conn, err := b.dialPageAt(ctx, web, supervisor)
	if err != nil {
		return nil, err
	}
	w := &callWatcher{conn: conn, seen: map[string]bool{}}
	go func() {
		for {
			_, msg, err := conn.ReadMessage()
			if err != nil {
				return
			}
			if !bytes.Contains(msg[:min(len(msg), 40)], []byte(`"call.ringing"`)) {
				continue
			}
			var f opFrame
			if json.Unmarshal(msg, &f) == nil && f.Call != nil {
				w.mu.Lock()
				w.seen[f.Call.SIPCallID] = true
				w.mu.Unlock()
			}
		}
	}()
	return w, nil
}

func (w *callWatcher) saw(id string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen[id]
}

// syncLog is the harness's progress log, kept for a failure's report.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

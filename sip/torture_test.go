package sip

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	sipmsg "github.com/emiago/sipgo/sip"
)

// The RFC 4475 messages name foreign hosts (192.0.2.x, example.com) in Via, Contact
// and Request-URI, so the test runs inside a network namespace that has nothing but
// loopback: whatever the server might try to reach outside 127/8 has no route.
const tortureNetnsEnv = "DESK_RFC4475_NETNS"

// tortureExpect is what RFC 4475 says of each message, and what we accept.
type tortureExpect int

const (
	expect400      tortureExpect = iota + 1 // invalid: 400, or no answer when it does not parse
	expect505                               // another SIP version: 505, or no answer
	expectNoAnswer                          // a response: nothing to answer
	expectAnswer                            // must get a non-5xx final answer
	expectStatus                            // must get exactly status
)

type tortureCase struct {
	expect tortureExpect
	status int
	note   string
}

// tortureCases classifies the 49 messages of RFC 4475 (section in the note).
var tortureCases = map[string]tortureCase{
	// 3.1.1 valid messages
	"valid/wsinv":      {expect: expectAnswer, note: "3.1.1.1 branch without the magic cookie and a From tag written with spaces: sipgo's transaction layer answers 400"},
	"valid/intmeth":    {expect: expectAnswer, note: "3.1.1.2 NUL/BEL/DEL in a quoted display name: 400 by policy (never echoed raw)"},
	"valid/esc01":      {expect: expectAnswer, note: "3.1.1.3 foreign host: 403 relay denied"},
	"valid/escnull":    {expect: expectAnswer, note: "3.1.1.4 REGISTER: 401 challenge"},
	"valid/esc02":      {expect: expectAnswer, note: "3.1.1.5 unknown method RE%47IST%45R"},
	"valid/lwsdisp":    {expect: expectAnswer, note: "3.1.1.6"},
	"valid/longreq":    {expect: expectAnswer, note: "3.1.1.7"},
	"valid/dblreq":     {expect: expectAnswer, note: "3.1.1.8"},
	"valid/semiuri":    {expect: expectAnswer, note: "3.1.1.9"},
	"valid/transports": {expect: expectAnswer, note: "3.1.1.10"},
	"valid/mpart01":    {expect: expectAnswer, note: "3.1.1.11 MESSAGE to a foreign host: 403"},
	"valid/unreason":   {expect: expectNoAnswer, note: "3.1.1.12 a response"},
	"valid/noreason":   {expect: expectNoAnswer, note: "3.1.1.13 a response"},
	// 3.1.2 invalid messages
	"invalid/badinv01":   {expect: expect400, note: "3.1.2.1"},
	"invalid/clerr":      {expect: expect400, note: "3.1.2.2 Content-Length larger than the body"},
	"invalid/ncl":        {expect: expect400, note: "3.1.2.3 negative Content-Length"},
	"invalid/scalar02":   {expect: expect400, note: "3.1.2.4 overlarge scalars"},
	"invalid/scalarlg":   {expect: expectNoAnswer, note: "3.1.2.5 a response with overlarge scalars"},
	"invalid/quotbal":    {expect: expect400, note: "3.1.2.6 unterminated quoted string"},
	"invalid/ltgtruri":   {expect: expect400, note: "3.1.2.7 <> around the Request-URI"},
	"invalid/lwsruri":    {expect: expect400, note: "3.1.2.8 LWS in the Request-URI"},
	"invalid/lwsstart":   {expect: expect400, note: "3.1.2.9 multiple SP in the start line"},
	"invalid/trws":       {expect: expect400, note: "3.1.2.10 trailing SP after SIP/2.0"},
	"invalid/escruri":    {expect: expect400, note: "3.1.2.11 escaped headers in the Request-URI"},
	"invalid/baddate":    {expect: expect400, note: "3.1.2.12 Date not in GMT"},
	"invalid/regbadct":   {expect: expect400, note: "3.1.2.13 Contact URI with headers outside <>"},
	"invalid/badaspec":   {expect: expect400, note: "3.1.2.14 SP inside <> of To"},
	"invalid/baddn":      {expect: expect400, note: "3.1.2.15 unquoted display name with a comma"},
	"invalid/badvers":    {expect: expect505, note: "3.1.2.16 SIP/7.0"},
	"invalid/mismatch01": {expect: expect400, note: "3.1.2.17 CSeq method mismatch"},
	"invalid/mismatch02": {expect: expect400, note: "3.1.2.18 unknown method, CSeq INVITE"},
	"invalid/bigcode":    {expect: expectNoAnswer, note: "3.1.2.19 a response with a status over 699"},
	// 3.2 transaction layer
	"invalid/badbranch": {expect: expectAnswer, note: "3.2.1 branch is just the magic cookie: answered"},
	// 3.3 application layer
	"invalid/insuf":    {expect: expect400, note: "3.3.1 missing To, From, Call-ID"},
	"invalid/unkscm":   {expect: expectAnswer, note: "3.3.2 unknown Request-URI scheme: 403 (416 in the RFC)"},
	"invalid/novelsc":  {expect: expect400, note: "3.3.3 unknown scheme the parser refuses: no answer (416 in the RFC)"},
	"invalid/unksm2":   {expect: expectAnswer, note: "3.3.4 unknown scheme in To: REGISTER challenged"},
	"invalid/bext01":   {expect: expectStatus, status: 420, note: "3.3.5 Proxy-Require unknown: 420"},
	"invalid/invut":    {expect: expectAnswer, note: "3.3.6 unknown body type, passed on as a proxy"},
	"invalid/regaut01": {expect: expectStatus, status: 401, note: "3.3.7 unknown auth scheme: challenged"},
	"invalid/multi01":  {expect: expect400, note: "3.3.8 repeated single headers"},
	"invalid/mcl01":    {expect: expect400, note: "3.3.9 repeated Content-Length"},
	"invalid/bcast":    {expect: expectNoAnswer, note: "3.3.10 a response with a broadcast Via"},
	"invalid/zeromf":   {expect: expectAnswer, note: "3.3.11 Max-Forwards 0 OPTIONS to us"},
	"invalid/cparam01": {expect: expectAnswer, note: "3.3.12"},
	"invalid/cparam02": {expect: expectAnswer, note: "3.3.13"},
	"invalid/regescrt": {expect: expectAnswer, note: "3.3.14 Contact with an escaped Route: 400 by policy"},
	"invalid/sdp01":    {expect: expectAnswer, note: "3.3.15"},
	"invalid/inv2543":  {expect: expectAnswer, note: "3.4.1 RFC 2543 INVITE without From tag: sipgo's transaction layer answers 400"},
}

// TestRFC4475Torture sends every RFC 4475 message through a running Server over UDP
// inside a loopback-only network namespace: the server must keep answering (an
// OPTIONS after each message), answer 400 (or nothing, when it cannot parse) where
// the RFC says the message is invalid, and a non-5xx answer to valid ones.
func TestRFC4475Torture(t *testing.T) {
	if os.Getenv(tortureNetnsEnv) == "" {
		runInNetns(t, "TestRFC4475Torture")
		return
	}
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		if i.Flags&net.FlagLoopback == 0 {
			t.Fatalf("not in a loopback-only namespace: interface %s", i.Name)
		}
	}

	files, _ := filepath.Glob(filepath.Join("testdata", "rfc4475", "*", "*.dat"))
	if len(files) != len(tortureCases) {
		t.Fatalf("%d message files, %d classified", len(files), len(tortureCases))
	}
	// Several messages share a Via branch and sent-by (z9hG4bKkdjuw): to one server
	// the later ones are retransmissions of the earlier transaction. So each message
	// goes to a fresh server (its verdict), and then all of them, back to back, to one
	// server that must still answer at the end.
	newServer := func() (*Server, func()) {
		s, err := New(newMemHandler(), WithDomain("example.com"))
		if err != nil {
			t.Fatal(err)
		}
		s.allowDest = loopbackOnly
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- s.ListenAndServe(ctx, "127.0.0.1:0") }()
		select {
		case <-s.Ready():
		case err := <-done:
			t.Fatalf("listen: %v", err)
		}
		return s, func() { cancel(); <-done }
	}

	// Responses go to the source IP and the top Via's port: listen on each.
	viaPort := regexp.MustCompile(`(?im)^(?:via|v)\s*:\s*SIP\s*/\s*2\.0\s*/\s*\w+\s+[^;:\s]+:(\d+)`)
	ports := map[int]bool{5060: true}
	msgs := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Base(filepath.Dir(f)) + "/" + strings.TrimSuffix(filepath.Base(f), ".dat")
		msgs[name] = data
		if m := viaPort.FindSubmatch(data); m != nil {
			p, _ := strconv.Atoi(string(m[1]))
			ports[p] = true
		}
	}
	resc := make(chan *sipmsg.Response, 1000)
	var main *net.UDPConn
	for p := range ports {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: p})
		if err != nil {
			t.Fatalf("listen on Via port %d: %v", p, err)
		}
		t.Cleanup(func() { c.Close() })
		if p == 5060 {
			main = c
		}
		go func() {
			buf := make([]byte, 65535)
			for {
				n, _, err := c.ReadFromUDP(buf)
				if err != nil {
					return
				}
				if m, err := sipmsg.ParseMessage(buf[:n]); err == nil {
					if r, ok := m.(*sipmsg.Response); ok {
						resc <- r
					}
				}
			}
		}()
	}
	callIDOf := func(data []byte) string {
		sc := bufio.NewScanner(strings.NewReader(string(data)))
		for sc.Scan() {
			l := sc.Text()
			if l == "" {
				break
			}
			k, v, ok := strings.Cut(l, ":")
			if ok && (strings.EqualFold(strings.TrimSpace(k), "call-id") || strings.EqualFold(strings.TrimSpace(k), "i")) {
				return strings.TrimSpace(v)
			}
		}
		return ""
	}
	// await returns the first final response for callID within d, 0 if none.
	await := func(callID string, d time.Duration) int {
		end := time.After(d)
		for {
			select {
			case r := <-resc:
				id := ""
				if c := r.CallID(); c != nil {
					id = c.Value()
				}
				if id == callID && r.StatusCode >= 200 {
					return r.StatusCode
				}
			case <-end:
				return 0
			}
		}
	}

	names := make([]string, 0, len(msgs))
	for n := range msgs {
		names = append(names, n)
	}
	sort.Strings(names)
	probe := func(server *net.UDPAddr, i int) bool {
		probeID := fmt.Sprintf("probe-%d@127.0.0.1", i)
		probe := fmt.Sprintf("OPTIONS sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKprobe%d\r\n"+
			"Max-Forwards: 70\r\nFrom: <sip:probe@example.com>;tag=p%d\r\nTo: <sip:example.com>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", i, i, probeID)
		if _, err := main.WriteToUDP([]byte(probe), server); err != nil {
			t.Fatal(err)
		}
		return await(probeID, 2*time.Second) == 200
	}
	crashes, expected400, got400, dropped, failed := 0, 0, 0, 0, 0
	for i, name := range names {
		tc, ok := tortureCases[name]
		if !ok {
			t.Fatalf("%s not classified", name)
		}
		s, stop := newServer()
		server, _ := net.ResolveUDPAddr("udp", s.Addr())
		if _, err := main.WriteToUDP(msgs[name], server); err != nil {
			t.Fatal(err)
		}
		wait := 600 * time.Millisecond
		if tc.expect == expectNoAnswer {
			wait = 200 * time.Millisecond
		}
		got := await(callIDOf(msgs[name]), wait)
		ok = false
		switch tc.expect {
		case expect400:
			expected400++
			ok = got == 400 || got == 0
			if got == 400 {
				got400++
			}
		case expect505:
			ok = got == 505 || got == 400 || got == 0
		case expectNoAnswer:
			ok = got == 0
		case expectAnswer:
			ok = got >= 200 && got < 500 || got >= 600
		case expectStatus:
			ok = got == tc.status
		}
		if got == 0 {
			dropped++
		}
		if !ok {
			failed++
			t.Errorf("%s (%s): got %d", name, tc.note, got)
		} else {
			t.Logf("%-20s %3d  %s", name, got, tc.note)
		}
		if !probe(server, i) {
			crashes++
			t.Errorf("after %s the server no longer answers OPTIONS", name)
		}
		stop()
	}
	// All of them back to back to one server, which must still answer.
	s, stop := newServer()
	defer stop()
	server, _ := net.ResolveUDPAddr("udp", s.Addr())
	for _, name := range names {
		if _, err := main.WriteToUDP(msgs[name], server); err != nil {
			t.Fatal(err)
		}
	}
	if !probe(server, len(names)) {
		crashes++
		t.Error("after all 49 messages in a row the server no longer answers OPTIONS")
	}
	line := fmt.Sprintf("FIGURE rfc4475: messages=%d crashes=%d expected_400=%d got_400=%d unparsable_dropped_or_responses=%d mismatches=%d",
		len(names), crashes, expected400, got400, dropped, failed)
	fmt.Println(line)
	t.Log(line)
}

// runInNetns re-executes this test binary, running only test, inside a fresh network
// namespace with loopback up, and relays its output and outcome.
func runInNetns(t *testing.T, test string) {
	t.Helper()
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("RFC 4475 test needs iproute2 (`ip`) to make a network namespace; not found")
	}
	if os.Geteuid() != 0 {
		t.Skip("RFC 4475 test needs root to make a network namespace")
	}
	ns := fmt.Sprintf("desk4475-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", ns, err, out)
		}
	})
	if out, err := exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), tortureNetnsEnv+"=1")
	out, err := cmd.CombinedOutput()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "FIGURE ") {
			fmt.Println(l)
		}
	}
	if err != nil {
		t.Fatalf("%s in namespace %s failed: %v\n%s", test, ns, err, tail(string(out), 80))
	}
	t.Logf("%s", tail(string(out), 70))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

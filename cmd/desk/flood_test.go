package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// floodScenario is a password-guessing scanner: REGISTER, answer the challenge with a
// wrong password. Once the desk throttles the source, the first REGISTER already gets
// 403; a request dropped by the rate limit gets nothing and the call times out.
const floodScenario = `<?xml version="1.0" encoding="ISO-8859-1" ?>
<!DOCTYPE scenario SYSTEM "sipp.dtd">
<scenario name="flood: REGISTER with a wrong password">
  <send>
    <![CDATA[
      REGISTER sip:127.0.0.1 SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:maria@127.0.0.1>;tag=[pid]fl[call_number]
      To: <sip:maria@127.0.0.1>
      Call-ID: [call_id]
      CSeq: 1 REGISTER
      Contact: <sip:maria@[local_ip]:[local_port]>
      Max-Forwards: 70
      Expires: 600
      User-Agent: desk-flood-test
      Content-Length: 0
    ]]>
  </send>
  <recv response="401" auth="true" optional="true" next="auth"></recv>
  <recv response="403" next="end"></recv>
  <label id="auth"/>
  <send>
    <![CDATA[
      REGISTER sip:127.0.0.1 SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      From: <sip:maria@127.0.0.1>;tag=[pid]fl[call_number]
      To: <sip:maria@127.0.0.1>
      Call-ID: [call_id]
      CSeq: 2 REGISTER
      Contact: <sip:maria@[local_ip]:[local_port]>
      [authentication username=maria password=wrong-guess]
      Max-Forwards: 70
      Expires: 600
      User-Agent: desk-flood-test
      Content-Length: 0
    ]]>
  </send>
  <recv response="403"></recv>
  <label id="end"/>
</scenario>
`

// TestFloodBadRegistersRealCallWorks is the "tried as a new user would": while
// sipp floods the desk with wrong-password REGISTERs from 127.0.0.2 (300 a second for
// 5 s), the demo operator's phone (sipp, 127.0.0.1) registers and a `desk call` call
// is answered and hung up.
func TestFloodBadRegistersRealCallWorks(t *testing.T) {
	if testing.Short() {
		t.Skip("flood test")
	}
	d := startDesk(t, map[string]string{"DESK_SCRIPTS": "no-such-dir"})
	s := newSipp(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	const rate, seconds = 300, 5
	flood := exec.CommandContext(ctx, "sipp", "-i", "127.0.0.2", "-nostdin", "-sf", s.file("flood.xml", floodScenario),
		d.SIPAddr, "-t", "u1", "-p", strconv.Itoa(freePort(t)), "-r", strconv.Itoa(rate), "-m", strconv.Itoa(rate*seconds),
		"-recv_timeout", "1000", "-timeout", strconv.Itoa(seconds+10))
	flood.Dir = s.dir
	floodOut := &syncBuffer{}
	flood.Stdout, flood.Stderr = floodOut, floodOut
	if err := flood.Start(); err != nil {
		t.Fatal(err)
	}
	floodDone := make(chan error, 1)
	go func() { floodDone <- flood.Wait() }()
	time.Sleep(time.Second) // the flood is on, the source already throttled

	start := time.Now()
	phonePort := strconv.Itoa(freePort(t))
	s.register(ctx, d, "maria", "maria-sip", phonePort, "u1", "600")
	uas := s.command(ctx, "-sf", mustAbs(t, filepath.Join("testdata", "sipp", "uas.xml")), "-p", phonePort, "-m", "1", "-d", "300")
	uasOut := &syncBuffer{}
	uas.Stdout, uas.Stderr = uasOut, uasOut
	if err := uas.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	out := &syncBuffer{}
	err := run(ctx, []string{"call", "--server", d.SIPAddr, "--from", "+79161234567", "--to", "sales", "--hold", "300ms", "--timeout", "15s"},
		func(string) string { return "" }, out)
	if err != nil {
		t.Fatalf("desk call during the flood: %v\n%s\nphone:\n%s", err, out.String(), uasOut.String())
	}
	if err := uas.Wait(); err != nil {
		t.Fatalf("phone: %v\n%s", err, uasOut.String())
	}
	callTook := time.Since(start)
	select {
	case ferr := <-floodDone:
		if ferr != nil && !strings.Contains(ferr.Error(), "exit status 1") {
			// sipp exits 1 when calls failed, which is the point of the flood.
			t.Fatalf("sipp flood: %v\n%s", ferr, floodOut.String())
		}
	case <-ctx.Done():
		t.Fatal("sipp flood did not end")
	}
	timeline := out.String()
	for _, step := range []string{"180", "200", "ACK", "BYE"} {
		if !strings.Contains(timeline, step) {
			t.Fatalf("desk call output lacks %s:\n%s", step, timeline)
		}
	}

	m := scrapeMetrics(t, d.Base+"/metrics")
	forbidden := m[`desk_sip_registrations_total{result="forbidden"}`]
	dropped := m[`desk_sip_refused_total{reason="rate"}`]
	checked := m[`desk_sip_auth_failures_total{reason="bad_password"}`]
	throttled := m[`desk_sip_auth_failures_total{reason="throttled"}`]
	if forbidden+dropped == 0 || throttled == 0 {
		t.Fatalf("flood not refused: %v", m)
	}
	if checked > 10 {
		// 5 per source, plus the few already in flight when the 5th failed.
		t.Fatalf("%v wrong passwords were checked; the source should be throttled after 5", checked)
	}
	line := fmt.Sprintf("FIGURE flood: bad_registers=%d rate=%d/s forbidden=%.0f rate_dropped=%.0f passwords_checked=%.0f legit_register=ok legit_call=ok register_and_call_ms=%d",
		rate*seconds, rate, forbidden, dropped, checked, callTook.Milliseconds())
	fmt.Println(line)
	t.Log(line)
}

// scrapeMetrics reads the desk's Prometheus text into name{labels} -> value.
func scrapeMetrics(t *testing.T, url string) map[string]float64 {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(res.Body)
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "#") {
			continue
		}
		i := strings.LastIndexByte(l, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(l[i+1:], 64); err == nil {
			out[l[:i]] = v
		}
	}
	return out
}

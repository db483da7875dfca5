package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/calldesk/desk/desk/phone"
	"github.com/calldesk/desk/desk/yamlfile"
	"github.com/calldesk/desk/sip"
)

// scriptsCmd is `desk scripts check [DIR]`: it prints every problem as file:line: reason
// and fails when there is any, so it can guard a commit hook or a deploy.
func scriptsCmd(args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "check" {
		return fmt.Errorf("usage: desk scripts check [DIR]")
	}
	dir := getenv("DESK_SCRIPTS")
	if dir == "" {
		dir = "scripts"
	}
	if len(args) > 1 {
		dir = args[1]
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fmt.Errorf("scripts check: %s is not a directory", dir)
	}
	if n := yamlfile.CheckDir(dir, stdout); n > 0 {
		return exitError{code: 1}
	}
	return nil
}

// callCmd is `desk call`: a real SIP caller for trying the desk without a softphone.
func callCmd(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	fs := flag.NewFlagSet("desk call", flag.ContinueOnError)
	fs.SetOutput(stdout)
	server := fs.String("server", "127.0.0.1:5060", "the desk's SIP address, HOST:PORT")
	from := fs.String("from", "+79161234567", "the caller's number")
	to := fs.String("to", "sales", "the dialled line or operator login")
	hold := fs.Duration("hold", 5*time.Second, "how long to talk after the answer")
	transport := fs.String("transport", "udp", "udp or tcp")
	domain := fs.String("domain", "", "domain in the Request-URI (default: the server's host)")
	timeout := fs.Duration("timeout", 60*time.Second, "give up when nobody answers in this time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *transport != "udp" && *transport != "tcp" {
		return fmt.Errorf("--transport: want udp or tcp")
	}
	// A number typed the way people write it ("8 (916) 123-45-67") goes out as E.164:
	// spaces and brackets have no place in a SIP URI.
	region := getenv("DESK_REGION")
	if region == "" {
		region = "RU"
	}
	if e164, err := phone.Normalize(*from, region); err == nil {
		*from = e164
	} else if strings.ContainsAny(*from, " ()-<>\"@;") {
		return fmt.Errorf("--from %q: %w", *from, err)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout+*hold)
	defer cancel()
	_, err := sip.PlaceCall(ctx, sip.CallOptions{
		Server:    *server,
		From:      *from,
		To:        *to,
		Hold:      *hold,
		Transport: *transport,
		Domain:    *domain,
	}, stdout)
	return err
}

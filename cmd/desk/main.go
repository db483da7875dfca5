// Command desk runs the inbound call desk: a SIP registrar and record-routing proxy,
// the operators' and supervisors' pages, and the HTTP API, on Redis.
//
//	desk [serve] [flags]             run the desk (the default)
//	desk scripts check [DIR]         validate call scripts, print file:line: reason
//	desk call --server HOST:PORT --from NUMBER --to NUMBER [--hold 5s] [--transport tcp]
//	                                 place a real SIP test call and print its timeline
//
// main is thin on purpose: run takes its context, arguments, environment and output,
// so end-to-end tests start the real thing on port 0.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // quick deadlines use the desk's zone, also on hosts without zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	if err != nil && !errors.Is(err, context.Canceled) {
		var ex exitError
		if errors.As(err, &ex) {
			os.Exit(ex.code)
		}
		fmt.Fprintln(os.Stderr, "desk:", err)
		os.Exit(1)
	}
}

// exitError carries an exit status for a command that has already said why.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// run dispatches the subcommands. It returns when ctx is cancelled (serve) or the
// command is done.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout)
	case "scripts":
		return scriptsCmd(args, getenv, stdout)
	case "call":
		return callCmd(ctx, args, getenv, stdout)
	case "help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", cmd, usage)
}

const usage = `usage:
  desk [serve] [flags]            run the desk (see desk serve -h for flags and env)
  desk scripts check [DIR]        validate call scripts (default: $DESK_SCRIPTS or scripts)
  desk call --server HOST:PORT --from NUMBER --to NUMBER [--hold 5s] [--transport udp|tcp]
                                  place a real SIP test call and print its timeline
`

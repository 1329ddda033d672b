// Command wizard-oauth-refresh is a GitHub Action that refreshes an
// Amplitude (Ory Hydra) OAuth session and stores the rotated tokens as
// GitHub Actions secrets. See README.md.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/amplitude/wizard-oauth-refresh/internal/actions"
	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
	"github.com/amplitude/wizard-oauth-refresh/internal/run"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx)
	stop()
	if errors.Is(err, inputs.ErrHelp) {
		os.Exit(0)
	}
	os.Exit(run.ExitCode(err))
}

// realMain runs the action; the error it returns has already been reported.
func realMain(ctx context.Context) error {
	rt := actions.New(os.Getenv, os.Stdout)
	return run.Main(ctx, os.Args[1:], run.Deps{RT: rt, Stdin: os.Stdin, Version: version})
}

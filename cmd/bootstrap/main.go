// Command bootstrap seeds a repository's GitHub Actions secrets with an
// Amplitude OAuth session for the wizard-oauth-refresh action, and restores
// the recovery record of a failed run. Run it with --help.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/amplitude/wizard-oauth-refresh/internal/bootstrap"
)

// version is set at build time (-ldflags "-X main.version=v1.2.3").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx)
	stop()
	os.Exit(bootstrap.ExitCode(err))
}

// realMain runs the CLI; the error it returns has already been reported.
func realMain(ctx context.Context) error {
	return bootstrap.Main(ctx, os.Args[1:], bootstrap.Deps{Version: version})
}

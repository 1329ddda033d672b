// Command sandbox runs the whole action on loopback, with no credentials:
// it starts a GitHub API emulator and a Hydra-compatible token endpoint,
// builds the real action binary, runs it twice exactly as the runner runs a
// container action, and prints what each run logged and left behind (secret
// values redacted).
//
//	go run ./cmd/sandbox            # two scheduled runs, then exit
//	go run ./cmd/sandbox --serve    # keep the emulators up and print their endpoints as JSON
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := realMain(ctx, os.Args[1:], os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "sandbox:", err)
		os.Exit(1)
	}
}

func realMain(ctx context.Context, args []string, w io.Writer) error {
	fs := flag.NewFlagSet("sandbox", flag.ContinueOnError)
	serve := fs.Bool("serve", false, "start the emulators, print their endpoints and a seeded refresh token as one JSON line, and wait for a signal")
	runs := fs.Int("runs", 2, "how many scheduled runs to make")
	bin := fs.String("bin", "", "action binary to run (default: build it from this module)")
	checkOutput := fs.String("check-output", "", "check a GITHUB_OUTPUT file written by a run against --serve (used by the container check) and exit")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *checkOutput != "" {
		return checkOutputFile(*checkOutput, w)
	}
	s, err := stack.Start(stack.Options{})
	if err != nil {
		return err
	}
	defer s.Close()

	if *serve {
		return serveMode(ctx, s, w)
	}

	dir, err := os.MkdirTemp("", "wizard-sandbox-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *bin == "" {
		fmt.Fprintln(w, "Building the action binary…")
		if *bin, err = stack.Build(ctx, stack.ModuleDir(), dir); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "GitHub API emulator: %s (repository %s)\nToken endpoint:      %s\n", s.GitHubURL, stack.Repo, s.TokenURL())
	secrets := []string{"WIZARD_REFRESH_TOKEN", "WIZARD_OAUTH_TOKEN", "WIZARD_EXPIRES_AT"}
	for i := 1; i <= *runs; i++ {
		before := s.Stored("WIZARD_REFRESH_TOKEN")
		o, err := s.Run(ctx, *bin, filepath.Join(dir, fmt.Sprint("run", i)), s.Inputs())
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n===== scheduled run %d: exit %d in %s =====\n", i, o.ExitCode, o.Duration.Round(1e6))
		for _, line := range strings.Split(strings.TrimSpace(o.Stdout), "\n") {
			if !strings.HasPrefix(line, "::add-mask::") { // the runner consumes these
				fmt.Fprintln(w, "  "+line)
			}
		}
		fmt.Fprintln(w, "\n  --- step summary ---")
		for _, line := range strings.Split(strings.TrimSpace(o.Summary), "\n") {
			fmt.Fprintln(w, "  "+line)
		}
		fmt.Fprintln(w, "\n  --- outputs ---")
		for _, k := range []string{"access-token", "expires-at", "rotated", "refreshed"} {
			v := o.Outputs[k]
			if k == "access-token" && v != "" {
				v = "*** (masked)"
			}
			fmt.Fprintf(w, "  %-13s %s\n", k, v)
		}
		fmt.Fprintln(w, "\n  --- repository secrets in the GitHub emulator ---")
		for _, name := range secrets {
			sec, _ := s.GitHub.Secret(githubemu.RepoScope(stack.Repo), name)
			fmt.Fprintf(w, "  %-21s updated %s  value %s\n", name, sec.UpdatedAt.UTC().Format("15:04:05.000"), redact(name, sec.Value))
		}
		after := s.Stored("WIZARD_REFRESH_TOKEN")
		fmt.Fprintf(w, "  refresh token rotated: %v; stored refresh token accepted by the token endpoint: %v\n", after != before, s.ChainAlive())
		if o.ExitCode != 0 {
			return fmt.Errorf("run %d failed with exit code %d", i, o.ExitCode)
		}
		if after == before || !s.ChainAlive() {
			return errors.New("the refresh token was not rotated into a working chain")
		}
	}
	fmt.Fprintf(w, "\nSandbox OK: %d runs rotated the token chain and stored every secret.\n", *runs)
	return nil
}

// serveMode keeps the emulators up for outside callers (the container check).
func serveMode(ctx context.Context, s *stack.Stack, w io.Writer) error {
	info := map[string]any{
		"run_id":        stack.RunID,
		"api_url":       s.GitHubURL,
		"token_url":     s.TokenURL(),
		"client_id":     stack.ClientID,
		"repository":    stack.Repo,
		"refresh_token": s.Stored("WIZARD_REFRESH_TOKEN"),
		"github_token":  stack.PAT,
	}
	if err := json.NewEncoder(w).Encode(info); err != nil {
		return err
	}
	if f, ok := w.(*os.File); ok {
		f.Sync()
	}
	<-ctx.Done()
	// Report what the emulator holds, for the caller's checks.
	state := map[string]any{"refresh_token_rotated": s.Stored("WIZARD_REFRESH_TOKEN") != info["refresh_token"], "chain_alive": s.ChainAlive()}
	return json.NewEncoder(w).Encode(state)
}

// redact shows the shape of a value, never the value: the expiry is not a
// secret, the tokens are.
func redact(name, v string) string {
	if name == "WIZARD_EXPIRES_AT" {
		return v
	}
	if v == "" {
		return "(empty)"
	}
	prefix, _, _ := strings.Cut(v, "_")
	return fmt.Sprintf("%s_*** (%d characters)", prefix, len(v))
}

// checkOutputFile checks the outputs of one successful refresh.
func checkOutputFile(path string, w io.Writer) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	out, err := stack.ParseOutputs(string(b))
	if err != nil {
		return err
	}
	var problems []string
	if out["refreshed"] != "true" || out["rotated"] != "true" {
		problems = append(problems, fmt.Sprintf("refreshed=%q rotated=%q, want true/true", out["refreshed"], out["rotated"]))
	}
	if out["access-token"] == "" {
		problems = append(problems, "access-token output is empty")
	}
	if _, err := time.Parse(time.RFC3339, out["expires-at"]); err != nil {
		problems = append(problems, fmt.Sprintf("expires-at %q is not RFC 3339", out["expires-at"]))
	}
	if len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	fmt.Fprintln(w, "outputs OK: refreshed, rotated, access-token set, expires-at", out["expires-at"])
	return nil
}

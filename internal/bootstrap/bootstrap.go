// Package bootstrap is the one-time setup CLI of wizard-oauth-refresh
// (cmd/bootstrap): it seeds a repository's Actions secrets with an
// Amplitude OAuth session, either from a fresh browser login that mints a
// chain only CI uses (--login) or from the wizard's stored session, which it
// then hands off (removes the refresh token locally) so that the laptop and
// CI never share one refresh-token chain. Its restore subcommand writes back
// a recovery record printed by a failed action run.
//
// Everything it touches comes through Deps, so the whole CLI runs in tests
// against the GitHub and Hydra emulators.
package bootstrap

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
	"github.com/amplitude/wizard-oauth-refresh/internal/retry"
)

// ErrHelp is returned when --help was asked for (exit 0).
var ErrHelp = flag.ErrHelp

// Deps are what the CLI needs from outside. Zero fields get the real thing.
type Deps struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
	// HTTPClient is the base client for GitHub and the token endpoint.
	HTTPClient *http.Client
	// Rand is the randomness for PKCE, state and sealing.
	Rand io.Reader
	// OpenBrowser opens a URL (xdg-open / open / rundll32 by default).
	OpenBrowser func(ctx context.Context, url string) error
	// Git runs git and returns its standard output (RunGit by default).
	Git func(ctx context.Context, args ...string) ([]byte, error)
	// CallbackPorts are the login callback ports (13222..13232 by default).
	CallbackPorts []int
	// RetryWait, when set, is the longest wait between retries (tests).
	RetryWait time.Duration
	// Version is reported in the User-Agent.
	Version string
}

func (d *Deps) defaults() {
	if d.Stdin == nil {
		d.Stdin = os.Stdin
	}
	if d.Stdout == nil {
		d.Stdout = os.Stdout
	}
	if d.Stderr == nil {
		d.Stderr = os.Stderr
	}
	if d.Getenv == nil {
		d.Getenv = os.Getenv
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.OpenBrowser == nil {
		d.OpenBrowser = OpenBrowser
	}
	if d.Git == nil {
		d.Git = RunGit
	}
	if d.Version == "" {
		d.Version = "dev"
	}
}

// OpenBrowser opens url with the platform's opener. It does not wait for
// the browser.
func OpenBrowser(ctx context.Context, url string) error {
	var cmd *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		cmd = exec.CommandContext(ctx, "open", url)
	case "windows":
		cmd = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", url)
	default:
		cmd = exec.CommandContext(ctx, "xdg-open", url)
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() { _ = cmd.Wait() }()
	return nil
}

// cli is one invocation.
type cli struct {
	d     Deps
	red   *redactor
	out   io.Writer     // progress and results
	errw  io.Writer     // warnings and errors
	stdin *bufio.Reader // shared: the PAT or a record, then the prompt's answer
}

// Main runs the CLI with args (without the program name). It reports every
// failure on Stderr itself and returns it for ExitCode.
func Main(ctx context.Context, args []string, d Deps) error {
	d.defaults()
	red := &redactor{}
	c := &cli{d: d, red: red, out: red.writer(d.Stdout), errw: red.writer(d.Stderr), stdin: bufio.NewReader(d.Stdin)}
	var err error
	switch {
	case len(args) > 0 && args[0] == "restore":
		err = c.restore(ctx, args[1:])
	case len(args) > 0 && args[0] == "help":
		io.WriteString(c.out, usageText)
		return ErrHelp
	default:
		err = c.push(ctx, args)
	}
	if errors.Is(err, ErrHelp) {
		io.WriteString(c.out, usageText)
		return err
	}
	if err != nil {
		c.report(err)
	}
	return err
}

// report prints a failure: what happened, what to do, the exit code.
func (c *cli) report(err error) {
	var e *Error
	if !errors.As(err, &e) {
		e = &Error{Code: CodeInternal, What: "unexpected error", Action: "open an issue with this output", Err: err}
	}
	fmt.Fprintf(c.errw, "\nerror: %s\n", e.Error())
	if e.Action != "" {
		fmt.Fprintf(c.errw, "what to do: %s\n", e.Action)
	}
	fmt.Fprintf(c.errw, "(exit %d)\n", e.Code)
}

func (c *cli) printf(format string, args ...any) { fmt.Fprintf(c.out, format, args...) }

func (c *cli) warnf(format string, args ...any) {
	fmt.Fprintf(c.errw, "warning: "+format+"\n", args...)
}

// readLine reads one line of standard input (without its line break).
// ok is false when standard input ended before any byte. It returns early
// when ctx ends (Ctrl-C at a prompt): the read itself cannot be interrupted,
// but the process is about to exit.
func (c *cli) readLine(ctx context.Context) (line string, ok bool, err error) {
	type read struct {
		s   string
		err error
	}
	ch := make(chan read, 1)
	go func() {
		s, err := c.stdin.ReadString('\n')
		ch <- read{s, err}
	}()
	var r read
	select {
	case r = <-ch:
	case <-ctx.Done():
		return "", false, ctx.Err()
	}
	if r.err != nil && !errors.Is(r.err, io.EOF) {
		return "", false, r.err
	}
	if r.s == "" && errors.Is(r.err, io.EOF) {
		return "", false, nil
	}
	return strings.TrimRight(r.s, "\r\n"), true, nil
}

// stdinIsTerminal reports whether standard input is a terminal (someone
// typing, rather than a pipe).
func (c *cli) stdinIsTerminal() bool {
	f, ok := c.d.Stdin.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// confirm asks question and reads the answer from standard input.
func (c *cli) confirm(ctx context.Context, question string) error {
	fmt.Fprintf(c.out, "%s [y/N] ", question)
	line, ok, err := c.readLine(ctx)
	if ctx.Err() != nil {
		fmt.Fprintln(c.out)
		return &Error{Code: CodeInternal, What: "interrupted at the prompt: nothing was written", Err: ctx.Err()}
	}
	if err != nil {
		return &Error{Code: CodeNotConfirmed, What: "cannot read the answer: nothing was written", Err: err}
	}
	if !ok {
		fmt.Fprintln(c.out)
		return &Error{Code: CodeNotConfirmed, What: "no answer (standard input ended): nothing was written", Action: "answer y at the prompt, or pass --yes"}
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return &Error{Code: CodeNotConfirmed, What: "not confirmed: nothing was written"}
}

// githubSetup is the GitHub side: the token and the API.
type githubSetup struct {
	token  string
	apiURL string
}

// githubFromEnv reads GH_TOKEN / GITHUB_TOKEN and GITHUB_API_URL.
func githubFromEnv(getenv func(string) string) (githubSetup, error) {
	var g githubSetup
	source := "GH_TOKEN"
	g.token = strings.TrimSpace(getenv("GH_TOKEN"))
	if g.token == "" {
		source = "GITHUB_TOKEN"
		g.token = strings.TrimSpace(getenv("GITHUB_TOKEN"))
	}
	if g.token != "" {
		if err := checkSecretValue(g.token); err != nil {
			return g, badInput("%s %v", source, err)
		}
	}
	g.apiURL = strings.TrimRight(strings.TrimSpace(getenv("GITHUB_API_URL")), "/")
	if g.apiURL != "" {
		if err := inputs.CheckURL(g.apiURL); err != nil {
			return g, badInput("GITHUB_API_URL: %v", err)
		}
	}
	return g, nil
}

func errNoGitHubToken() *Error {
	return &Error{Code: CodeBadInput, What: "no GitHub token: GH_TOKEN and GITHUB_TOKEN are not set",
		Action: "export GH_TOKEN=$(gh auth token), or set GH_TOKEN to a fine-grained PAT with Secrets and Variables read and write on the repository"}
}

// client builds a GitHub client for token.
func (c *cli) client(g githubSetup, token string) (*ghsecrets.Client, error) {
	opts := ghsecrets.Options{
		APIURL:     g.apiURL,
		Token:      token,
		HTTPClient: c.d.HTTPClient,
		Rand:       c.d.Rand,
		Now:        c.d.Now,
		UserAgent:  "wizard-oauth-refresh-bootstrap/" + c.d.Version,
		OnRetry: func(attempt, status int, err error, wait time.Duration) {
			c.warnf("GitHub attempt %d failed (%s); retrying in %s", attempt, retry.Describe(status, err), wait.Round(time.Millisecond))
		},
	}
	if c.d.RetryWait > 0 {
		opts.WaitMin, opts.WaitMax, opts.MaxRateLimitWait = c.d.RetryWait/4, c.d.RetryWait, c.d.RetryWait
	}
	gh, err := ghsecrets.New(opts)
	if err != nil {
		return nil, badInput("GITHUB_API_URL: %v", err)
	}
	return gh, nil
}

// checkSecretValue applies the limits of a secret value, without quoting it.
func checkSecretValue(v string) error {
	switch {
	case v == "":
		return errors.New("is empty")
	case len(v) > inputs.MaxSecretBytes:
		return fmt.Errorf("is longer than %d bytes", inputs.MaxSecretBytes)
	case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("contains whitespace or control characters")
	}
	return nil
}

// parseInterspersed parses flags anywhere among the arguments (flag stops
// at the first non-flag) and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return ErrHelp
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		msg = "unknown flag --" + strings.TrimPrefix(name, "-")
	}
	return badInput("%s", msg)
}

// Package stack starts the two emulators side by side on loopback — the
// GitHub REST API and a Hydra-compatible token endpoint — seeded the way a
// bootstrapped repository looks, and runs the real action binary against
// them exactly as the runner runs a container action (INPUT_* environment,
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files). The sandbox, the end-to-end
// tests, the fault matrix and the benchmark all use it.
package stack

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
)

// Fixed names of the seeded world.
const (
	Repo     = "amplitude/wizard"
	RepoID   = 4242
	PAT      = "github_pat_sandbox_0123456789abcdefABCDEF"
	ClientID = "0ac84169-c41c-4222-885b-31469c761cb0"
	// RunID is a workflow run seeded at start (started at
	// Options.RunStartedAt); Run registers a fresh run for every call.
	RunID = 777
)

// Options shape the stack.
type Options struct {
	// Latency is added to every request on both emulators (benchmarks).
	Latency time.Duration
	// Hydra and GitHub options are passed on.
	Hydra  []hydraemu.Option
	GitHub []githubemu.Option
	// RunStartedAt seeds workflow run RunID (zero: an hour ago).
	RunStartedAt time.Time
	// DisableRotation makes the OAuth client non-rotating.
	DisableRotation bool
}

// Stack is a running pair of emulators.
type Stack struct {
	GitHub    *githubemu.Emulator
	Hydra     *hydraemu.Server
	GitHubURL string
	HydraURL  string
	// Initial is the chain seeded at start (also stored as secrets).
	Initial hydraemu.Tokens
	servers []*http.Server
	mu      sync.Mutex
	nextRun int64
	issued  []string
	ghHook  func(r *http.Request)
	// inFlight counts requests inside the token endpoint right now.
	inFlight atomic.Int32
	tokHook  func(r *http.Request)
}

// BeforeToken sets a hook called when a request reaches the token endpoint,
// before the emulator answers it (for example to let another run win a
// race first). The hook may itself call the token endpoint.
func (s *Stack) BeforeToken(hook func(r *http.Request)) {
	s.mu.Lock()
	s.tokHook = hook
	s.mu.Unlock()
}

// TokenRequestsInFlight is the number of requests the token endpoint is
// handling right now (a test uses it to start a race deterministically).
func (s *Stack) TokenRequestsInFlight() int { return int(s.inFlight.Load()) }

// AfterGitHub sets a hook called after each GitHub API request is answered
// (for example to rotate the repository key right after the preflight).
func (s *Stack) AfterGitHub(hook func(r *http.Request)) {
	s.mu.Lock()
	s.ghHook = hook
	s.mu.Unlock()
}

func (s *Stack) afterGitHub(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		s.mu.Lock()
		hook := s.ghHook
		s.mu.Unlock()
		if hook != nil {
			hook(r)
		}
	})
}

// captureTokens records every token the token endpoint hands out, so a
// leak scan knows every value that must never be printed.
func (s *Stack) captureTokens(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		hook := s.tokHook
		s.mu.Unlock()
		if hook != nil && r.URL.Path == hydraemu.PathToken {
			hook(r)
		}
		rec := &teeWriter{ResponseWriter: w}
		s.inFlight.Add(1)
		h.ServeHTTP(rec, r)
		s.inFlight.Add(-1)
		var t hydraemu.Tokens
		if json.Unmarshal(rec.body.Bytes(), &t) == nil {
			s.mu.Lock()
			for _, v := range []string{t.AccessToken, t.RefreshToken, t.IDToken} {
				if v != "" {
					s.issued = append(s.issued, v)
				}
			}
			s.mu.Unlock()
		}
	})
}

type teeWriter struct {
	http.ResponseWriter
	body bytes.Buffer
}

func (t *teeWriter) Write(p []byte) (int, error) {
	if t.body.Len() < 1<<20 {
		t.body.Write(p)
	}
	return t.ResponseWriter.Write(p)
}

// Hijack lets the emulator's dropped-connection faults work through the tee.
func (t *teeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := t.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("hijack not supported")
	}
	return h.Hijack()
}

// Flush passes flushes on.
func (t *teeWriter) Flush() {
	if f, ok := t.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Secrets returns every secret value the stack knows: the PAT, the seeded
// chain and every token the token endpoint has issued since.
func (s *Stack) Secrets() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []string{PAT, s.Initial.AccessToken, s.Initial.RefreshToken}
	if s.Initial.IDToken != "" {
		out = append(out, s.Initial.IDToken)
	}
	return append(out, s.issued...)
}

// latency delays every request (for benchmarks).
func latency(d time.Duration, h http.Handler) http.Handler {
	if d <= 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Start starts both emulators on 127.0.0.1 and seeds them: the repository,
// a PAT with Secrets: write and Actions: read, the OAuth client, one token
// chain, and the three secrets holding it.
func Start(opts Options) (*Stack, error) {
	gh := githubemu.New(append([]githubemu.Option{githubemu.WithRateLimit(0)}, opts.GitHub...)...)
	hy := hydraemu.New(opts.Hydra...)
	s := &Stack{GitHub: gh, Hydra: hy}
	var err error
	if s.GitHubURL, err = s.serve(latency(opts.Latency, s.afterGitHub(gh))); err != nil {
		return nil, err
	}
	if s.HydraURL, err = s.serve(latency(opts.Latency, s.captureTokens(hy))); err != nil {
		s.Close()
		return nil, err
	}
	gh.AddRepo(Repo, RepoID)
	gh.AddEnvironment(Repo, "production")
	gh.AddToken(PAT, githubemu.AllPermissions())
	started := opts.RunStartedAt
	if started.IsZero() {
		started = time.Now().Add(-time.Hour)
	}
	gh.AddRun(Repo, RunID, started)
	hy.AddClient(hydraemu.Client{ID: ClientID, Public: true, RedirectURIs: []string{"http://localhost:13222/callback"}, DisableRotation: opts.DisableRotation})
	s.Initial = hy.IssueChain(ClientID, "openid", "offline_access")
	seeded := started.Add(-time.Hour)
	scope := githubemu.RepoScope(Repo)
	gh.SetSecret(scope, "WIZARD_REFRESH_TOKEN", s.Initial.RefreshToken, seeded)
	gh.SetSecret(scope, "WIZARD_OAUTH_TOKEN", s.Initial.AccessToken, seeded)
	gh.SetSecret(scope, "WIZARD_EXPIRES_AT", seeded.Add(time.Hour).UTC().Format(time.RFC3339), seeded)
	return s, nil
}

func (s *Stack) serve(h http.Handler) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("failed to listen on loopback: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	s.servers = append(s.servers, srv)
	go srv.Serve(l)
	return "http://" + l.Addr().String(), nil
}

// Close stops both emulators.
func (s *Stack) Close() {
	for _, srv := range s.servers {
		srv.Close()
	}
}

// TokenURL is the emulated token endpoint.
func (s *Stack) TokenURL() string { return s.HydraURL + hydraemu.PathToken }

// Stored returns a secret's plaintext as the GitHub emulator holds it.
func (s *Stack) Stored(name string) string {
	sec, _ := s.GitHub.Secret(githubemu.RepoScope(Repo), name)
	return sec.Value
}

// ChainAlive reports whether the stored refresh token would still work.
func (s *Stack) ChainAlive() bool {
	return s.Hydra.RefreshTokenUsable(s.Stored("WIZARD_REFRESH_TOKEN"))
}

// Inputs are the action inputs of a scheduled run, as the example workflow
// passes them (refresh token from the stored secret).
func (s *Stack) Inputs() map[string]string {
	return map[string]string{
		"refresh-token": s.Stored("WIZARD_REFRESH_TOKEN"),
		"github-token":  PAT,
		"repository":    Repo,
		"token-url":     s.TokenURL(),
		"client-id":     ClientID,
		"zone":          "us",
	}
}

// Outcome is what one run of the action binary left behind.
type Outcome struct {
	ExitCode int
	Stdout   string
	Stderr   string
	// OutputFile and Summary are the raw GITHUB_OUTPUT and
	// GITHUB_STEP_SUMMARY files.
	OutputFile string
	Summary    string
	// Outputs are the parsed step outputs.
	Outputs  map[string]string
	Duration time.Duration
}

// Run runs the action binary the way the runner runs a container action:
// inputs as INPUT_<NAME> (upper case, hyphens kept), GITHUB_OUTPUT and
// GITHUB_STEP_SUMMARY files in a fresh file_commands directory, the
// workspace as working directory, and no other environment than the
// runner's usual variables. extraEnv adds or overrides variables.
func (s *Stack) Run(ctx context.Context, bin, dir string, inputs map[string]string, extraEnv ...string) (*Outcome, error) {
	fc := filepath.Join(dir, "file_commands")
	ws := filepath.Join(dir, "workspace")
	for _, d := range []string{fc, ws} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	outPath, sumPath := filepath.Join(fc, "set_output"), filepath.Join(fc, "step_summary")
	for _, p := range []string{outPath, sumPath} {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			return nil, err
		}
	}
	// Each run is a new workflow run that starts now, as a scheduled run
	// does (extraEnv may point GITHUB_RUN_ID elsewhere).
	s.mu.Lock()
	s.nextRun++
	runID := RunID + s.nextRun
	s.mu.Unlock()
	// GitHub's timestamps have whole seconds, and the stale-secret guard
	// treats a secret written in the second its run started as stale: a
	// scheduled run starts at least a second after the previous one wrote.
	s.GitHub.AddRun(Repo, runID, time.Now().Add(time.Second))
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + ws,
		"GITHUB_ACTIONS=true",
		"CI=true",
		"GITHUB_REPOSITORY=" + Repo,
		fmt.Sprintf("GITHUB_RUN_ID=%d", runID),
		"GITHUB_API_URL=" + s.GitHubURL,
		"GITHUB_WORKSPACE=" + ws,
		"GITHUB_OUTPUT=" + outPath,
		"GITHUB_STEP_SUMMARY=" + sumPath,
	}
	for k, v := range inputs {
		env = append(env, "INPUT_"+strings.ToUpper(strings.ReplaceAll(k, " ", "_"))+"="+v)
	}
	env = append(env, extraEnv...)
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = env
	cmd.Dir = ws
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	o := &Outcome{Stdout: stdout.String(), Stderr: stderr.String(), Duration: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		o.ExitCode = ee.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("failed to run %s: %w", bin, err)
	}
	out, _ := os.ReadFile(outPath)
	sum, _ := os.ReadFile(sumPath)
	o.OutputFile, o.Summary = string(out), string(sum)
	o.Outputs, err = ParseOutputs(o.OutputFile)
	if err != nil {
		return o, err
	}
	return o, nil
}

// ParseOutputs reads a GITHUB_OUTPUT file the way the runner does (name=value
// lines and name<<DELIM heredocs).
func ParseOutputs(s string) (map[string]string, error) {
	out := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if line == "" {
			continue
		}
		if name, delim, ok := strings.Cut(line, "<<"); ok {
			var val []string
			for i++; ; i++ {
				if i >= len(lines) {
					return nil, fmt.Errorf("output %s: delimiter %s never closed", name, delim)
				}
				if lines[i] == delim {
					break
				}
				val = append(val, lines[i])
			}
			out[name] = strings.Join(val, "\n")
			continue
		}
		name, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("bad output line %q", line)
		}
		out[name] = val
	}
	return out, nil
}

// Build compiles the action binary into dir and returns its path.
func Build(ctx context.Context, moduleDir, dir string) (string, error) {
	bin := filepath.Join(dir, "wizard-oauth-refresh")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, ".")
	cmd.Dir = moduleDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("failed to build the action: %v\n%s", err, out)
	}
	return bin, nil
}

// ModuleDir is the root of this module when run with go run from a
// checkout (the commands that build the action use it), else ".".
func ModuleDir() string {
	if _, file, _, ok := runtime.Caller(0); ok {
		dir := filepath.Join(filepath.Dir(file), "..", "..", "..")
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
	}
	return "."
}

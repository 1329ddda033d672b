//go:build realhydra

package realhydra

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
)

// The bootstrap CLI (cmd/bootstrap) as a process: its restore subcommand
// (scenario 5) and its --login flow against real Hydra (scenario 7).

// bootstrapCommand reports whether the checkout has cmd/bootstrap.
func bootstrapCommand() bool {
	m, _ := filepath.Glob(filepath.Join(repoRoot(), "cmd", "bootstrap", "*.go"))
	return len(m) > 0
}

// buildBootstrap compiles cmd/bootstrap into a temporary directory.
func buildBootstrap(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./cmd/bootstrap")
	cmd.Dir = repoRoot()
	cmd.Env = append(cmd.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/bootstrap: %v\n%s", err, out)
	}
	return bin
}

// bootstrapEnv is the environment of a bootstrap process on this machine:
// nothing from the test's own environment but PATH.
func bootstrapEnv(t *testing.T, w *world) []string {
	home := t.TempDir()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"AMPLITUDE_WIZARD_CACHE_DIR=" + filepath.Join(home, "wizard"),
		"GH_TOKEN=" + stack.PAT,
		"GITHUB_API_URL=" + w.s.GitHubURL,
	}
}

var recordRE = regexp.MustCompile(`wizard-recovery-v1\.[A-Za-z0-9_-]+`)

// restoreWithBootstrap restores the recovery record in a failed run's
// stdout with `bootstrap restore --yes RECORD`. It reports false when the
// checkout has no cmd/bootstrap.
func restoreWithBootstrap(t *testing.T, w *world, stdout string) (string, bool) {
	t.Helper()
	if !bootstrapCommand() {
		return "", false
	}
	record := recordRE.FindString(stdout)
	if record == "" {
		t.Fatalf("no recovery record in the run's stdout")
	}
	bin := buildBootstrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "restore", "--yes", record)
	cmd.Env = bootstrapEnv(t, w)
	cmd.Dir = t.TempDir()
	var stdoutB, stderrB bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdoutB, &stderrB
	err := cmd.Run()
	if err != nil {
		t.Fatalf("bootstrap restore: %v\nstdout:\n%s\nstderr:\n%s", err, stdoutB.String(), stderrB.String())
	}
	w.leakCheck(t, "bootstrap restore", &runResult{label: "restore", o: &stack.Outcome{Stdout: stdoutB.String(), Stderr: stderrB.String(), Outputs: map[string]string{}}})
	t.Logf("bootstrap restore output:\n%s%s", stdoutB.String(), stderrB.String())
	return "`bootstrap restore --yes <record>` (cmd/bootstrap built from this checkout, GH_TOKEN + GITHUB_API_URL → the emulator)", true
}

// ---- scenario 7 ----------------------------------------------------------

// amplitudeRedirects are the redirect URIs the Amplitude OAuth clients
// register, which the bootstrap's callback server picks from.
func amplitudeRedirects() []string {
	var out []string
	for port := 13222; port <= 13232; port++ {
		out = append(out, fmt.Sprintf("http://localhost:%d/callback", port))
	}
	return out
}

func scenarioBootstrapLogin(t *testing.T, p *probe, actionBin string, h *Hydra) {
	if !bootstrapCommand() {
		cannotRun(t, "cmd/bootstrap does not exist in this checkout")
	}
	bin := buildBootstrap(t)
	w := newWorld(t, actionBin, h)

	// A public client registered like Amplitude's: localhost callbacks on
	// 13222..13232, scopes openid offline_access offline.
	resp := h.adminJSON(t, http.MethodPost, "/admin/clients", map[string]any{
		"client_name":                "wizard-oauth-refresh realhydra bootstrap",
		"token_endpoint_auth_method": "none",
		"grant_types":                []string{"authorization_code", "refresh_token"},
		"response_types":             []string{"code"},
		"scope":                      defaultScope,
		"redirect_uris":              amplitudeRedirects(),
	})
	if resp.Status != http.StatusCreated {
		t.Fatalf("create client: %d %s", resp.Status, resp.Body)
	}
	w.c = Client{ID: resp.JSON()["client_id"].(string), Scope: defaultScope, Raw: resp.JSON()}
	seededRT := w.stored(secretRT) // the stack's placeholder (an emulator token)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	args := []string{"--login", "--yes", "--no-browser",
		"--repo", stack.Repo,
		"--hydra-url", h.PublicURL,
		"--token-url", w.px.TokenURL("bootstrap"),
		"--client-id", w.c.ID,
		"--login-timeout", "2m",
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = bootstrapEnv(t, w)
	cmd.Dir = t.TempDir()
	cmd.Stdin = strings.NewReader("")
	var stderrB bytes.Buffer
	cmd.Stderr = &stderrB
	pipe, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start bootstrap: %v", err)
	}
	// Reap the process in every case (a failed assertion below included).
	var waitErr error
	waited := make(chan struct{})
	var stdoutB bytes.Buffer
	var outMu sync.Mutex
	authURL := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pipe)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Text()
			outMu.Lock()
			stdoutB.WriteString(line + "\n")
			outMu.Unlock()
			if u := strings.TrimSpace(line); !sent && strings.HasPrefix(u, h.PublicURL+"/oauth2/auth?") {
				authURL <- u
				sent = true
			}
		}
		io.Copy(io.Discard, pipe)
		waitErr = cmd.Wait()
		close(waited)
	}()
	t.Cleanup(func() {
		cancel()
		<-waited
	})
	output := func() string {
		outMu.Lock()
		defer outMu.Unlock()
		return stdoutB.String() + stderrB.String()
	}

	var u string
	select {
	case u = <-authURL:
	case <-waited:
		t.Fatalf("bootstrap exited (%v) before printing the authorization URL:\n%s", waitErr, output())
	case <-time.After(60 * time.Second):
		t.Fatalf("bootstrap printed no authorization URL within 60s:\n%s", output())
	}
	p.note(t, "bootstrap --login printed the authorization URL after %s: %s", time.Since(start).Round(time.Millisecond), redactQuery(u))

	// The test is the browser: Hydra's login and consent are accepted
	// through the admin API, then the browser lands on the callback.
	cb, status, body := browseToCallback(t, h, u)
	p.note(t, "browser: login and consent accepted via the admin API; callback %s → HTTP %d (%s)", cb.Scheme+"://"+cb.Host+cb.Path, status, firstLine(body))
	if status != http.StatusOK {
		t.Errorf("callback answered %d", status)
	}
	select {
	case <-waited:
	case <-time.After(90 * time.Second):
		t.Fatalf("bootstrap did not finish within 90s after the callback:\n%s", output())
	}
	exit := 0
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		exit = ee.ExitCode()
	} else if waitErr != nil {
		t.Fatalf("bootstrap: %v", waitErr)
	}
	p.note(t, "bootstrap --login exited %d in %s", exit, time.Since(start).Round(time.Millisecond))
	t.Logf("bootstrap output:\n%s", output())
	w.leakCheck(t, "bootstrap --login", &runResult{label: "bootstrap", o: &stack.Outcome{Stdout: stdoutB.String(), Stderr: stderrB.String(), Outputs: map[string]string{}}})
	if exit != 0 {
		t.Fatalf("bootstrap --login exited %d:\n%s", exit, output())
	}

	xs := w.px.Exchanges("bootstrap")
	if len(xs) != 1 || xs[0].Tokens == nil {
		t.Fatalf("bootstrap's code exchange at Hydra: %s", trail(xs))
	}
	rt0 := w.stored(secretRT)
	zone, _ := w.s.GitHub.Variable(githubemu.RepoScope(stack.Repo), "WIZARD_ZONE")
	intro := h.Introspect(t, rt0)
	p.note(t, "stored: %s = the code exchange's refresh token: %v (replaced the placeholder: %v); %s = its access token: %v; %s = %s; variable WIZARD_ZONE = %q",
		secretRT, rt0 == xs[0].Tokens.RefreshToken, rt0 != seededRT, secretAT, w.stored(secretAT) == xs[0].Tokens.AccessToken, secretExp, w.stored(secretExp), zone)
	p.note(t, "Hydra: stored RT0 %s", introspection(intro))
	if rt0 != xs[0].Tokens.RefreshToken || w.stored(secretAT) != xs[0].Tokens.AccessToken {
		t.Errorf("bootstrap did not store the tokens Hydra issued")
	}
	if a, _ := intro["active"].(bool); !a || intro["client_id"] != w.c.ID || intro["token_use"] != "refresh_token" {
		t.Errorf("stored refresh token introspection: %s", introspection(intro))
	}

	// The first scheduled run takes over the bootstrapped chain.
	r := w.run(t, p, "first scheduled run, fed the bootstrapped RT0", rt0, "run1")
	wantExit(t, r, 0)
	onlyExchange(t, r, http.StatusOK)
	if w.stored(secretRT) == rt0 || !h.Active(t, w.stored(secretRT)) || h.Active(t, rt0) {
		t.Errorf("the first run did not rotate the bootstrapped chain")
	}
}

// browseToCallback follows an authorization URL like a browser whose user
// signs in and consents, and returns the callback it lands on with the
// callback server's answer.
func browseToCallback(t *testing.T, h *Hydra, authURL string) (*url.URL, int, string) {
	t.Helper()
	browser := newBrowser(t)
	loc := h.SignIn(t, browser, authURL, func(loc *url.URL) bool {
		return loc.Path == "/callback" && (loc.Hostname() == "localhost" || loc.Hostname() == "127.0.0.1")
	})
	if e := loc.Query().Get("error"); e != "" {
		t.Fatalf("authorization error at the callback: %s: %s", e, loc.Query().Get("error_description"))
	}
	resp, err := browser.Get(loc.String())
	if err != nil {
		t.Fatalf("GET the callback: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return loc, resp.StatusCode, string(b)
}

// redactQuery drops a URL's query (state, challenges, codes).
func redactQuery(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		return s[:i] + "?…"
	}
	return s
}

func firstLine(s string) string {
	s = strings.TrimSpace(regexp.MustCompile(`<[^>]*>`).ReplaceAllString(s, " "))
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 100 {
		s = s[:100] + "…"
	}
	return s
}

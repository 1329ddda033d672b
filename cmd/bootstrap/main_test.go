package main

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/bootstrap/login"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
)

// The test binary doubles as the command: with BOOTSTRAP_MAIN=1 it runs
// main with the arguments it was given.
func TestMain(m *testing.M) {
	if os.Getenv("BOOTSTRAP_MAIN") == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

const token = "github_pat_main_test_0123456789"

type env struct {
	gh       *githubemu.Emulator
	hy       *hydraemu.Server
	hydraURL string
	vars     []string
	cache    string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{gh: githubemu.New(), hy: hydraemu.New()}
	e.gh.AddRepo("amplitude/wizard", 0)
	e.gh.AddToken(token, githubemu.AllPermissions())
	gts := httptest.NewServer(e.gh)
	t.Cleanup(gts.Close)
	var uris []string
	for _, p := range login.DefaultPorts() {
		uris = append(uris, "http://localhost:"+strconv.Itoa(p)+"/callback")
	}
	e.hy.AddClient(hydraemu.Client{ID: inputs.Zones["us"].ClientID, Public: true, RedirectURIs: uris})
	hts := httptest.NewServer(e.hy)
	t.Cleanup(hts.Close)
	e.hydraURL = hts.URL
	dir := t.TempDir()
	e.cache = filepath.Join(dir, "cache")
	os.MkdirAll(e.cache, 0o700)
	e.vars = []string{
		"BOOTSTRAP_MAIN=1",
		"HOME=" + dir,
		"AMPLITUDE_WIZARD_CACHE_DIR=" + e.cache,
		"GH_TOKEN=" + token,
		"GITHUB_API_URL=" + gts.URL,
		"PATH=" + os.Getenv("PATH"),
	}
	return e
}

func (e *env) command(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = e.vars
	return cmd
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

func TestBinary(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		unset    string
		seed     bool
		wantCode int
		wantOut  string
	}{
		{name: "help", args: []string{"--help"}, wantOut: "Usage:"},
		{name: "bad flag", args: []string{"--nope"}, wantCode: 2, wantOut: "unknown flag --nope"},
		{name: "no token", args: []string{"--repo", "amplitude/wizard"}, unset: "GH_TOKEN=", wantCode: 2, wantOut: "GH_TOKEN"},
		{name: "no session", args: []string{"--repo", "amplitude/wizard", "--yes"}, wantCode: 4, wantOut: "npx @amplitude/wizard login"},
		{name: "session push", args: []string{"--repo", "amplitude/wizard", "--yes"}, seed: true, wantOut: "Handed off"},
		{name: "no such repository", args: []string{"--repo", "amplitude/nope", "--yes"}, seed: true, wantCode: 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			if tt.unset != "" {
				for i, v := range e.vars {
					if strings.HasPrefix(v, tt.unset) {
						e.vars = append(e.vars[:i:i], e.vars[i+1:]...)
						break
					}
				}
			}
			if tt.seed {
				b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "session", "us", "cache", "oauth-session.json"))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(e.cache, "oauth-session.json"), b, 0o600)
			}
			var out bytes.Buffer
			cmd := e.command(tt.args...)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if got := exitCode(err); got != tt.wantCode {
				t.Fatalf("exit %d, want %d:\n%s", got, tt.wantCode, out.String())
			}
			if !strings.Contains(out.String(), tt.wantOut) {
				t.Errorf("output lacks %q:\n%s", tt.wantOut, out.String())
			}
			if tt.seed && tt.wantCode == 0 {
				if s, ok := e.gh.Secret(githubemu.RepoScope("amplitude/wizard"), "WIZARD_REFRESH_TOKEN"); !ok || s.Value != "ory_rt_us-refresh-1001" {
					t.Errorf("refresh token secret = %q", s.Value)
				}
			}
		})
	}
}

// startLogin runs `--login --no-browser` and returns the printed URL.
func startLogin(t *testing.T, e *env) (*exec.Cmd, string, *bytes.Buffer) {
	t.Helper()
	cmd := e.command("--login", "--no-browser", "--hydra-url", e.hydraURL, "--repo", "amplitude/wizard", "--yes")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	var rest bytes.Buffer
	found := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			rest.WriteString(line + "\n")
			if u := strings.TrimSpace(line); strings.HasPrefix(u, "http") && strings.Contains(u, "/oauth2/auth?") {
				found <- u
			}
		}
		close(found)
	}()
	select {
	case u, ok := <-found:
		if !ok {
			err := cmd.Wait()
			if exitCode(err) == 5 && strings.Contains(stderr.String(), "cannot listen") {
				t.Skipf("ports 13222..13232 are all taken on this machine:\n%s", stderr.String())
			}
			t.Fatalf("no URL printed (exit %d):\n%s%s", exitCode(err), rest.String(), stderr.String())
		}
		return cmd, u, &stderr
	case <-time.After(20 * time.Second):
		t.Fatal("no URL printed")
	}
	return nil, "", nil
}

func TestBinaryLogin(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cmd, u, stderr := startLogin(t, e)
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if !strings.Contains(string(page), "close this tab") {
		t.Errorf("callback page = %q", page)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit %d:\n%s", exitCode(err), stderr.String())
	}
	s, ok := e.gh.Secret(githubemu.RepoScope("amplitude/wizard"), "WIZARD_REFRESH_TOKEN")
	if !ok || !e.hy.RefreshTokenUsable(s.Value) {
		t.Error("the stored refresh token does not work")
	}
}

func TestBinaryInterrupted(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT on Windows")
	}
	e := newEnv(t)
	cmd, _, stderr := startLogin(t, e)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if got := exitCode(cmd.Wait()); got != 1 {
		t.Errorf("exit %d, want 1:\n%s", got, stderr.String())
	}
	if !strings.Contains(stderr.String(), "interrupted") {
		t.Errorf("stderr lacks \"interrupted\":\n%s", stderr.String())
	}
	if _, ok := e.gh.Secret(githubemu.RepoScope("amplitude/wizard"), "WIZARD_REFRESH_TOKEN"); ok {
		t.Error("a secret was written")
	}
}

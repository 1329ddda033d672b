package bootstrap

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/bootstrap/session"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
)

// The seeded world: a repository with an environment, a GitHub token that
// may do everything, a PAT for the action, and the zones' OAuth clients at
// the Hydra emulator.
const (
	testRepo  = "amplitude/wizard"
	testToken = "github_pat_bootstrap_0123456789abcdef"
	testPAT   = "github_pat_action_fedcba9876543210xyz"
)

var fixtures = filepath.Join("..", "..", "testdata", "session")

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

type world struct {
	t     *testing.T
	clock *clock
	gh    *githubemu.Emulator
	ghURL string
	hy    *hydraemu.Server
	hyURL string
	ports []int
	home  string
	cache string
	env   map[string]string
	// remote is what `git remote get-url origin` prints ("" fails).
	remote string
	// afterGitHub is called after each GitHub request is answered.
	afterGitHub func(r *http.Request)
	// browser visits the login URL (nil: follow it like a signed-in user).
	browser func(ctx context.Context, u string) error
	pages   []string // what the browser showed
	mu      sync.Mutex
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, clock: &clock{t: time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)}}
	w.gh = githubemu.New(githubemu.WithClock(w.clock.Now))
	w.gh.AddRepo(testRepo, 0)
	w.gh.AddEnvironment(testRepo, "ci")
	w.gh.AddToken(testToken, githubemu.AllPermissions())
	w.gh.AddToken(testPAT, githubemu.Permissions{Repos: map[string]githubemu.RepoPermissions{testRepo: {Metadata: true, SecretsWrite: true, EnvironmentsWrite: true}}})
	ghTS := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.gh.ServeHTTP(rw, r)
		if w.afterGitHub != nil {
			w.afterGitHub(r)
		}
	}))
	t.Cleanup(ghTS.Close)
	w.ghURL = ghTS.URL

	w.ports = freePorts(t, 1)
	w.hy = hydraemu.New()
	var uris []string
	for _, p := range w.ports {
		uris = append(uris, "http://localhost:"+strconv.Itoa(p)+"/callback")
	}
	for _, z := range inputs.Zones {
		w.hy.AddClient(hydraemu.Client{ID: z.ClientID, Public: true, RedirectURIs: uris})
	}
	hyTS := httptest.NewServer(w.hy)
	t.Cleanup(hyTS.Close)
	w.hyURL = hyTS.URL

	dir := t.TempDir()
	w.home, w.cache = filepath.Join(dir, "home"), filepath.Join(dir, "cache")
	os.MkdirAll(w.home, 0o700)
	os.MkdirAll(w.cache, 0o700)
	w.env = map[string]string{
		"HOME":              w.home,
		session.CacheDirEnv: w.cache,
		"GH_TOKEN":          testToken,
		"GITHUB_API_URL":    w.ghURL,
	}
	w.remote = "git@github.com:" + testRepo + ".git\n"
	return w
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
		defer ln.Close()
	}
	return ports
}

// seed copies a session fixture (its cache/ and home/ files) into the world.
func (w *world) seed(fixture string) {
	w.t.Helper()
	src := filepath.Join(fixtures, fixture)
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		dst := w.home
		if first, rest, _ := strings.Cut(filepath.ToSlash(rel), "/"); first == "cache" {
			dst = filepath.Join(w.cache, rest)
		} else {
			dst = filepath.Join(w.home, rest)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, b, 0o600)
	})
	if err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) sessionPath() string { return filepath.Join(w.cache, session.FileName) }
func (w *world) legacyPath() string  { return filepath.Join(w.home, session.LegacyFileName) }

func (w *world) readFile(p string) string {
	w.t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		w.t.Fatal(err)
	}
	return string(b)
}

// follow is the default browser: a signed-in user who consents. It follows
// the authorization URL's redirects to the callback.
func (w *world) follow(ctx context.Context, u string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	w.mu.Lock()
	w.pages = append(w.pages, string(b))
	w.mu.Unlock()
	return nil
}

type result struct {
	err            error
	code           int
	stdout, stderr string
}

func (r result) out() string { return r.stdout + r.stderr }

// deps are the CLI's dependencies in this world.
func (w *world) deps(stdin io.Reader, stdout, stderr io.Writer) Deps {
	browser := w.browser
	if browser == nil {
		browser = w.follow
	}
	return Deps{
		Stdin:       stdin,
		Stdout:      stdout,
		Stderr:      stderr,
		Getenv:      func(k string) string { return w.env[k] },
		Now:         w.clock.Now,
		OpenBrowser: browser,
		Git: func(ctx context.Context, args ...string) ([]byte, error) {
			if w.remote == "" {
				return nil, &os.PathError{Op: "exec", Path: "git", Err: os.ErrNotExist}
			}
			return []byte(w.remote), nil
		},
		CallbackPorts: w.ports,
		RetryWait:     4 * time.Millisecond,
		Version:       "test",
	}
}

// run runs the CLI with stdin and args.
func (w *world) run(stdin string, args ...string) result {
	w.t.Helper()
	var stdout, stderr bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := Main(ctx, args, w.deps(strings.NewReader(stdin), &stdout, &stderr))
	return result{err: err, code: ExitCode(err), stdout: stdout.String(), stderr: stderr.String()}
}

// writes lists the GitHub requests that change something, in order.
func (w *world) writes() []string {
	var out []string
	for _, r := range w.gh.Requests() {
		if r.Method == http.MethodGet {
			continue
		}
		name := r.Name
		out = append(out, r.Method+" "+name)
	}
	return out
}

// secret is a secret's plaintext in the GitHub emulator ("" when absent).
func (w *world) secret(scope githubemu.Scope, name string) string {
	s, ok := w.gh.Secret(scope, name)
	if !ok {
		return ""
	}
	return s.Value
}

// noSecrets fails when out contains any of values.
func noSecrets(t *testing.T, out string, values ...string) {
	t.Helper()
	for _, v := range values {
		if v != "" && strings.Contains(out, v) {
			t.Errorf("the output shows a secret value (%.12s…):\n%s", v, out)
		}
	}
}

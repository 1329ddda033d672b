//go:build realhydra

// Package realhydra runs a real Ory Hydra (built from the tools module in
// test/hydra) on loopback and drives it headlessly: public clients, the
// authorization-code + PKCE login/consent dance, refresh, introspection.
//
// Everything here is behind the "realhydra" build tag so that a plain
// `go test ./...` stays hermetic. Run with:
//
//	go test -tags realhydra -race -count=1 -v ./test/realhydra/
//
// The Hydra binary is taken from $HYDRA_BIN, or built (and cached) by
// test/hydra/build.sh.
package realhydra

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options configures one Hydra process. Zero values mean Hydra's defaults.
type Options struct {
	// GracePeriod is oauth2.grant.refresh_token.rotation_grace_period
	// (OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_PERIOD). Hydra clamps it to 5m.
	GracePeriod time.Duration
	// AccessTTL is ttl.access_token (TTL_ACCESS_TOKEN, default 1h).
	AccessTTL time.Duration
	// RefreshTTL is ttl.refresh_token (TTL_REFRESH_TOKEN, default 720h).
	RefreshTTL time.Duration
	// IDTokenTTL is ttl.id_token (TTL_ID_TOKEN, default 1h).
	IDTokenTTL time.Duration
	// ExtraEnv is appended verbatim (KEY=VALUE) to Hydra's environment.
	ExtraEnv []string
	// StartTimeout bounds the wait for /health/ready (default 60s).
	StartTimeout time.Duration
}

// Hydra is a running Hydra process plus a loopback "app" server that stands
// in for the login UI, the consent UI and the client's redirect URI.
type Hydra struct {
	PublicURL string // e.g. http://127.0.0.1:41234 (also the issuer)
	AdminURL  string // e.g. http://127.0.0.1:41235
	AppURL    string // loopback server: /login, /consent, /callback
	Bin       string
	LogPath   string
	Opts      Options

	// HTTP is a plain client without redirects following (for token calls).
	HTTP *http.Client

	cmd  *exec.Cmd
	done chan struct{} // closed when cmd.Wait returned
	werr error
}

// Client is a registered OAuth 2.0 client.
type Client struct {
	ID          string
	RedirectURI string
	Scope       string
	Raw         map[string]any // admin API response
}

// Tokens is a successful token endpoint response.
type Tokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	TokenType    string
	Scope        string
	ExpiresIn    int64
	Raw          map[string]any
}

// Response is a raw HTTP answer from Hydra.
type Response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Elapsed time.Duration
}

// JSON decodes the body into a generic map (nil if it is not a JSON object).
func (r Response) JSON() map[string]any {
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		return nil
	}
	return m
}

// Tokens interprets a 200 body as a token response.
func (r Response) Tokens() (Tokens, error) {
	if r.Status != http.StatusOK {
		return Tokens{}, fmt.Errorf("token endpoint answered %d: %s", r.Status, r.Body)
	}
	m := r.JSON()
	if m == nil {
		return Tokens{}, fmt.Errorf("token endpoint answered non-JSON: %q", r.Body)
	}
	t := Tokens{Raw: m}
	t.AccessToken, _ = m["access_token"].(string)
	t.RefreshToken, _ = m["refresh_token"].(string)
	t.IDToken, _ = m["id_token"].(string)
	t.TokenType, _ = m["token_type"].(string)
	t.Scope, _ = m["scope"].(string)
	if f, ok := m["expires_in"].(float64); ok {
		t.ExpiresIn = int64(f)
	}
	if t.AccessToken == "" {
		return t, fmt.Errorf("token response without access_token: %s", r.Body)
	}
	return t, nil
}

const (
	defaultScope = "openid offline_access offline"
	subject      = "realhydra-user@example.test"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// HydraBinary returns $HYDRA_BIN or the path printed by test/hydra/build.sh
// (building and caching Hydra on first use). The build runs at most once per
// test process.
func HydraBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		if p := os.Getenv("HYDRA_BIN"); p != "" {
			binPath, binErr = p, nil
			if _, err := os.Stat(p); err != nil {
				binErr = fmt.Errorf("HYDRA_BIN=%s: %w", p, err)
			}
			return
		}
		script := filepath.Join(repoRoot(), "test", "hydra", "build.sh")
		start := time.Now()
		cmd := exec.Command("bash", script)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Stderr = os.Stderr // build logs are useful live with -v
		if err := cmd.Run(); err != nil {
			binErr = fmt.Errorf("%s: %w", script, err)
			return
		}
		binPath = strings.TrimSpace(lastLine(stdout.String()))
		if binPath == "" {
			binErr = fmt.Errorf("%s printed no binary path", script)
			return
		}
		fmt.Fprintf(os.Stderr, "realhydra: hydra binary %s (build.sh took %s)\n", binPath, time.Since(start).Round(time.Millisecond))
	})
	if binErr != nil {
		t.Fatalf("hydra binary: %v", binErr)
	}
	return binPath
}

func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if ok && filepath.IsAbs(file) { // not the case under -trimpath
		// file = <root>/test/realhydra/harness.go
		return filepath.Dir(filepath.Dir(filepath.Dir(file)))
	}
	wd, _ := os.Getwd()
	return filepath.Dir(filepath.Dir(wd))
}

func lastLine(s string) string {
	s = strings.TrimRight(s, "\n")
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// HydraVersion runs `hydra version`.
func HydraVersion(t testing.TB) string {
	t.Helper()
	out, err := exec.Command(HydraBinary(t), "version").CombinedOutput()
	if err != nil {
		t.Fatalf("hydra version: %v\n%s", err, out)
	}
	return strings.TrimSpace(string(out))
}

// freePort asks the kernel for a free loopback port. There is a small window
// between closing the listener and Hydra binding it; StartHydra retries.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// StartHydra starts `hydra serve all --dev` with an in-memory database on
// free loopback ports and waits until /health/ready answers. The process is
// stopped (SIGTERM, then SIGKILL) and reaped in t.Cleanup; if the test failed
// the tail of Hydra's log is dumped.
func StartHydra(t testing.TB, o Options) *Hydra {
	t.Helper()
	bin := HydraBinary(t)
	if o.StartTimeout == 0 {
		o.StartTimeout = 60 * time.Second
	}

	// Loopback app server: stands in for login UI, consent UI and callback.
	// The harness never needs it to be reached (it stops at the redirects),
	// but it makes every URL Hydra hands out real.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintf(w, "realhydra app: %s %s\n", r.URL.Path, r.URL.RawQuery)
	}))
	t.Cleanup(app.Close)

	dir := t.TempDir()
	logDir := dir
	if d := os.Getenv("REALHYDRA_LOG_DIR"); d != "" {
		// Keep Hydra's logs after the run (for investigation).
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatalf("REALHYDRA_LOG_DIR: %v", err)
		}
		var err error
		if logDir, err = os.MkdirTemp(d, "hydra-"); err != nil {
			t.Fatalf("REALHYDRA_LOG_DIR: %v", err)
		}
	}
	var lastErr error
	for attempt := 1; attempt <= 3; attempt++ {
		h, err := startOnce(t, bin, o, app.URL, dir, logDir, attempt)
		if err == nil {
			return h
		}
		lastErr = err
		t.Logf("hydra start attempt %d failed: %v", attempt, err)
	}
	t.Fatalf("could not start hydra: %v", lastErr)
	return nil
}

func startOnce(t testing.TB, bin string, o Options, appURL, dir, logDir string, attempt int) (*Hydra, error) {
	pubPort, admPort := freePort(t), freePort(t)
	for admPort == pubPort {
		admPort = freePort(t)
	}
	h := &Hydra{
		PublicURL: fmt.Sprintf("http://127.0.0.1:%d", pubPort),
		AdminURL:  fmt.Sprintf("http://127.0.0.1:%d", admPort),
		AppURL:    appURL,
		Bin:       bin,
		LogPath:   filepath.Join(logDir, fmt.Sprintf("hydra-%d.log", attempt)),
		Opts:      o,
		HTTP: &http.Client{
			Timeout:       30 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		done: make(chan struct{}),
	}

	logf, err := os.Create(h.LogPath)
	if err != nil {
		return nil, err
	}

	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"TMPDIR=" + dir,
		"DSN=memory",
		"SECRETS_SYSTEM=" + randomHex(24), // 48 chars
		"URLS_SELF_ISSUER=" + h.PublicURL,
		"URLS_SELF_PUBLIC=" + h.PublicURL,
		"URLS_SELF_ADMIN=" + h.AdminURL,
		"URLS_LOGIN=" + appURL + "/login",
		"URLS_CONSENT=" + appURL + "/consent",
		"URLS_ERROR=" + appURL + "/error",
		"SERVE_PUBLIC_HOST=127.0.0.1",
		"SERVE_PUBLIC_PORT=" + strconv.Itoa(pubPort),
		"SERVE_ADMIN_HOST=127.0.0.1",
		"SERVE_ADMIN_PORT=" + strconv.Itoa(admPort),
		"LOG_LEVEL=debug",
		"LOG_FORMAT=text",
		"SQA_OPT_OUT=true",
	}
	if o.GracePeriod > 0 {
		env = append(env, "OAUTH2_GRANT_REFRESH_TOKEN_ROTATION_GRACE_PERIOD="+o.GracePeriod.String())
	}
	if o.AccessTTL > 0 {
		env = append(env, "TTL_ACCESS_TOKEN="+o.AccessTTL.String())
	}
	if o.RefreshTTL > 0 {
		env = append(env, "TTL_REFRESH_TOKEN="+o.RefreshTTL.String())
	}
	if o.IDTokenTTL > 0 {
		env = append(env, "TTL_ID_TOKEN="+o.IDTokenTTL.String())
	}
	env = append(env, o.ExtraEnv...)

	cmd := exec.Command(bin, "serve", "all", "--dev", "--sqa-opt-out")
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	h.cmd = cmd
	go func() {
		h.werr = cmd.Wait()
		logf.Close()
		close(h.done)
	}()
	t.Cleanup(func() { h.stop(t) })

	ctx, cancel := context.WithTimeout(context.Background(), o.StartTimeout)
	defer cancel()
	for {
		select {
		case <-h.done:
			return nil, fmt.Errorf("hydra exited before ready (%v); log tail:\n%s", h.werr, tail(h.LogPath, 40))
		case <-ctx.Done():
			h.stop(t)
			return nil, fmt.Errorf("hydra not ready after %s; log tail:\n%s", o.StartTimeout, tail(h.LogPath, 40))
		case <-time.After(50 * time.Millisecond):
		}
		if readyOK(h.AdminURL+"/health/ready") && readyOK(h.PublicURL+"/health/ready") {
			t.Logf("hydra pid %d ready in %s (public %s, admin %s, grace %s, log %s)",
				cmd.Process.Pid, time.Since(start).Round(time.Millisecond), h.PublicURL, h.AdminURL, o.GracePeriod, h.LogPath)
			return h, nil
		}
	}
}

func readyOK(u string) bool {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(u)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop terminates Hydra and waits for it. Safe to call more than once.
func (h *Hydra) stop(t testing.TB) {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	select {
	case <-h.done:
	default:
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	}
	if t.Failed() {
		t.Logf("---- hydra log %s (last 150 entries, stack traces omitted) ----\n%s\n---- end hydra log ----", h.LogPath, tailEntries(h.LogPath, 150))
	}
}

// Stop stops the process now (it is otherwise stopped in t.Cleanup).
func (h *Hydra) Stop(t testing.TB) { h.stop(t) }

// tailEntries is tail restricted to log entries (lines starting "time="),
// leaving out the stack traces Hydra prints below its error entries.
func tailEntries(path string, n int) string {
	var keep []string
	for _, l := range strings.Split(tail(path, 100*n), "\n") {
		if strings.HasPrefix(l, "time=") {
			keep = append(keep, l)
		}
	}
	if len(keep) > n {
		keep = keep[len(keep)-n:]
	}
	return strings.Join(keep, "\n")
}

func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot open %s: %v)", path, err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, "\n")
}

// ---- admin API -----------------------------------------------------------

// ClientOptions tweaks CreatePublicClient.
type ClientOptions struct {
	// Lifespans, e.g. "authorization_code_grant_refresh_token_lifespan": "2s".
	Lifespans map[string]string
	// GrantTypes overrides ["authorization_code","refresh_token"].
	GrantTypes []string
}

// CreatePublicClient registers a public client (token_endpoint_auth_method
// none) for the authorization code + refresh token grants.
func (h *Hydra) CreatePublicClient(t testing.TB, opts ...ClientOptions) Client {
	t.Helper()
	var o ClientOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	grants := o.GrantTypes
	if grants == nil {
		grants = []string{"authorization_code", "refresh_token"}
	}
	redirect := h.AppURL + "/callback"
	body := map[string]any{
		"client_name":                "wizard-oauth-refresh realhydra",
		"token_endpoint_auth_method": "none",
		"grant_types":                grants,
		"response_types":             []string{"code"},
		"scope":                      defaultScope,
		"redirect_uris":              []string{redirect},
	}
	for k, v := range o.Lifespans {
		body[k] = v
	}
	resp := h.adminJSON(t, http.MethodPost, "/admin/clients", body)
	if resp.Status != http.StatusCreated {
		t.Fatalf("create client: %d %s", resp.Status, resp.Body)
	}
	m := resp.JSON()
	id, _ := m["client_id"].(string)
	if id == "" {
		t.Fatalf("create client: no client_id in %s", resp.Body)
	}
	return Client{ID: id, RedirectURI: redirect, Scope: defaultScope, Raw: m}
}

// SetClientLifespans calls PUT /admin/clients/{id}/lifespans.
func (h *Hydra) SetClientLifespans(t testing.TB, c Client, lifespans map[string]string) {
	t.Helper()
	resp := h.adminJSON(t, http.MethodPut, "/admin/clients/"+url.PathEscape(c.ID)+"/lifespans", lifespans)
	if resp.Status != http.StatusOK {
		t.Fatalf("set lifespans: %d %s", resp.Status, resp.Body)
	}
}

func (h *Hydra) adminJSON(t testing.TB, method, path string, body any) Response {
	t.Helper()
	var rdr io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		rdr = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, h.AdminURL+path, rdr)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	return h.do(t, req)
}

func (h *Hydra) do(t testing.TB, req *http.Request) Response {
	t.Helper()
	start := time.Now()
	resp, err := h.HTTP.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", req.Method, req.URL, err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Elapsed: time.Since(start)}
}

// Introspect calls the admin introspection endpoint.
func (h *Hydra) Introspect(t testing.TB, token string) map[string]any {
	t.Helper()
	form := url.Values{"token": {token}}
	req, err := http.NewRequest(http.MethodPost, h.AdminURL+"/admin/oauth2/introspect", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp := h.do(t, req)
	if resp.Status != http.StatusOK {
		t.Fatalf("introspect: %d %s", resp.Status, resp.Body)
	}
	m := resp.JSON()
	if m == nil {
		t.Fatalf("introspect: non-JSON %q", resp.Body)
	}
	return m
}

// Active reports introspection's "active".
func (h *Hydra) Active(t testing.TB, token string) bool {
	t.Helper()
	a, _ := h.Introspect(t, token)["active"].(bool)
	return a
}

// ---- token endpoint ------------------------------------------------------

// PostToken POSTs an arbitrary form to the public /oauth2/token endpoint.
func (h *Hydra) PostToken(t testing.TB, form url.Values) Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, h.PublicURL+"/oauth2/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	return h.do(t, req)
}

// Refresh does the exact request the action makes: a public-client refresh.
func (h *Hydra) Refresh(t testing.TB, c Client, refreshToken string) Response {
	t.Helper()
	return h.PostToken(t, url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"client_id":     {c.ID},
	})
}

// ---- headless login ------------------------------------------------------

// Login runs the authorization code flow with PKCE S256 headlessly and
// returns real tokens. Login and consent are accepted through the admin API.
func (h *Hydra) Login(t testing.TB, c Client) Tokens {
	t.Helper()
	browser := newBrowser(t)

	verifierBytes := make([]byte, 32)
	if _, err := rand.Read(verifierBytes); err != nil {
		t.Fatal(err)
	}
	verifier := base64.RawURLEncoding.EncodeToString(verifierBytes)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	state := randomHex(16)
	nonce := randomHex(16)

	q := url.Values{
		"client_id":             {c.ID},
		"response_type":         {"code"},
		"scope":                 {c.Scope},
		"redirect_uri":          {c.RedirectURI},
		"state":                 {state},
		"nonce":                 {nonce},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
	next := h.PublicURL + "/oauth2/auth?" + q.Encode()

	loc := h.SignIn(t, browser, next, func(loc *url.URL) bool { return strings.HasPrefix(loc.String(), c.RedirectURI) })
	cq := loc.Query()
	if e := cq.Get("error"); e != "" {
		t.Fatalf("authorization error at callback: %s: %s (%s)", e, cq.Get("error_description"), cq.Get("error_hint"))
	}
	if cq.Get("state") != state {
		t.Fatalf("state mismatch: got %q want %q", cq.Get("state"), state)
	}
	code := cq.Get("code")
	if code == "" {
		t.Fatalf("callback without code: %s", loc)
	}
	resp := h.PostToken(t, url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"redirect_uri":  {c.RedirectURI},
		"client_id":     {c.ID},
		"code_verifier": {verifier},
	})
	tok, err := resp.Tokens()
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	if tok.RefreshToken == "" {
		t.Fatalf("code exchange returned no refresh_token: %s", resp.Body)
	}
	return tok
}

// newBrowser is an HTTP client that keeps cookies and stops at redirects,
// so a sign-in can be followed step by step.
func newBrowser(t testing.TB) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// SignIn follows an authorization URL like a browser whose user signs in
// and consents (both accepted through the admin API), and returns the first
// redirect location for which isCallback is true.
func (h *Hydra) SignIn(t testing.TB, browser *http.Client, authURL string, isCallback func(*url.URL) bool) *url.URL {
	t.Helper()
	next := authURL
	for step := 0; step < 20; step++ {
		loc := h.browse(t, browser, next)
		switch {
		case isCallback(loc):
			return loc
		case loc.Query().Get("login_challenge") != "" && strings.HasPrefix(loc.String(), h.AppURL+"/login"):
			ch := loc.Query().Get("login_challenge")
			resp := h.adminJSON(t, http.MethodPut, "/admin/oauth2/auth/requests/login/accept?login_challenge="+url.QueryEscape(ch),
				map[string]any{"subject": subject, "remember": false})
			next = redirectTo(t, "login accept", resp)
		case loc.Query().Get("consent_challenge") != "" && strings.HasPrefix(loc.String(), h.AppURL+"/consent"):
			ch := loc.Query().Get("consent_challenge")
			creq := h.adminJSON(t, http.MethodGet, "/admin/oauth2/auth/requests/consent?consent_challenge="+url.QueryEscape(ch), nil)
			if creq.Status != http.StatusOK {
				t.Fatalf("get consent request: %d %s", creq.Status, creq.Body)
			}
			var cr struct {
				RequestedScope    []string `json:"requested_scope"`
				RequestedAudience []string `json:"requested_access_token_audience"`
			}
			_ = json.Unmarshal(creq.Body, &cr)
			resp := h.adminJSON(t, http.MethodPut, "/admin/oauth2/auth/requests/consent/accept?consent_challenge="+url.QueryEscape(ch),
				map[string]any{
					"grant_scope":                 cr.RequestedScope,
					"grant_access_token_audience": cr.RequestedAudience,
					"remember":                    false,
					"session":                     map[string]any{"id_token": map[string]any{"email": subject}},
				})
			next = redirectTo(t, "consent accept", resp)
		case loc.Host == mustHost(h.PublicURL):
			next = loc.String()
		default:
			u := *loc
			u.RawQuery = ""
			t.Fatalf("unexpected redirect during login: %s", u.String())
		}
	}
	t.Fatalf("login did not reach the callback within 20 redirects")
	return nil
}

func mustHost(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		panic(err)
	}
	return p.Host
}

// browse GETs u and returns the redirect target; it fails the test on anything
// but a redirect.
func (h *Hydra) browse(t testing.TB, c *http.Client, u string) *url.URL {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 300 || resp.StatusCode > 399 {
		t.Fatalf("GET %s: expected redirect, got %d: %s", u, resp.StatusCode, body)
	}
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("GET %s: bad Location: %v", u, err)
	}
	return loc
}

func redirectTo(t testing.TB, what string, resp Response) string {
	t.Helper()
	if resp.Status != http.StatusOK {
		t.Fatalf("%s: %d %s", what, resp.Status, resp.Body)
	}
	var r struct {
		RedirectTo string `json:"redirect_to"`
	}
	if err := json.Unmarshal(resp.Body, &r); err != nil || r.RedirectTo == "" {
		t.Fatalf("%s: no redirect_to in %s (%v)", what, resp.Body, err)
	}
	return r.RedirectTo
}

// errNotRunning is returned by Alive when the process has exited.
var errNotRunning = errors.New("hydra is not running")

// Alive reports whether the Hydra process is still running.
func (h *Hydra) Alive() error {
	select {
	case <-h.done:
		return fmt.Errorf("%w: %v", errNotRunning, h.werr)
	default:
		return nil
	}
}

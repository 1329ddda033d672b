package login

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
)

const clientID = "0ac84169-c41c-4222-885b-31469c761cb0"

// freePorts returns n ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// occupy holds 127.0.0.1:port until the test ends.
func occupy(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

type hydra struct {
	s  *hydraemu.Server
	ts *httptest.Server
}

// newHydra starts the emulator with the Amplitude client, whose redirect
// URIs are http://localhost:{port}/callback for ports.
func newHydra(t *testing.T, ports []int) *hydra {
	t.Helper()
	s := hydraemu.New()
	var uris []string
	for _, p := range ports {
		uris = append(uris, "http://localhost:"+strconv.Itoa(p)+"/callback")
	}
	s.AddClient(hydraemu.Client{ID: clientID, Public: true, RedirectURIs: uris})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &hydra{s: s, ts: ts}
}

func (h *hydra) config(ports []int) Config {
	return Config{
		AuthURL:  h.ts.URL + hydraemu.PathAuth,
		Exchange: &oauth.Client{TokenURL: h.ts.URL + hydraemu.PathToken, ClientID: clientID, WaitMin: time.Millisecond, WaitMax: 5 * time.Millisecond},
		ClientID: clientID,
		Ports:    ports,
		Timeout:  10 * time.Second,
	}
}

// browser follows the authorization URL to the callback, like a browser
// whose user is signed in and consents.
type browser struct {
	t      *testing.T
	mu     sync.Mutex
	status int
	body   string
	err    error
	done   chan struct{}
}

func newBrowser(t *testing.T) *browser { return &browser{t: t, done: make(chan struct{})} }

func (b *browser) open(u string) {
	go func() {
		defer close(b.done)
		res, err := http.Get(u)
		b.mu.Lock()
		defer b.mu.Unlock()
		if err != nil {
			b.err = err
			return
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		b.status, b.body = res.StatusCode, string(body)
	}()
}

func (b *browser) page() (int, string, error) {
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.t.Fatal("the browser did not finish")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.status, b.body, b.err
}

func queryOf(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

func TestLoginEndToEnd(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 1)
	h := newHydra(t, ports)
	cfg := h.config(ports)
	b := newBrowser(t)
	var authURL string
	cfg.Ready = func(u string) { authURL = u; b.open(u) }

	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	status, body, berr := b.page()
	if berr != nil || status != http.StatusOK || !strings.Contains(body, "close this tab") {
		t.Errorf("browser page = %d %q %v, want 200 with \"close this tab\"", status, body, berr)
	}
	if got, want := res.RedirectURI, "http://localhost:"+strconv.Itoa(ports[0])+"/callback"; got != want {
		t.Errorf("RedirectURI = %q, want %q", got, want)
	}
	if got, want := res.Addr, "127.0.0.1:"+strconv.Itoa(ports[0]); got != want {
		t.Errorf("listened on %q, want %q", got, want)
	}
	tok := res.Token
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" {
		t.Fatalf("token = %+v, want access, refresh and id tokens", tok)
	}
	if !h.s.RefreshTokenUsable(tok.RefreshToken) {
		t.Error("the refresh token does not work at the token endpoint")
	}

	q := queryOf(t, authURL)
	for k, want := range map[string]string{
		"client_id": clientID, "redirect_uri": res.RedirectURI, "response_type": "code",
		"code_challenge_method": "S256", "scope": "openid offline",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("authorization URL %s = %q, want %q", k, got, want)
		}
	}
	if got := len(q.Get("code_challenge")); got != 43 {
		t.Errorf("code_challenge has %d characters, want 43", got)
	}
	if got := len(q.Get("state")); got < 32 {
		t.Errorf("state has %d characters, want at least 32", got)
	}

	var grants []string
	for _, r := range h.s.Requests() {
		if r.Endpoint == hydraemu.PathToken {
			grants = append(grants, r.GrantType)
		}
	}
	if got, want := strings.Join(grants, ","), "authorization_code"; got != want {
		t.Errorf("token requests = %q, want %q", got, want)
	}
}

func TestLoginRefusesBadCallbacks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// visit is what arrives at the callback; it returns the expected
		// status of the forged request.
		query      func(state string) url.Values
		wantStatus int
		wantErr    error
		// thenBrowser sends the real browser afterwards.
		thenBrowser bool
	}{
		{
			name: "state mismatch is refused and the login goes on",
			query: func(string) url.Values {
				return url.Values{"code": {"forged-code"}, "state": {"not-the-state-at-all-0123456789ab"}}
			},
			wantStatus:  http.StatusBadRequest,
			thenBrowser: true,
		},
		{
			name:       "state mismatch alone times out",
			query:      func(string) url.Values { return url.Values{"code": {"forged-code"}, "state": {"x"}} },
			wantStatus: http.StatusBadRequest,
			wantErr:    ErrTimeout,
		},
		{
			name:       "no state",
			query:      func(string) url.Values { return url.Values{"code": {"forged-code"}} },
			wantStatus: http.StatusBadRequest,
			wantErr:    ErrTimeout,
		},
		{
			name:       "no code",
			query:      func(state string) url.Values { return url.Values{"state": {state}} },
			wantStatus: http.StatusBadRequest,
			wantErr:    ErrNoCode,
		},
		{
			name:       "error from the authorization server",
			query:      func(state string) url.Values { return url.Values{"state": {state}, "error": {"access_denied"}} },
			wantStatus: http.StatusOK,
			wantErr:    &DeniedError{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ports := freePorts(t, 1)
			h := newHydra(t, ports)
			cfg := h.config(ports)
			if !tt.thenBrowser {
				cfg.Timeout = 300 * time.Millisecond
			}
			var notices []string
			var mu sync.Mutex
			cfg.Notice = func(m string) { mu.Lock(); notices = append(notices, m); mu.Unlock() }
			b := newBrowser(t)
			gotStatus := make(chan int, 1)
			cfg.Ready = func(u string) {
				q := queryOf(t, u)
				forged := q.Get("redirect_uri") + "?" + tt.query(q.Get("state")).Encode()
				go func() {
					status := 0
					if res, err := http.Get(forged); err != nil {
						t.Errorf("forged callback: %v", err)
					} else {
						res.Body.Close()
						status = res.StatusCode
					}
					gotStatus <- status
					if tt.thenBrowser {
						b.open(u)
					}
				}()
			}
			res, err := Run(context.Background(), cfg)
			if got := <-gotStatus; got != tt.wantStatus {
				t.Errorf("forged callback answered %d, want %d", got, tt.wantStatus)
			}
			var denied *DeniedError
			switch {
			case tt.wantErr == nil:
				if err != nil {
					t.Fatalf("Run: %v", err)
				}
				if !h.s.RefreshTokenUsable(res.Token.RefreshToken) {
					t.Error("the real login did not produce a working token")
				}
				mu.Lock()
				if len(notices) != 1 || !strings.Contains(notices[0], "state") {
					t.Errorf("notices = %q, want one about the state", notices)
				}
				mu.Unlock()
			case errors.As(tt.wantErr, &denied):
				if !errors.As(err, &denied) || denied.Code != "access_denied" {
					t.Errorf("Run error = %v, want access_denied", err)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("Run error = %v, want %v", err, tt.wantErr)
				}
			}
			// The forged code never reached the token endpoint.
			for _, r := range h.s.Requests() {
				if r.Endpoint == hydraemu.PathToken && r.TokenHash == hydraemu.Fingerprint("forged-code") {
					t.Error("the forged code was exchanged")
				}
			}
		})
	}
}

func TestLoginDenied(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 1)
	h := newHydra(t, ports)
	h.s.DenyAuthorization(true)
	cfg := h.config(ports)
	b := newBrowser(t)
	cfg.Ready = b.open
	_, err := Run(context.Background(), cfg)
	var denied *DeniedError
	if !errors.As(err, &denied) || denied.Code != "access_denied" {
		t.Fatalf("Run error = %v, want access_denied", err)
	}
	if status, body, _ := b.page(); status != http.StatusOK || !strings.Contains(body, "cancelled") {
		t.Errorf("browser page = %d %q", status, body)
	}
}

func TestLoginExchangeFailure(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 1)
	h := newHydra(t, ports)
	cfg := h.config(ports)
	cfg.Exchange.ClientID = "someone-else" // the code was issued to clientID
	cfg.Ready = newBrowser(t).open
	_, err := Run(context.Background(), cfg)
	var ee *ExchangeError
	var oe *oauth.Error
	if !errors.As(err, &ee) || !errors.As(err, &oe) {
		t.Fatalf("Run error = %v, want an ExchangeError wrapping an oauth.Error", err)
	}
}

func TestLoginListensOnLoopbackOnly(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 1)
	h := newHydra(t, ports)
	cfg := h.config(ports)
	b := newBrowser(t)
	cfg.Ready = func(u string) {
		addr := func(host string) string { return net.JoinHostPort(host, strconv.Itoa(ports[0])) }
		// Every non-loopback address of this machine must refuse.
		var others []string
		if ifaddrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range ifaddrs {
				if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && ipn.IP.To4() != nil {
					others = append(others, ipn.IP.String())
				}
			}
		}
		if runtime.GOOS == "linux" {
			others = append(others, "127.0.0.2") // loopback, but not the bound address
		}
		for _, host := range others {
			if c, err := net.DialTimeout("tcp", addr(host), time.Second); err == nil {
				c.Close()
				t.Errorf("the callback server accepted a connection on %s", host)
			}
		}
		if c, err := net.DialTimeout("tcp", addr("127.0.0.1"), time.Second); err != nil {
			t.Errorf("the callback server refused 127.0.0.1: %v", err)
		} else {
			c.Close()
		}
		b.open(u)
	}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if host, _, _ := net.SplitHostPort(res.Addr); host != "127.0.0.1" {
		t.Errorf("listened on %s, want 127.0.0.1", res.Addr)
	}
}

func TestLoginPortFallback(t *testing.T) {
	t.Parallel()
	taken := occupy(t)
	free := freePorts(t, 1)[0]
	ports := []int{taken, free}
	h := newHydra(t, ports)
	cfg := h.config(ports)
	cfg.Ready = newBrowser(t).open
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got, want := res.RedirectURI, "http://localhost:"+strconv.Itoa(free)+"/callback"; got != want {
		t.Errorf("RedirectURI = %q, want %q (port %d is taken)", got, want, taken)
	}
}

func TestLoginNoFreePort(t *testing.T) {
	t.Parallel()
	ports := []int{occupy(t), occupy(t)}
	cfg := newHydra(t, ports).config(ports)
	cfg.Ready = func(string) { t.Error("Ready called without a listener") }
	_, err := Run(context.Background(), cfg)
	if !errors.Is(err, ErrNoFreePort) {
		t.Fatalf("Run error = %v, want ErrNoFreePort", err)
	}
	for _, p := range ports {
		if !strings.Contains(err.Error(), strconv.Itoa(p)) {
			t.Errorf("error %q does not name port %d", err, p)
		}
	}
}

func TestLoginCancelled(t *testing.T) {
	t.Parallel()
	ports := freePorts(t, 1)
	cfg := newHydra(t, ports).config(ports)
	ctx, cancel := context.WithCancel(context.Background())
	cfg.Ready = func(string) { cancel() }
	if _, err := Run(ctx, cfg); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run error = %v, want context.Canceled", err)
	}
}

func TestCallbackServer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, method, target string
		want                 int
	}{
		{"other path", http.MethodGet, "/favicon.ico", http.StatusNotFound},
		{"post", http.MethodPost, "/callback?state=s3cr3t-state&code=c", http.StatusMethodNotAllowed},
		{"accepted", http.MethodGet, "/callback?state=s3cr3t-state&code=c", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cb := &callback{state: "s3cr3t-state", done: make(chan outcome, 1), notice: func(string) {}}
			rec := httptest.NewRecorder()
			cb.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
			if got := rec.Code; got != tt.want {
				t.Errorf("status = %d, want %d", got, tt.want)
			}
			for _, h := range []string{"Cache-Control", "Referrer-Policy", "Content-Security-Policy", "X-Content-Type-Options"} {
				if rec.Header().Get(h) == "" {
					t.Errorf("header %s missing", h)
				}
			}
			if tt.want == http.StatusOK {
				// A second callback is not accepted.
				rec := httptest.NewRecorder()
				cb.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.target, nil))
				if got, want := rec.Code, http.StatusConflict; got != want {
					t.Errorf("second callback status = %d, want %d", got, want)
				}
			}
		})
	}
}

func TestPKCE(t *testing.T) {
	t.Parallel()
	// RFC 7636 appendix B.
	if got, want := S256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; got != want {
		t.Errorf("S256 = %q, want %q", got, want)
	}
	p, err := NewPKCE(strings.NewReader(strings.Repeat("\x13", 32)))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(p.Verifier), 43; got != want {
		t.Errorf("verifier length = %d, want %d", got, want)
	}
	if got, want := p.Challenge, S256(p.Verifier); got != want {
		t.Errorf("challenge = %q, want %q", got, want)
	}
	if _, err := NewPKCE(strings.NewReader("short")); err == nil {
		t.Error("NewPKCE accepted too little randomness")
	}
}

func TestDefaultPorts(t *testing.T) {
	t.Parallel()
	p := DefaultPorts()
	if got, want := len(p), 11; got != want || p[0] != 13222 || p[len(p)-1] != 13232 {
		t.Errorf("DefaultPorts = %v, want 13222..13232", p)
	}
}

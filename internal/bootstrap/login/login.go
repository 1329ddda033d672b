// Package login runs the OAuth 2.0 authorization-code flow with PKCE (S256)
// against an Ory Hydra authorization server, the way the Amplitude wizard
// does, but for a chain that only CI will use: the tokens are returned to
// the caller and never written anywhere.
//
// The redirect URI is http://localhost:{port}/callback on the first free
// port of the range the Amplitude OAuth clients allow (13222..13232). The
// callback server listens on 127.0.0.1 only, compares state in constant
// time, accepts one valid callback and shuts down.
package login

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
)

// Defaults.
const (
	FirstPort      = 13222
	LastPort       = 13232
	CallbackPath   = "/callback"
	DefaultScope   = "openid offline"
	DefaultTimeout = 5 * time.Minute
	// DefaultRedirectHost is the host of the redirect URI the Amplitude
	// clients register (http://localhost:{port}/callback).
	DefaultRedirectHost = "localhost"
)

// DefaultPorts is FirstPort..LastPort.
func DefaultPorts() []int {
	ports := make([]int, 0, LastPort-FirstPort+1)
	for p := FirstPort; p <= LastPort; p++ {
		ports = append(ports, p)
	}
	return ports
}

// Errors of the browser side of the flow. Token endpoint failures are the
// typed errors of package oauth, wrapped in an *ExchangeError.
var (
	ErrNoFreePort    = errors.New("no free port for the callback server")
	ErrTimeout       = errors.New("timed out waiting for the browser to come back")
	ErrNoCode        = errors.New("the authorization server redirected back without a code")
	ErrStateMismatch = errors.New("the callback's state does not match this login")
)

// DeniedError is an error the authorization server sent back to the
// redirect URI (error=access_denied when the user refused consent).
type DeniedError struct {
	Code        string
	Description string
}

func (e *DeniedError) Error() string {
	msg := "the authorization server refused the login: " + e.Code
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// ExchangeError is a failed code exchange at the token endpoint.
type ExchangeError struct{ Err error }

func (e *ExchangeError) Error() string {
	return "failed to exchange the authorization code: " + e.Err.Error()
}
func (e *ExchangeError) Unwrap() error { return e.Err }

// Config is one login.
type Config struct {
	// AuthURL is the authorization endpoint ({host}/oauth2/auth).
	AuthURL string
	// Exchange exchanges the code at the token endpoint (TokenURL and
	// ClientID set).
	Exchange *oauth.Client
	// ClientID is sent to the authorization endpoint (normally the same
	// as Exchange.ClientID).
	ClientID string
	// Scope is requested (DefaultScope when empty).
	Scope string
	// Ports are tried in order (DefaultPorts when empty).
	Ports []int
	// RedirectHost is the host of the redirect URI: "localhost" (default)
	// or "127.0.0.1". The server listens on 127.0.0.1 either way.
	RedirectHost string
	// Timeout bounds the wait for the browser (DefaultTimeout when 0).
	Timeout time.Duration
	// Rand is the randomness for the verifier and state (crypto/rand when
	// nil).
	Rand io.Reader
	// Listen opens the callback listener (net.Listen when nil).
	Listen func(network, address string) (net.Listener, error)

	// Ready is called with the authorization URL once the callback server
	// listens; it prints the URL and opens the browser. Its error is not
	// fatal (the URL was printed).
	Ready func(authURL string)
	// Notice reports events worth a line (a refused callback, ...).
	Notice func(msg string)
}

// Result is a completed login.
type Result struct {
	Token       *oauth.Token
	RedirectURI string
	// Addr is the address the callback server listened on.
	Addr string
}

// PKCE is a code verifier with its S256 challenge.
type PKCE struct {
	Verifier  string
	Challenge string
}

// NewPKCE makes a verifier of 32 random bytes (43 base64url characters) and
// its S256 challenge (RFC 7636).
func NewPKCE(r io.Reader) (PKCE, error) {
	v, err := randomString(r)
	if err != nil {
		return PKCE{}, err
	}
	return PKCE{Verifier: v, Challenge: S256(v)}, nil
}

// S256 is the code challenge of a verifier.
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func randomString(r io.Reader) (string, error) {
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, 32)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("failed to read randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// AuthorizationURL builds the authorization request.
func AuthorizationURL(authURL, clientID, redirectURI, scope, state string, p PKCE) (string, error) {
	u, err := url.Parse(authURL)
	if err != nil {
		return "", fmt.Errorf("bad authorization URL: %w", err)
	}
	q := u.Query()
	q.Set("client_id", clientID)
	q.Set("redirect_uri", redirectURI)
	q.Set("response_type", "code")
	q.Set("code_challenge", p.Challenge)
	q.Set("code_challenge_method", "S256")
	q.Set("scope", scope)
	q.Set("state", state)
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// Run performs one login: listen, hand the URL to Ready, wait for the
// callback, exchange the code.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Exchange == nil {
		return nil, errors.New("login: no token endpoint configured")
	}
	host := cfg.RedirectHost
	if host == "" {
		host = DefaultRedirectHost
	}
	if host != "localhost" && host != "127.0.0.1" {
		return nil, fmt.Errorf("login: redirect host %q: want localhost or 127.0.0.1", host)
	}
	scope := cfg.Scope
	if scope == "" {
		scope = DefaultScope
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	notice := cfg.Notice
	if notice == nil {
		notice = func(string) {}
	}

	pkce, err := NewPKCE(cfg.Rand)
	if err != nil {
		return nil, err
	}
	state, err := randomString(cfg.Rand)
	if err != nil {
		return nil, err
	}

	ln, port, err := listen(cfg, host)
	if err != nil {
		return nil, err
	}
	redirectURI := "http://" + net.JoinHostPort(host, strconv.Itoa(port)) + CallbackPath
	authURL, err := AuthorizationURL(cfg.AuthURL, cfg.ClientID, redirectURI, scope, state, pkce)
	if err != nil {
		ln.Close()
		return nil, err
	}

	cb := &callback{state: state, done: make(chan outcome, 1), notice: notice}
	srv := &http.Server{
		Handler:           cb,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		MaxHeaderBytes:    64 << 10,
	}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(ln)
	}()
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if srv.Shutdown(sctx) != nil {
			srv.Close()
		}
		<-served
	}()

	if cfg.Ready != nil {
		cfg.Ready(authURL)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var got outcome
	select {
	case got = <-cb.done:
	case <-timer.C:
		return nil, fmt.Errorf("%w (%s)", ErrTimeout, timeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if got.err != nil {
		return nil, got.err
	}
	tok, err := cfg.Exchange.ExchangeCode(ctx, got.code, pkce.Verifier, redirectURI)
	if err != nil {
		return nil, &ExchangeError{Err: err}
	}
	return &Result{Token: tok, RedirectURI: redirectURI, Addr: ln.Addr().String()}, nil
}

// listen binds 127.0.0.1 on the first usable port. With a "localhost"
// redirect the browser may try ::1 first: a port that another program
// holds on [::1] is skipped too, so the code cannot reach it.
func listen(cfg Config, host string) (net.Listener, int, error) {
	listenFn := cfg.Listen
	if listenFn == nil {
		listenFn = net.Listen
	}
	ports := cfg.Ports
	if len(ports) == 0 {
		ports = DefaultPorts()
	}
	var errs []string
	for _, port := range ports {
		ln, err := listenFn("tcp4", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			errs = append(errs, fmt.Sprintf("%d: %v", port, shortErr(err)))
			continue
		}
		if host == "localhost" && ipv6Taken(port) {
			ln.Close()
			errs = append(errs, fmt.Sprintf("%d: in use on [::1]", port))
			continue
		}
		return ln, port, nil
	}
	return nil, 0, fmt.Errorf("%w: tried %s (%s)", ErrNoFreePort, describePorts(ports), strings.Join(errs, "; "))
}

// ipv6Taken reports whether another program listens on [::1]:port. A host
// without IPv6 has nothing there.
func ipv6Taken(port int) bool {
	ln, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	if err == nil {
		ln.Close()
		return false
	}
	return errors.Is(err, syscall.EADDRINUSE)
}

func shortErr(err error) error {
	if errors.Is(err, syscall.EADDRINUSE) {
		return errors.New("in use")
	}
	return err
}

func describePorts(ports []int) string {
	if len(ports) > 2 {
		contiguous := true
		for i := 1; i < len(ports); i++ {
			if ports[i] != ports[i-1]+1 {
				contiguous = false
			}
		}
		if contiguous {
			return fmt.Sprintf("ports %d..%d", ports[0], ports[len(ports)-1])
		}
	}
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return "ports " + strings.Join(s, ", ")
}

type outcome struct {
	code string
	err  error
}

// callback serves /callback: one accepted answer, then every request is
// told the login is over.
type callback struct {
	state  string
	notice func(string)

	mu       sync.Mutex
	finished bool
	done     chan outcome
}

func (c *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	if r.URL.Path != CallbackPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		h.Set("Allow", http.MethodGet)
		page(w, http.StatusMethodNotAllowed, "Method not allowed", "The callback only accepts GET.")
		return
	}
	q := r.URL.Query()
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(c.state)) != 1 {
		// A stale tab or a forged request: refuse it, keep waiting for
		// the real one.
		c.notice("refused a callback whose state does not match this login (a stale browser tab, or a request that did not come from this login); still waiting")
		page(w, http.StatusBadRequest, "Sign-in link not valid", "This sign-in link does not belong to the running bootstrap. Start again from the terminal.")
		return
	}
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		page(w, http.StatusConflict, "Already done", "This sign-in was already handled. You can close this tab.")
		return
	}
	c.finished = true
	c.mu.Unlock()

	switch code, e := q.Get("code"), q.Get("error"); {
	case e != "":
		c.done <- outcome{err: &DeniedError{Code: e, Description: q.Get("error_description")}}
		page(w, http.StatusOK, "Sign-in cancelled", "The authorization server answered "+e+". You can close this tab and return to the terminal.")
	case code == "":
		c.done <- outcome{err: ErrNoCode}
		page(w, http.StatusBadRequest, "Sign-in failed", "The authorization server came back without a code. Return to the terminal.")
	default:
		c.done <- outcome{code: code}
		page(w, http.StatusOK, "Signed in", "The bootstrap received the login. You can close this tab and return to the terminal.")
	}
}

func page(w http.ResponseWriter, status int, title, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>%[1]s · wizard-oauth-refresh</title>
<style>body{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem auto;padding:0 1rem;color:#1a1a2e}h1{font-size:1.3rem}p{color:#555;line-height:1.5}</style>
</head><body><h1>%[1]s</h1><p>%[2]s</p></body></html>
`, html.EscapeString(title), html.EscapeString(msg))
}

package hydraemu

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	clientID    = "wizard-cli"
	redirectURI = "http://127.0.0.1/callback"
	verifier    = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-0123456789"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type env struct {
	s     *Server
	ts    *httptest.Server
	clock *fakeClock
}

func newEnv(t *testing.T, opts ...Option) *env {
	t.Helper()
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	s := New(append([]Option{WithClock(clock.Now)}, opts...)...)
	s.AddClient(Client{ID: clientID, Public: true, RedirectURIs: []string{redirectURI}})
	s.AddClient(Client{ID: "other-client", Public: true, RedirectURIs: []string{redirectURI}})
	s.AddClient(Client{ID: "static-client", Public: true, DisableRotation: true})
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return &env{s: s, ts: ts, clock: clock}
}

type response struct {
	status int
	header http.Header
	raw    string
	json   map[string]any
}

func (e *env) post(t *testing.T, path, contentType, body string) response {
	t.Helper()
	res, err := e.ts.Client().Post(e.ts.URL+path, contentType, strings.NewReader(body))
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	r := response{status: res.StatusCode, header: res.Header, raw: string(raw)}
	_ = json.Unmarshal(raw, &r.json)
	return r
}

func (e *env) form(t *testing.T, path string, v url.Values) response {
	t.Helper()
	return e.post(t, path, "application/x-www-form-urlencoded", v.Encode())
}

func (e *env) refresh(t *testing.T, client, rt string) response {
	t.Helper()
	return e.form(t, PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {client}})
}

func wantError(t *testing.T, got response, want *OAuthError) {
	t.Helper()
	if got.status != want.Status || got.raw != string(want.Body()) {
		t.Errorf("got %d %s, want %d %s", got.status, got.raw, want.Status, want.Body())
	}
}

var tokenFormat = regexp.MustCompile(`^ory_(at|rt|ac)_[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}$`)

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	first := e.s.IssueChain(clientID)
	got := e.refresh(t, clientID, first.RefreshToken)
	if got.status != http.StatusOK {
		t.Fatalf("status = %d, body %s", got.status, got.raw)
	}
	for k, want := range map[string]string{"Content-Type": "application/json;charset=UTF-8", "Cache-Control": "no-store", "Pragma": "no-cache"} {
		if g := got.header.Get(k); g != want {
			t.Errorf("%s = %q, want %q", k, g, want)
		}
	}
	var keys []string
	for k := range got.json {
		keys = append(keys, k)
	}
	if want := 6; len(keys) != want {
		t.Errorf("keys = %v, want access_token expires_in id_token refresh_token scope token_type", keys)
	}
	if got.json["token_type"] != "bearer" || got.json["scope"] != "openid offline_access" || got.json["expires_in"] != 3600.0 {
		t.Errorf("body = %s", got.raw)
	}
	at, rt, idt := got.json["access_token"].(string), got.json["refresh_token"].(string), got.json["id_token"].(string)
	if !tokenFormat.MatchString(at) || !tokenFormat.MatchString(rt) || strings.Count(idt, ".") != 2 {
		t.Errorf("token formats: %q %q %q", at, rt, idt)
	}
	checks := []struct {
		name      string
		got, want bool
	}{
		{"old refresh token usable", e.s.RefreshTokenUsable(first.RefreshToken), false},
		{"new refresh token usable", e.s.RefreshTokenUsable(rt), true},
		{"old access token active", e.s.AccessTokenActive(first.AccessToken), false},
		{"new access token active", e.s.AccessTokenActive(at), true},
		{"same chain", e.s.ChainID(rt) == e.s.ChainID(at) && e.s.ChainID(rt) != "", true},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestRefreshErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		do        func(t *testing.T, e *env, chain Tokens) response
		want      *OAuthError
		wantAlive bool // is the chain's newest refresh token still usable afterwards
	}{
		{
			name: "reuse revokes the whole chain, including the token issued from the reused one",
			do: func(t *testing.T, e *env, chain Tokens) response {
				next := e.refresh(t, clientID, chain.RefreshToken)
				got := e.refresh(t, clientID, chain.RefreshToken)
				if e.s.RefreshTokenUsable(next.json["refresh_token"].(string)) || e.s.AccessTokenActive(next.json["access_token"].(string)) {
					t.Error("tokens issued from the reused token survived")
				}
				if again := e.refresh(t, clientID, next.json["refresh_token"].(string)); again.raw != string(ErrRefreshTokenInvalid.Body()) {
					t.Errorf("after revocation the child answers %s", again.raw)
				}
				return got
			},
			want: ErrRefreshTokenReused,
		},
		{
			name: "unknown token",
			do: func(t *testing.T, e *env, chain Tokens) response {
				return e.refresh(t, clientID, e.s.IssueChain("other-client").AccessToken)
			},
			want: ErrRefreshTokenInvalid, wantAlive: true,
		},
		{
			name: "malformed token",
			do:   func(t *testing.T, e *env, chain Tokens) response { return e.refresh(t, clientID, "garbage") },
			want: ErrRefreshTokenInvalid, wantAlive: true,
		},
		{
			name: "known signature with a forged key",
			do: func(t *testing.T, e *env, chain Tokens) response {
				sig := chain.RefreshToken[strings.Index(chain.RefreshToken, ".")+1:]
				return e.refresh(t, clientID, "ory_rt_"+strings.Repeat("A", 43)+"."+sig)
			},
			want: ErrRefreshTokenSignature, wantAlive: true,
		},
		{
			name: "expired",
			do: func(t *testing.T, e *env, chain Tokens) response {
				e.clock.Advance(DefaultRefreshTTL + time.Second)
				return e.refresh(t, clientID, chain.RefreshToken)
			},
			want: ErrRefreshTokenExpired,
		},
		{
			name: "token of another client",
			do: func(t *testing.T, e *env, chain Tokens) response {
				return e.refresh(t, "other-client", chain.RefreshToken)
			},
			want: ErrRefreshClientMismatch, wantAlive: true,
		},
		{
			name: "unknown client",
			do:   func(t *testing.T, e *env, chain Tokens) response { return e.refresh(t, "nobody", chain.RefreshToken) },
			want: ErrUnknownClient, wantAlive: true,
		},
		{
			name: "missing client_id",
			do: func(t *testing.T, e *env, chain Tokens) response {
				return e.form(t, PathToken, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {chain.RefreshToken}})
			},
			want: ErrMissingClientID, wantAlive: true,
		},
		{
			name: "missing grant_type",
			do: func(t *testing.T, e *env, chain Tokens) response {
				return e.form(t, PathToken, url.Values{"refresh_token": {chain.RefreshToken}, "client_id": {clientID}})
			},
			want: ErrMissingGrantType, wantAlive: true,
		},
		{
			name: "unsupported grant_type",
			do: func(t *testing.T, e *env, chain Tokens) response {
				return e.form(t, PathToken, url.Values{"grant_type": {"password"}, "client_id": {clientID}})
			},
			want: ErrUnsupportedGrantType, wantAlive: true,
		},
		{
			name: "JSON body",
			do: func(t *testing.T, e *env, chain Tokens) response {
				return e.post(t, PathToken, "application/json", `{"grant_type":"refresh_token"}`)
			},
			want: ErrEmptyBody, wantAlive: true,
		},
		{
			name: "grant without offline scope",
			do: func(t *testing.T, e *env, chain Tokens) response {
				e.s.mu.Lock()
				for _, g := range e.s.grants {
					g.scopes = []string{"openid"}
				}
				e.s.mu.Unlock()
				return e.refresh(t, clientID, chain.RefreshToken)
			},
			want: ErrRefreshScopeNotGranted,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			chain := e.s.IssueChain(clientID)
			wantError(t, tt.do(t, e, chain), tt.want)
			if got := e.s.RefreshTokenUsable(chain.RefreshToken); got != tt.wantAlive {
				t.Errorf("chain usable afterwards = %v, want %v", got, tt.wantAlive)
			}
		})
	}
}

func TestGracePeriod(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithGracePeriod(time.Hour)) // capped to 5m like Hydra
	rt1 := e.s.IssueChain(clientID).RefreshToken
	r2 := e.refresh(t, clientID, rt1)
	e.clock.Advance(4 * time.Minute)
	r3 := e.refresh(t, clientID, rt1) // reuse within grace: a fresh pair
	if r2.status != 200 || r3.status != 200 {
		t.Fatalf("statuses %d %d: %s", r2.status, r3.status, r3.raw)
	}
	rt2, rt3 := r2.json["refresh_token"].(string), r3.json["refresh_token"].(string)
	if rt2 == rt3 || !e.s.RefreshTokenUsable(rt2) || !e.s.RefreshTokenUsable(rt3) || !e.s.AccessTokenActive(r2.json["access_token"].(string)) {
		t.Fatal("within the grace period both children and the sibling access token must stay valid")
	}
	e.clock.Advance(90 * time.Second) // 5m30s after first use; the second use did not extend the window
	wantError(t, e.refresh(t, clientID, rt1), ErrRefreshTokenReused)
	for _, rt := range []string{rt2, rt3} {
		if e.s.RefreshTokenUsable(rt) {
			t.Error("reuse after the grace period must revoke every child")
		}
	}
}

func TestNonRotatingClient(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rt := e.s.IssueChain("static-client").RefreshToken
	for i := range 3 {
		got := e.refresh(t, "static-client", rt)
		if _, has := got.json["refresh_token"]; got.status != 200 || has {
			t.Fatalf("refresh %d: %d %s", i, got.status, got.raw)
		}
	}
	if !e.s.RefreshTokenUsable(rt) {
		t.Error("the refresh token of a non-rotating client must stay valid")
	}
}

// withHold makes every refresh call hold between validation and commit.
func withHold(hold func()) Option { return func(c *config) { c.afterValidate = hold } }

// pair is the tokens of one 200 answer.
type pair struct{ at, rt string }

func tokensOf(t *testing.T, r response) pair {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("want 200, got %d %s", r.status, r.raw)
	}
	return pair{at: r.json["access_token"].(string), rt: r.json["refresh_token"].(string)}
}

func (e *env) alive(p pair) bool { return e.s.RefreshTokenUsable(p.rt) && e.s.AccessTokenActive(p.at) }
func (e *env) dead(p pair) bool  { return !e.s.RefreshTokenUsable(p.rt) && !e.s.AccessTokenActive(p.at) }

// TestConcurrentRefresh overlaps two refreshes of one token deterministically:
// A and B both validate, then A commits, then B commits.
func TestConcurrentRefresh(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []Option
		wantB *OAuthError // nil: 200
	}{
		{name: "default: both succeed, the later commit wins"},
		{name: "both succeed", opts: []Option{WithConcurrentRefresh(ConcurrentRefreshBothSucceed)}},
		{name: "invalid_request", opts: []Option{WithConcurrentRefresh(ConcurrentRefreshInvalidRequest)}, wantB: ErrRefreshConcurrent},
		{name: "server_error", opts: []Option{WithConcurrentRefresh(ConcurrentRefreshServerError)}, wantB: ErrServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			held := make(chan chan struct{})
			e := newEnv(t, append(tt.opts, withHold(func() {
				release := make(chan struct{})
				select { // the timeouts only keep a failed test from hanging
				case held <- release:
					select {
					case <-release:
					case <-time.After(10 * time.Second):
					}
				case <-time.After(10 * time.Second):
				}
			}))...)
			rt0 := e.s.IssueChain(clientID)
			refresh := func() <-chan response {
				ch := make(chan response, 1)
				go func() { ch <- e.refresh(t, clientID, rt0.RefreshToken) }()
				return ch
			}
			doneA := refresh()
			releaseA := <-held // A validated
			doneB := refresh()
			releaseB := <-held // B validated, before A committed
			close(releaseA)
			a := tokensOf(t, <-doneA)
			if !e.alive(a) {
				t.Fatal("A's tokens must be valid right after A committed")
			}
			close(releaseB)
			resB := <-doneB

			if e.s.RefreshTokenUsable(rt0.RefreshToken) || e.s.AccessTokenActive(rt0.AccessToken) {
				t.Error("the presented pair must be spent")
			}
			if tt.wantB != nil {
				wantError(t, resB, tt.wantB)
				if ct := resB.header.Get("Content-Type"); ct != "application/json;charset=UTF-8" {
					t.Errorf("Content-Type = %q", ct)
				}
				if !e.alive(a) {
					t.Fatal("the loser must not consume or revoke anything: A's tokens must stay valid")
				}
				// Retrying with the same token is reuse and kills the chain (scenario 3).
				wantError(t, e.refresh(t, clientID, rt0.RefreshToken), ErrRefreshTokenReused)
				if !e.dead(a) {
					t.Error("a retry after the lost race must revoke the chain")
				}
				return
			}
			b := tokensOf(t, resB)
			if a == b {
				t.Fatal("both answers carry the same tokens")
			}
			if !e.dead(a) {
				t.Error("the later commit must deactivate the pair the earlier one was given")
			}
			if !e.alive(b) {
				t.Fatal("the later-committed pair must be valid")
			}
			// Keeping the wrong one and refreshing with it is reuse: the chain dies.
			wantError(t, e.refresh(t, clientID, a.rt), ErrRefreshTokenReused)
			if !e.dead(b) {
				t.Error("reusing the earlier winner's refresh token must revoke the survivor too")
			}
		})
	}
}

// TestConcurrentRefreshAfterCommit: a refresh that validates only after
// another one committed is reuse, whatever the mode: the 200 + 400 outcome,
// where the winner holds tokens that are already revoked.
func TestConcurrentRefreshAfterCommit(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		mode ConcurrentRefresh
	}{
		{"both succeed", ConcurrentRefreshBothSucceed},
		{"invalid_request", ConcurrentRefreshInvalidRequest},
		{"server_error", ConcurrentRefreshServerError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, WithConcurrentRefresh(tt.mode))
			rt0 := e.s.IssueChain(clientID).RefreshToken
			a := tokensOf(t, e.refresh(t, clientID, rt0))
			wantError(t, e.refresh(t, clientID, rt0), ErrRefreshTokenReused)
			if !e.dead(a) {
				t.Error("reuse must revoke the winner's fresh tokens")
			}
		})
	}
}

// TestConcurrentRefreshRacing lets n requests race through the HTTP server
// and checks the invariants measured against real Hydra at grace 0: at least
// one 200, at most one minted refresh token usable, and only known answers.
func TestConcurrentRefreshRacing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		opts      []Option
		loser     *OAuthError // the answer of an overlapping loser; nil: 200
		wantAlive bool        // all requests overlap, so the chain survives
	}{
		{name: "default, racing freely"},
		{name: "default, overlapping transactions", opts: []Option{WithCommitDelay(100 * time.Millisecond)}, wantAlive: true},
		{name: "invalid_request, racing freely", opts: []Option{WithConcurrentRefresh(ConcurrentRefreshInvalidRequest)}, loser: ErrRefreshConcurrent},
		{name: "invalid_request, overlapping transactions", loser: ErrRefreshConcurrent, wantAlive: true,
			opts: []Option{WithConcurrentRefresh(ConcurrentRefreshInvalidRequest), WithCommitDelay(100 * time.Millisecond)}},
		{name: "server_error, racing freely", opts: []Option{WithConcurrentRefresh(ConcurrentRefreshServerError)}, loser: ErrServerError},
		{name: "server_error, overlapping transactions", loser: ErrServerError, wantAlive: true,
			opts: []Option{WithConcurrentRefresh(ConcurrentRefreshServerError), WithCommitDelay(100 * time.Millisecond)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tt.opts...)
			rt := e.s.IssueChain(clientID).RefreshToken
			const n = 8
			results := make([]response, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { results[i] = e.refresh(t, clientID, rt) })
			}
			wg.Wait()
			var minted []string
			for _, r := range results {
				switch {
				case r.status == 200:
					minted = append(minted, r.json["refresh_token"].(string))
				case tt.loser != nil && r.raw == string(tt.loser.Body()):
				case r.raw == string(ErrRefreshTokenReused.Body()), r.raw == string(ErrRefreshTokenInvalid.Body()),
					r.raw == string(ErrRefreshConcurrent.Body()): // validated, then the chain was revoked by reuse
					if tt.wantAlive {
						t.Errorf("overlapping loser got %d %s", r.status, r.raw)
					}
				default:
					t.Errorf("loser got %d %s", r.status, r.raw)
				}
			}
			if len(minted) == 0 {
				t.Fatal("no request succeeded")
			}
			if tt.loser != nil && tt.wantAlive && len(minted) != 1 {
				t.Errorf("%d winners, want exactly 1", len(minted))
			}
			usable := 0
			for _, m := range minted {
				if e.s.RefreshTokenUsable(m) {
					usable++
				}
			}
			if usable > 1 || (tt.wantAlive && usable != 1) {
				t.Errorf("%d of %d minted refresh tokens usable, want %s", usable, len(minted), map[bool]string{true: "exactly 1", false: "at most 1"}[tt.wantAlive])
			}
		})
	}
}

// authorize runs /oauth2/auth without following the redirect.
func (e *env) authorize(t *testing.T, q url.Values) (int, *url.URL) {
	t.Helper()
	c := *e.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := c.Get(e.ts.URL + PathAuth + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc, _ := url.Parse(res.Header.Get("Location"))
	return res.StatusCode, loc
}

func authQuery(mod func(url.Values)) url.Values {
	sum := sha256.Sum256([]byte(verifier))
	q := url.Values{
		"client_id": {clientID}, "redirect_uri": {"http://127.0.0.1:49152/callback"}, "response_type": {"code"},
		"scope": {"openid offline_access"}, "state": {"state-1234"},
		"code_challenge": {b64.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if mod != nil {
		mod(q)
	}
	return q
}

func (e *env) exchange(t *testing.T, code, redirect, verifier string) response {
	t.Helper()
	return e.form(t, PathToken, url.Values{"grant_type": {"authorization_code"}, "code": {code},
		"redirect_uri": {redirect}, "client_id": {clientID}, "code_verifier": {verifier}})
}

func TestAuthorizationCodeWithPKCE(t *testing.T) {
	t.Parallel()
	loopback := "http://127.0.0.1:49152/callback"
	tests := []struct {
		name string
		do   func(t *testing.T, e *env, code string) response
		want *OAuthError // nil: 200 with tokens
	}{
		{name: "happy path", do: func(t *testing.T, e *env, code string) response { return e.exchange(t, code, loopback, verifier) }},
		{
			name: "wrong verifier, then the right one",
			do: func(t *testing.T, e *env, code string) response {
				wantError(t, e.exchange(t, code, loopback, strings.Repeat("x", 43)), ErrPKCEMismatch)
				return e.exchange(t, code, loopback, verifier)
			},
			want: ErrPKCESessionMissing,
		},
		{name: "short verifier", do: func(t *testing.T, e *env, code string) response { return e.exchange(t, code, loopback, "abc") }, want: ErrPKCEVerifierTooShort},
		{name: "missing verifier", do: func(t *testing.T, e *env, code string) response { return e.exchange(t, code, loopback, "") }, want: ErrPKCEVerifierTooShort},
		{name: "other redirect_uri", do: func(t *testing.T, e *env, code string) response { return e.exchange(t, code, redirectURI, verifier) }, want: ErrAuthCodeRedirectMismatch},
		{name: "unknown code", do: func(t *testing.T, e *env, code string) response { return e.exchange(t, code+"x", loopback, verifier) }, want: ErrAuthCodeInvalid},
		{
			name: "expired code",
			do: func(t *testing.T, e *env, code string) response {
				e.clock.Advance(11 * time.Minute)
				return e.exchange(t, code, loopback, verifier)
			},
			want: ErrAuthCodeInvalid,
		},
		{
			name: "reused code revokes the tokens issued from it",
			do: func(t *testing.T, e *env, code string) response {
				first := e.exchange(t, code, loopback, verifier)
				got := e.exchange(t, code, loopback, verifier)
				if e.s.RefreshTokenUsable(first.json["refresh_token"].(string)) || e.s.AccessTokenActive(first.json["access_token"].(string)) {
					t.Error("tokens of a reused code survived")
				}
				return got
			},
			want: ErrAuthCodeReused,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			status, loc := e.authorize(t, authQuery(nil))
			q := loc.Query()
			if status != http.StatusSeeOther || q.Get("state") != "state-1234" || q.Get("scope") != "openid offline_access" ||
				!tokenFormat.MatchString(q.Get("code")) || loc.Host != "127.0.0.1:49152" {
				t.Fatalf("authorize: %d %s", status, loc)
			}
			got := tt.do(t, e, q.Get("code"))
			if tt.want != nil {
				wantError(t, got, tt.want)
				return
			}
			if got.status != 200 || !tokenFormat.MatchString(got.json["refresh_token"].(string)) || got.json["id_token"] == nil {
				t.Errorf("exchange: %d %s", got.status, got.raw)
			}
		})
	}
}

func TestAuthorizeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		mod        func(url.Values)
		deny       bool
		wantStatus int
		wantPath   string // where the error is sent
		want       *OAuthError
	}{
		{name: "unknown client", mod: func(q url.Values) { q.Set("client_id", "nobody") }, wantStatus: 302, wantPath: PathErrorPage, want: ErrAuthorizeUnknownClient},
		{name: "unregistered redirect", mod: func(q url.Values) { q.Set("redirect_uri", "http://evil.example/callback") }, wantStatus: 302, wantPath: PathErrorPage, want: ErrRedirectURINotRegistered},
		{name: "localhost is no loopback literal", mod: func(q url.Values) { q.Set("redirect_uri", "http://localhost:8080/callback") }, wantStatus: 302, wantPath: PathErrorPage, want: ErrRedirectURINotRegistered},
		{name: "missing redirect with openid", mod: func(q url.Values) { q.Del("redirect_uri") }, wantStatus: 302, wantPath: PathErrorPage, want: ErrRedirectURIRequired},
		{name: "short state", mod: func(q url.Values) { q.Set("state", "1234567") }, wantStatus: 303, wantPath: "/callback", want: ErrStateTooShort},
		{name: "scope not allowed", mod: func(q url.Values) { q.Set("scope", "openid admin") }, wantStatus: 303, wantPath: "/callback", want: errScopeNotAllowed("admin")},
		{name: "token response type", mod: func(q url.Values) { q.Set("response_type", "token") }, wantStatus: 303, wantPath: "/callback", want: errResponseTypeNotAllowed("token")},
		{name: "no PKCE from a public client", mod: func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, wantStatus: 303, wantPath: "/callback", want: ErrPKCERequiredPublic},
		{name: "plain PKCE", mod: func(q url.Values) { q.Set("code_challenge_method", "plain") }, wantStatus: 303, wantPath: "/callback", want: ErrPKCEPlain},
		{name: "consent denied", deny: true, wantStatus: 303, wantPath: "/callback", want: ErrAccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.s.DenyAuthorization(tt.deny)
			sent := authQuery(tt.mod)
			status, loc := e.authorize(t, sent)
			q := loc.Query()
			if status != tt.wantStatus || loc.Path != tt.wantPath || q.Get("error") != tt.want.Code || q.Get("error_description") != tt.want.Description {
				t.Errorf("got %d %s, want %d %s error=%s (%s)", status, loc, tt.wantStatus, tt.wantPath, tt.want.Code, tt.want.Description)
			}
			if tt.wantStatus == 303 && q.Get("state") != sent.Get("state") {
				t.Error("state not echoed")
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		fault        Fault
		clientTO     time.Duration
		wantStatus   int // 0: transport error
		wantConsumed bool
		wantLog      Request
	}{
		{
			name:       "status with headers and body, once",
			fault:      Fault{Endpoint: PathToken, Times: 1, Status: 503, Headers: map[string]string{"Retry-After": "1"}, Body: "upstream down", ContentType: "text/plain"},
			wantStatus: 503, wantLog: Request{Status: 503, Faulted: true},
		},
		{name: "delay only is a slow success", fault: Fault{Delay: 20 * time.Millisecond}, wantStatus: 200, wantConsumed: true, wantLog: Request{Status: 200, Faulted: true}},
		{name: "delay beyond the client timeout", fault: Fault{Delay: time.Second}, clientTO: 50 * time.Millisecond, wantLog: Request{Faulted: true}},
		{name: "drop before processing", fault: Fault{DropConnection: true}, wantLog: Request{Faulted: true, Dropped: true}},
		{name: "drop after processing", fault: Fault{DropConnection: true, AfterProcessing: true}, wantConsumed: true, wantLog: Request{Faulted: true, Dropped: true}},
		{name: "gateway error after processing", fault: Fault{Status: 502, AfterProcessing: true}, wantStatus: 502, wantConsumed: true, wantLog: Request{Status: 502, Faulted: true}},
		{name: "slow answer after processing", fault: Fault{Delay: time.Second, AfterProcessing: true}, clientTO: 50 * time.Millisecond, wantConsumed: true, wantLog: Request{Faulted: true}},
		{name: "redirect", fault: Fault{Redirect: "https://login.example/"}, wantStatus: 302, wantLog: Request{Status: 302, Faulted: true}},
		{name: "other endpoint", fault: Fault{Endpoint: PathIntrospect, Status: 500}, wantStatus: 200, wantConsumed: true, wantLog: Request{Status: 200}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			rt := e.s.IssueChain(clientID).RefreshToken
			e.s.Inject(tt.fault)
			c := &http.Client{Timeout: tt.clientTO, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {clientID}}
			res, err := c.PostForm(e.ts.URL+PathToken, form)
			status := 0
			if err == nil {
				status = res.StatusCode
				res.Body.Close()
			}
			if status != tt.wantStatus {
				t.Errorf("status = %d (err %v), want %d", status, err, tt.wantStatus)
			}
			// The server may still be sleeping; wait for the log entry.
			var log []Request
			for deadline := time.Now().Add(3 * time.Second); len(log) == 0 && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
				log = e.s.Requests()
			}
			if len(log) != 1 {
				t.Fatalf("log has %d entries", len(log))
			}
			got := log[0]
			if got.Status != tt.wantLog.Status || got.Faulted != tt.wantLog.Faulted || got.Dropped != tt.wantLog.Dropped ||
				got.TokenHash != Fingerprint(rt) || got.GrantType != "refresh_token" || got.ClientID != clientID {
				t.Errorf("log = %+v", got)
			}
			if strings.Contains(fmt.Sprintf("%+v", log), rt) {
				t.Error("the log contains the raw token")
			}
			if consumed := !e.s.RefreshTokenUsable(rt); consumed != tt.wantConsumed {
				t.Errorf("consumed = %v, want %v", consumed, tt.wantConsumed)
			}
			if tt.fault.Times == 1 {
				if again := e.refresh(t, clientID, rt); again.status != 200 {
					t.Errorf("after Times=1 the fault must be gone, got %d", again.status)
				}
			}
		})
	}
}

func TestIntrospection(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	chain := e.s.IssueChain(clientID)
	next := e.refresh(t, clientID, chain.RefreshToken)
	now := e.clock.Now()
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{
			name: "active access token",
			form: url.Values{"token": {next.json["access_token"].(string)}},
			want: fmt.Sprintf(`{"active":true,"scope":"openid offline_access","client_id":"%s","sub":"emulated-user","exp":%d,"iat":%d,"nbf":%d,"aud":[],"iss":"%s/","token_type":"Bearer","token_use":"access_token"}`,
				clientID, now.Add(time.Hour).Unix(), now.Unix(), now.Unix(), e.ts.URL),
		},
		{
			name: "active refresh token",
			form: url.Values{"token": {next.json["refresh_token"].(string)}},
			want: fmt.Sprintf(`{"active":true,"scope":"openid offline_access","client_id":"%s","sub":"emulated-user","exp":%d,"iat":%d,"nbf":%d,"aud":[],"iss":"%s/","token_type":"Bearer","token_use":"refresh_token"}`,
				clientID, now.Add(DefaultRefreshTTL).Unix(), now.Unix(), now.Unix(), e.ts.URL),
		},
		{name: "rotated-away access token", form: url.Values{"token": {chain.AccessToken}}, want: `{"active":false}`},
		{name: "used refresh token", form: url.Values{"token": {chain.RefreshToken}}, want: `{"active":false}`},
		{name: "scope not granted", form: url.Values{"token": {next.json["access_token"].(string)}, "scope": {"admin"}}, want: `{"active":false}`},
		{name: "garbage", form: url.Values{"token": {"nope"}}, want: `{"active":false}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := e.form(t, PathIntrospect, tt.form)
			if got.status != 200 || got.raw != tt.want+"\n" {
				t.Errorf("got %d %s\nwant %s", got.status, got.raw, tt.want)
			}
		})
	}
}

func TestHealthAndMethods(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	tests := []struct {
		name, method, path string
		wantStatus         int
		wantBody           string
	}{
		{"ready", http.MethodGet, PathHealth, 200, `{"status":"ok"}` + "\n"},
		{"introspect needs POST", http.MethodGet, PathIntrospect, 400, string(errMethodNotPost("GET").Body())},
		{"token needs POST", http.MethodGet, PathToken, 405, "Method Not Allowed\n"},
		{"unknown path", http.MethodGet, "/nope", 404, "404 page not found\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequestWithContext(context.Background(), tt.method, e.ts.URL+tt.path, nil)
			res, err := e.ts.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("got %d %q, want %d %q", res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
		})
	}
}

func TestIssueChainWithoutOfflineScope(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	if got := e.s.IssueChain(clientID, "openid"); got.RefreshToken != "" || got.IDToken == "" {
		t.Errorf("got %+v, want an access and ID token only", got)
	}
	defer func() {
		if recover() == nil {
			t.Error("IssueChain for an unknown client must panic")
		}
	}()
	e.s.IssueChain("nobody")
}

type counterReader struct{ n byte }

func (c *counterReader) Read(p []byte) (int, error) {
	for i := range p {
		c.n++
		p[i] = c.n
	}
	return len(p), nil
}

func TestOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []Option
		check func(t *testing.T, e *env)
	}{
		{
			name: "access TTL",
			opts: []Option{WithAccessTTL(10 * time.Minute)},
			check: func(t *testing.T, e *env) {
				tok := e.s.IssueChain(clientID)
				e.clock.Advance(11 * time.Minute)
				if tok.ExpiresIn != 600 || e.s.AccessTokenActive(tok.AccessToken) {
					t.Errorf("expires_in %d, active after expiry %v", tok.ExpiresIn, e.s.AccessTokenActive(tok.AccessToken))
				}
			},
		},
		{
			name: "refresh tokens that never expire",
			opts: []Option{WithRefreshTTL(-1)},
			check: func(t *testing.T, e *env) {
				tok := e.s.IssueChain(clientID)
				e.clock.Advance(100000 * time.Hour)
				if got := e.refresh(t, clientID, tok.RefreshToken); got.status != 200 {
					t.Errorf("got %d %s", got.status, got.raw)
				}
			},
		},
		{
			name: "no ID tokens",
			opts: []Option{WithIDTokens(false)},
			check: func(t *testing.T, e *env) {
				if tok := e.s.IssueChain(clientID); tok.IDToken != "" {
					t.Error("got an ID token")
				}
			},
		},
		{
			name: "deterministic randomness",
			opts: []Option{WithRand(&counterReader{})},
			check: func(t *testing.T, e *env) {
				other := New(WithClock(e.clock.Now), WithRand(&counterReader{}))
				other.AddClient(Client{ID: clientID, Public: true})
				if a, b := e.s.IssueChain(clientID).RefreshToken, other.IssueChain(clientID).RefreshToken; a != b {
					t.Errorf("%s != %s", a, b)
				}
			},
		},
		{
			name: "PKCE not enforced: a public client may skip it",
			opts: []Option{WithPKCE(false, false)},
			check: func(t *testing.T, e *env) {
				_, loc := e.authorize(t, authQuery(func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }))
				if got := e.exchange(t, loc.Query().Get("code"), "http://127.0.0.1:49152/callback", ""); got.status != 200 {
					t.Errorf("got %d %s", got.status, got.raw)
				}
			},
		},
		{
			name: "PKCE enforced for everyone",
			opts: []Option{WithPKCE(true, false)},
			check: func(t *testing.T, e *env) {
				e.s.AddClient(Client{ID: "backend", Secret: "s3cret", RedirectURIs: []string{"https://app.example/cb"}})
				_, loc := e.authorize(t, url.Values{"client_id": {"backend"}, "response_type": {"code"}, "state": {"12345678"}, "scope": {"offline"}})
				if loc.Query().Get("error_description") != ErrPKCERequired.Description {
					t.Errorf("got %s", loc)
				}
			},
		},
		{
			name: "issuer and subject",
			opts: []Option{WithIssuer("https://hydra.example"), WithSubject("user-42")},
			check: func(t *testing.T, e *env) {
				got := e.form(t, PathIntrospect, url.Values{"token": {e.s.IssueChain(clientID).AccessToken}})
				if got.json["iss"] != "https://hydra.example/" || got.json["sub"] != "user-42" {
					t.Errorf("got %s", got.raw)
				}
			},
		},
		{
			name: "revoke chain and clear faults",
			check: func(t *testing.T, e *env) {
				tok := e.s.IssueChain(clientID)
				e.s.Inject(Fault{Status: 500})
				e.s.ClearFaults()
				if !e.s.RevokeChain(tok.AccessToken) || e.s.RefreshTokenUsable(tok.RefreshToken) || e.s.RevokeChain("unknown") {
					t.Error("RevokeChain did not revoke the chain")
				}
				wantError(t, e.refresh(t, clientID, tok.RefreshToken), ErrRefreshTokenInvalid)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.check(t, newEnv(t, tt.opts...))
		})
	}
}

func TestIDTokenVerifiesAgainstJWKS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, WithIssuer("https://hydra.example/"))
	tok := e.s.IssueChain(clientID)
	res, err := e.ts.Client().Get(e.ts.URL + PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var set struct {
		Keys []struct{ N, E, Kid string }
	}
	if err := json.NewDecoder(res.Body).Decode(&set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("jwks: %v %+v", err, set)
	}
	n, _ := b64.DecodeString(set.Keys[0].N)
	pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537}
	parts := strings.Split(tok.IDToken, ".")
	sig, _ := b64.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig); err != nil {
		t.Fatalf("signature: %v", err)
	}
	var claims map[string]any
	payload, _ := b64.DecodeString(parts[1])
	_ = json.Unmarshal(payload, &claims)
	atHash := sha256.Sum256([]byte(tok.AccessToken))
	if claims["iss"] != "https://hydra.example/" || claims["sub"] != "emulated-user" || claims["at_hash"] != b64.EncodeToString(atHash[:16]) ||
		fmt.Sprint(claims["aud"]) != "["+clientID+"]" {
		t.Errorf("claims = %v", claims)
	}
}

func TestErrorPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	res, err := e.ts.Client().Get(e.ts.URL + PathErrorPage + "?error=invalid_client&error_description=%3Cb%3E")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 500 || !strings.Contains(string(body), "Error: invalid_client") || strings.Contains(string(body), "<b>") {
		t.Errorf("got %d %s", res.StatusCode, body)
	}
}

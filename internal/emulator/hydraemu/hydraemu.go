// Package hydraemu emulates the parts of Ory Hydra v2.3.0 (which embeds
// ory/fosite v0.49.0) that wizard-oauth-refresh talks to: the token endpoint
// (refresh_token and authorization_code + PKCE grants), the authorization
// endpoint (auto-approving login and consent), admin token introspection,
// health and JWKS.
//
// Behaviour follows the fosite/Hydra source and is quoted where it matters.
// In short, for the refresh_token grant:
//
//   - Every successful refresh rotates: a new access and refresh token are
//     issued and, with the default grace period of 0 (Hydra's
//     strictRefreshRotation), every other refresh token of the chain is
//     deactivated and every access token of the chain is deleted.
//   - Presenting a deactivated (used) refresh token is reuse: Hydra deletes
//     every access and refresh token with the same request ID, i.e. the whole
//     chain descended from the original authorization, and answers
//     invalid_grant "... The refresh token was already used.".
//   - With oauth2.grant.refresh_token.rotation_grace_period > 0 (capped at 5m)
//     a used refresh token stays usable until first use + grace; each use
//     yields a fresh pair, earlier children stay valid, only the access token
//     issued together with the presented refresh token is deleted.
//
// Concurrent refreshes of one token (grace period 0), as measured against
// Hydra v2.3.0 (test/realhydra/OBSERVATIONS.md, sections (c) and (j)): a
// refresh validates the token, then commits the rotation. A request that
// validates only after another one committed is reuse and kills the chain
// (the 200 + 400 outcome). Requests that both validated before either
// committed overlap; what the later committer gets is set by
// WithConcurrentRefresh:
//
//   - ConcurrentRefreshBothSucceed (default, Hydra on SQLite most of the
//     time): 200 for both, with different tokens. The later commit rotates
//     the chain again, which deactivates the pair the earlier one was just
//     given, so only the later-committed refresh token stays usable;
//     presenting the earlier one afterwards is reuse and kills the chain.
//   - ConcurrentRefreshServerError (Hydra on SQLite, database locked): 500
//     server_error; nothing is consumed or revoked, the earlier commit's pair
//     stays valid. Retrying with the same token is then reuse.
//   - ConcurrentRefreshInvalidRequest (Hydra on PostgreSQL/CockroachDB per
//     the source, never observed on SQLite): 400 invalid_request
//     "... Failed to refresh token. Please retry the request."; nothing is
//     revoked, the earlier commit's pair stays valid.
//
// WithCommitDelay widens the window between validation and commit, so
// concurrent requests overlap.
//
// A Server is an http.Handler and is safe for concurrent use. It serves the
// public and the admin API on one handler. It does not import testing, so it
// can back a local sandbox as well as unit tests.
package hydraemu

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"io"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Hydra v2.3.0 (ttl.access_token, ttl.refresh_token, ttl.id_token,
// ttl.auth_code) and the grace period cap (driver/config/provider.go:
// "if gracePeriod > time.Minute*5 { return time.Minute * 5 }").
const (
	DefaultAccessTTL  = time.Hour
	DefaultRefreshTTL = 720 * time.Hour
	idTokenTTL        = time.Hour
	authCodeTTL       = 10 * time.Minute
	maxGrace          = 5 * time.Minute
)

// Endpoint paths, usable as Fault.Endpoint.
const (
	PathToken      = "/oauth2/token"
	PathAuth       = "/oauth2/auth"
	PathIntrospect = "/admin/oauth2/introspect"
	PathHealth     = "/health/ready"
	PathAlive      = "/health/alive"
	PathErrorPage  = "/oauth2/fallbacks/error"
	PathJWKS       = "/.well-known/jwks.json"
)

// Client is a registered OAuth 2.0 client. Every client may use the
// authorization_code and refresh_token grants and response_type=code.
type Client struct {
	ID string
	// Public clients use token_endpoint_auth_method=none; others must send
	// Secret (HTTP Basic auth or client_secret in the body).
	Public bool
	Secret string
	// RedirectURIs are matched exactly; an http://127.0.0.1 or http://[::1]
	// entry also matches any port (RFC 8252 7.3, fosite isMatchingAsLoopback).
	// "localhost" gets no such exemption.
	RedirectURIs []string
	// Scopes the client may request; empty means "openid offline_access offline".
	Scopes []string
	// DisableRotation is an emulator extension for testing clients against a
	// server that does not rotate: a refresh answer carries no refresh_token and
	// the presented refresh token stays valid. Hydra v2.3.0 has no such setting.
	DisableRotation bool
}

func (c Client) allowsScope(scope string) bool {
	if len(c.Scopes) == 0 {
		return scope == "openid" || scope == "offline_access" || scope == "offline"
	}
	return slices.Contains(c.Scopes, scope)
}

// Tokens is what a successful token request returns.
type Tokens struct {
	AccessToken  string `json:"access_token"`
	ExpiresIn    int64  `json:"expires_in"`
	IDToken      string `json:"id_token,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
	TokenType    string `json:"token_type"`
}

// Option configures a Server.
type Option func(*config)

type config struct {
	clock                 func() time.Time
	accessTTL, refreshTTL time.Duration
	grace, commitDelay    time.Duration
	rand                  io.Reader
	idTokens              bool
	issuer, subject       string
	pkceAll, pkcePublic   bool
	concurrent            ConcurrentRefresh
	afterValidate         func() // test hook: called between validation and commit of a refresh
}

// WithClock sets the clock for issuing and expiring tokens and codes.
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithAccessTTL sets ttl.access_token (default 1h).
func WithAccessTTL(d time.Duration) Option { return func(c *config) { c.accessTTL = d } }

// WithRefreshTTL sets ttl.refresh_token (default 720h); negative: never expire.
func WithRefreshTTL(d time.Duration) Option { return func(c *config) { c.refreshTTL = d } }

// WithGracePeriod sets oauth2.grant.refresh_token.rotation_grace_period,
// capped at 5 minutes like Hydra v2.3.0.
func WithGracePeriod(d time.Duration) Option { return func(c *config) { c.grace = min(d, maxGrace) } }

// WithRand sets the randomness for tokens and IDs (default crypto/rand).
func WithRand(r io.Reader) Option { return func(c *config) { c.rand = r } }

// WithIDTokens sets whether an id_token is issued for the openid scope (default true).
func WithIDTokens(on bool) Option { return func(c *config) { c.idTokens = on } }

// WithIssuer sets the issuer URL (default "http://" + request Host + "/").
func WithIssuer(u string) Option {
	return func(c *config) { c.issuer = strings.TrimSuffix(u, "/") + "/" }
}

// WithSubject sets the subject of the user who "logs in" (default "emulated-user").
func WithSubject(sub string) Option { return func(c *config) { c.subject = sub } }

// WithPKCE sets oauth2.pkce.enforced and .enforced_for_public_clients. Hydra
// defaults both to false; the emulator defaults to (false, true).
func WithPKCE(all, public bool) Option {
	return func(c *config) { c.pkceAll, c.pkcePublic = all, public }
}

// WithCommitDelay holds each refresh between validation and rotation, like a
// slow transaction, so concurrent refreshes of one token overlap as in Hydra.
func WithCommitDelay(d time.Duration) Option { return func(c *config) { c.commitDelay = d } }

// ConcurrentRefresh is what the later of two overlapping refreshes of one
// refresh token gets at grace period 0 (see the package documentation).
type ConcurrentRefresh int

const (
	// ConcurrentRefreshBothSucceed: 200; the later commit wins and the pair
	// issued to the earlier one is deactivated. The default.
	ConcurrentRefreshBothSucceed ConcurrentRefresh = iota
	// ConcurrentRefreshInvalidRequest: 400 invalid_request
	// "... Failed to refresh token. Please retry the request." (ErrRefreshConcurrent).
	ConcurrentRefreshInvalidRequest
	// ConcurrentRefreshServerError: 500 server_error (ErrServerError).
	ConcurrentRefreshServerError
)

// WithConcurrentRefresh sets the outcome of overlapping refreshes of one
// refresh token at grace period 0 (default ConcurrentRefreshBothSucceed).
// It has no effect with a grace period or on non-rotating clients.
func WithConcurrentRefresh(m ConcurrentRefresh) Option {
	return func(c *config) { c.concurrent = m }
}

// Server is the emulator. Create it with New.
type Server struct {
	cfg     config
	hmacKey []byte
	randMu  sync.Mutex

	mu      sync.Mutex
	clients map[string]Client
	grants  map[string]*grant
	access  map[string]*accessRec  // by token signature
	refresh map[string]*refreshRec // by token signature
	codes   map[string]*codeRec    // by code signature
	deny    bool
	faults  []*Fault
	log     []Request
	seq     int
}

// grant is one authorization: Hydra's request ID, which every token that
// descends from it through refreshes keeps.
type grant struct {
	id, clientID, subject, nonce string
	scopes                       []string
	authTime                     time.Time
}

type accessRec struct {
	grantID             string
	issuedAt, expiresAt time.Time
}

type refreshRec struct {
	grantID                        string
	accessSig                      string // the access token issued with it
	active                         bool
	firstUsed, issuedAt, expiresAt time.Time
}

type codeRec struct {
	grantID, redirectURI string // redirectURI as sent to /oauth2/auth, may be ""
	challenge            string
	used, pkce           bool // pkce: the PKCE session still exists
	expiresAt            time.Time
}

// New returns an emulator with Hydra's default configuration and no clients.
func New(opts ...Option) *Server {
	s := &Server{
		cfg: config{
			clock: time.Now, accessTTL: DefaultAccessTTL, refreshTTL: DefaultRefreshTTL,
			rand: rand.Reader, idTokens: true, subject: "emulated-user", pkcePublic: true,
		},
		clients: map[string]Client{},
		grants:  map[string]*grant{},
		access:  map[string]*accessRec{},
		refresh: map[string]*refreshRec{},
		codes:   map[string]*codeRec{},
	}
	for _, o := range opts {
		o(&s.cfg)
	}
	s.hmacKey = s.random(32)
	return s
}

func (s *Server) now() time.Time { return s.cfg.clock() }

// AddClient registers or replaces a client.
func (s *Server) AddClient(c Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.Scopes = slices.Clone(c.Scopes)
	s.clients[c.ID] = c
}

// DenyAuthorization makes /oauth2/auth answer as if the user rejected consent
// (error=access_denied) until called again with false.
func (s *Server) DenyAuthorization(deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.deny = deny
}

// IssueChain mints tokens for a fresh grant of a registered client, as if the
// authorization code flow had just completed. Without scopes it grants
// "openid offline_access". Like Hydra, no refresh token is issued unless
// offline or offline_access is among the scopes. The ID token's issuer is
// "http://localhost/" unless WithIssuer is used. It panics for unknown clients.
func (s *Server) IssueChain(clientID string, scopes ...string) Tokens {
	if len(scopes) == 0 {
		scopes = []string{"openid", "offline_access"}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[clientID]; !ok {
		panic("hydraemu: IssueChain for unregistered client " + clientID)
	}
	now := s.now()
	g := &grant{id: s.newID(), clientID: clientID, subject: s.cfg.subject, scopes: slices.Clone(scopes), authTime: now}
	s.grants[g.id] = g
	return s.mintLocked(g, now, s.issuer(""), true)
}

// RefreshTokenUsable reports whether presenting rt at the token endpoint with
// its own client would succeed right now (ignoring injected faults).
func (s *Server) RefreshTokenUsable(rt string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.lookupRefreshLocked(rt)
	if rec == nil || !s.refreshActiveLocked(rec, s.now()) || expired(rec.expiresAt, s.now()) {
		return false
	}
	g := s.grants[rec.grantID]
	_, clientOK := s.clients[g.clientID]
	return clientOK && hasOffline(g.scopes)
}

// AccessTokenActive reports whether introspection would call at active.
func (s *Server) AccessTokenActive(at string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := s.lookupAccessLocked(at)
	return rec != nil && !expired(rec.expiresAt, s.now())
}

// RevokeChain deletes every token of the chain the given access or refresh
// token belongs to, like revoking the consent session in Hydra. It reports
// whether the token was known.
func (s *Server) RevokeChain(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := s.chainLocked(token)
	s.revokeGrantLocked(id)
	return id != ""
}

// ChainID returns the request ID (chain) a live access or refresh token
// belongs to, or "" — handy to assert that a rotation stayed in one chain.
func (s *Server) ChainID(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chainLocked(token)
}

func (s *Server) chainLocked(token string) string {
	if r := s.lookupRefreshLocked(token); r != nil {
		return r.grantID
	}
	if a := s.lookupAccessLocked(token); a != nil {
		return a.grantID
	}
	return ""
}

// revokeGrantLocked is Hydra's RevokeRefreshToken + RevokeAccessToken: both
// delete every row with the request_id.
func (s *Server) revokeGrantLocked(id string) {
	for sig, r := range s.refresh {
		if r.grantID == id {
			delete(s.refresh, sig)
		}
	}
	s.deleteAccessLocked(id)
}

// refreshActiveLocked mirrors Hydra's GetRefreshTokenSession: active rows are
// valid; inactive rows are still returned as valid while
// first_used_at + grace period is in the future.
func (s *Server) refreshActiveLocked(r *refreshRec, now time.Time) bool {
	return r.active || (s.cfg.grace > 0 && !r.firstUsed.IsZero() && r.firstUsed.Add(s.cfg.grace).After(now))
}

// mintLocked issues an access token, a refresh token (when withRefresh and the
// grant has offline or offline_access) and an ID token (when it has openid).
func (s *Server) mintLocked(g *grant, now time.Time, issuer string, withRefresh bool) Tokens {
	at, atSig := s.newToken("ory_at_")
	exp := now.Add(s.cfg.accessTTL).Round(time.Second) // fosite: time.Now().UTC().Add(atLifespan).Round(time.Second)
	s.access[atSig] = &accessRec{grantID: g.id, issuedAt: now, expiresAt: exp}
	t := Tokens{AccessToken: at, ExpiresIn: int64(exp.Sub(now) / time.Second), Scope: strings.Join(g.scopes, " "), TokenType: "bearer"}
	if withRefresh && hasOffline(g.scopes) {
		rt, rtSig := s.newToken("ory_rt_")
		rec := &refreshRec{grantID: g.id, active: true, issuedAt: now, accessSig: atSig}
		if s.cfg.refreshTTL >= 0 {
			rec.expiresAt = now.Add(s.cfg.refreshTTL).Round(time.Second)
		}
		s.refresh[rtSig] = rec
		t.RefreshToken = rt
	}
	if s.cfg.idTokens && slices.Contains(g.scopes, "openid") {
		t.IDToken = signIDToken(g, at, issuer, now, s.newID())
	}
	return t
}

func hasOffline(scopes []string) bool {
	return slices.Contains(scopes, "offline") || slices.Contains(scopes, "offline_access")
}

func expired(exp, now time.Time) bool { return !exp.IsZero() && exp.Before(now) }

func (s *Server) random(n int) []byte {
	b := make([]byte, n)
	s.randMu.Lock()
	defer s.randMu.Unlock()
	if _, err := io.ReadFull(s.cfg.rand, b); err != nil {
		panic("hydraemu: reading randomness: " + err.Error())
	}
	return b
}

func (s *Server) newID() string { return hex.EncodeToString(s.random(16)) }

var b64 = base64.RawURLEncoding

// newToken returns a token shaped like fosite's HMAC strategy with Hydra's
// prefixes: prefix + b64(32 random bytes) + "." + b64(HMAC-SHA512/256(key)).
// The part after the dot is the signature the token is stored under.
func (s *Server) newToken(prefix string) (token, signature string) {
	key := s.random(32)
	signature = s.sign(key)
	return prefix + b64.EncodeToString(key) + "." + signature, signature
}

func (s *Server) sign(key []byte) string {
	m := hmac.New(sha512.New512_256, s.hmacKey)
	m.Write(key)
	return b64.EncodeToString(m.Sum(nil))
}

// splitToken returns the signature of a token (fosite: the second of exactly
// two dot-separated parts, "" otherwise) and whether its key part matches it.
func (s *Server) splitToken(token string) (signature string, valid bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 2 {
		return "", false
	}
	key := parts[0]
	for _, p := range []string{"ory_at_", "ory_rt_", "ory_ac_"} {
		key = strings.TrimPrefix(key, p)
	}
	raw, err := b64.DecodeString(key)
	return parts[1], err == nil && hmac.Equal([]byte(s.sign(raw)), []byte(parts[1]))
}

func (s *Server) lookupRefreshLocked(token string) *refreshRec {
	sig, _ := s.splitToken(token)
	return s.refresh[sig]
}

func (s *Server) lookupAccessLocked(token string) *accessRec {
	sig, _ := s.splitToken(token)
	return s.access[sig]
}

// Fingerprint is how the request log identifies a presented token or code
// without storing it: the first 12 hex digits of its SHA-256.
func Fingerprint(token string) string {
	if token == "" {
		return ""
	}
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:6])
}

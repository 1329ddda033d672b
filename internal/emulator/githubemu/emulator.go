// Package githubemu is an in-memory emulator of the slice of GitHub's REST API
// that wizard-oauth-refresh talks to: Actions secrets (repository, environment
// and organization scope, including the libsodium sealed-box public keys),
// Actions variables (repository and environment scope), workflow runs and
// repositories.
//
// The emulator is an [http.Handler]; serve it with httptest.NewServer in tests
// or with net/http in the local sandbox. It is safe for concurrent use. It keeps
// the decrypted value of every secret so that tests can assert on it, and it
// can inject faults per route (errors, rate limits, delays, dropped
// connections) to drive retry logic.
//
// Behaviour follows GitHub's documentation where it is documented; where it is
// not, the comment next to the behaviour names the public report it follows
// or says that the wording is the emulator's own.
package githubemu

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// Route names, used in [Request.Route] and to target a [Fault].
const (
	RouteGetRepo            = "GET repo"
	RouteGetRepoPublicKey   = "GET repo-public-key"
	RouteGetRepoSecret      = "GET repo-secret"
	RoutePutRepoSecret      = "PUT repo-secret"
	RouteGetEnvPublicKey    = "GET env-public-key"
	RouteGetEnvSecret       = "GET env-secret"
	RoutePutEnvSecret       = "PUT env-secret"
	RouteGetOrgPublicKey    = "GET org-public-key"
	RouteGetOrgSecret       = "GET org-secret"
	RoutePutOrgSecret       = "PUT org-secret"
	RouteListOrgSecretRepos = "GET org-secret-repos"
	RouteCreateRepoVariable = "POST repo-variable"
	RouteUpdateRepoVariable = "PATCH repo-variable"
	RouteGetRepoVariable    = "GET repo-variable"
	RouteCreateEnvVariable  = "POST env-variable"
	RouteUpdateEnvVariable  = "PATCH env-variable"
	RouteGetEnvVariable     = "GET env-variable"
	RouteGetRun             = "GET run"
	// RouteUnknown is logged for any path or method the emulator does not serve
	// (answered 404 like GitHub).
	RouteUnknown = "unknown"
	// AnyRoute makes a Fault match every route.
	AnyRoute = "*"
)

// MaxValueBytes is the size limit of a secret or variable value: "Secrets are
// limited to 48 KB in size" (docs.github.com, "Limits for secrets") and
// "Individual variables are limited to 48 KB in size" (same for variables).
const MaxValueBytes = 48 * 1024

// DefaultRateLimit is the primary rate limit of a personal access token:
// 5,000 requests per hour (docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api).
const DefaultRateLimit = 5000

const docsRest = "https://docs.github.com/rest"

// routes is the routing table: the first entry whose method and pattern
// match wins; ":x" segments capture path parameters. The last column is the
// documentation_url GitHub puts in the route's error bodies. The
// /repositories/{id} forms are the ones go-github v62 uses for environment
// secrets (ActionsService.GetEnvPublicKey and friends).
var routes = []struct{ method, pattern, name, docs string }{
	{"GET", "repos/:owner/:repo", RouteGetRepo, "repos/repos#get-a-repository"},
	{"GET", "repos/:owner/:repo/actions/runs/:run", RouteGetRun, "actions/workflow-runs#get-a-workflow-run"},
	{"GET", "repos/:owner/:repo/actions/secrets/public-key", RouteGetRepoPublicKey, "actions/secrets#get-a-repository-public-key"},
	{"GET", "repos/:owner/:repo/actions/secrets/:name", RouteGetRepoSecret, "actions/secrets#get-a-repository-secret"},
	{"PUT", "repos/:owner/:repo/actions/secrets/:name", RoutePutRepoSecret, "actions/secrets#create-or-update-a-repository-secret"},
	{"GET", "repos/:owner/:repo/environments/:env/secrets/public-key", RouteGetEnvPublicKey, "actions/secrets#get-an-environment-public-key"},
	{"GET", "repos/:owner/:repo/environments/:env/secrets/:name", RouteGetEnvSecret, "actions/secrets#get-an-environment-secret"},
	{"PUT", "repos/:owner/:repo/environments/:env/secrets/:name", RoutePutEnvSecret, "actions/secrets#create-or-update-an-environment-secret"},
	{"GET", "repositories/:id/environments/:env/secrets/public-key", RouteGetEnvPublicKey, "actions/secrets#get-an-environment-public-key"},
	{"GET", "repositories/:id/environments/:env/secrets/:name", RouteGetEnvSecret, "actions/secrets#get-an-environment-secret"},
	{"PUT", "repositories/:id/environments/:env/secrets/:name", RoutePutEnvSecret, "actions/secrets#create-or-update-an-environment-secret"},
	{"GET", "orgs/:org/actions/secrets/public-key", RouteGetOrgPublicKey, "actions/secrets#get-an-organization-public-key"},
	{"GET", "orgs/:org/actions/secrets/:name", RouteGetOrgSecret, "actions/secrets#get-an-organization-secret"},
	{"PUT", "orgs/:org/actions/secrets/:name", RoutePutOrgSecret, "actions/secrets#create-or-update-an-organization-secret"},
	{"GET", "orgs/:org/actions/secrets/:name/repositories", RouteListOrgSecretRepos, "actions/secrets#list-selected-repositories-for-an-organization-secret"},
	{"POST", "repos/:owner/:repo/actions/variables", RouteCreateRepoVariable, "actions/variables#create-a-repository-variable"},
	{"GET", "repos/:owner/:repo/actions/variables/:name", RouteGetRepoVariable, "actions/variables#get-a-repository-variable"},
	{"PATCH", "repos/:owner/:repo/actions/variables/:name", RouteUpdateRepoVariable, "actions/variables#update-a-repository-variable"},
	{"POST", "repos/:owner/:repo/environments/:env/variables", RouteCreateEnvVariable, "actions/variables#create-an-environment-variable"},
	{"GET", "repos/:owner/:repo/environments/:env/variables/:name", RouteGetEnvVariable, "actions/variables#get-an-environment-variable"},
	{"PATCH", "repos/:owner/:repo/environments/:env/variables/:name", RouteUpdateEnvVariable, "actions/variables#update-an-environment-variable"},
}

// docsURL is the documentation_url of route's error bodies.
func docsURL(route string) string {
	for _, r := range routes {
		if r.name == route {
			return docsRest + "/" + r.docs
		}
	}
	return docsRest
}

// Scope names where a secret or variable lives. Build one with [RepoScope],
// [EnvScope] or [OrgScope].
type Scope struct {
	Repo string // "owner/name", for repository and environment scopes
	Env  string // environment name, for environment scope
	Org  string // organization login, for organization scope
}

// RepoScope is the scope of a repository ("owner/name").
func RepoScope(repo string) Scope { return Scope{Repo: repo} }

// EnvScope is the scope of environment env of repository repo.
func EnvScope(repo, env string) Scope { return Scope{Repo: repo, Env: env} }

// OrgScope is the scope of an organization.
func OrgScope(org string) Scope { return Scope{Org: org} }

// Permissions are what a token may do, modelled on fine-grained personal
// access tokens. A write permission implies the matching read permission.
type Permissions struct {
	// Repos maps "owner/name" (case-insensitive) or "*" (every repository) to
	// repository permissions. A repository without an entry, or whose entry
	// grants nothing, is invisible to the token: GitHub answers 404.
	Repos map[string]RepoPermissions
	// Orgs maps an organization login or "*" to organization permissions.
	Orgs map[string]OrgPermissions
}

// RepoPermissions are repository permissions of a fine-grained token.
type RepoPermissions struct {
	Metadata          bool // read access to the repository itself
	SecretsRead       bool // "Secrets" (read): public key, get secret
	SecretsWrite      bool // "Secrets" (write): create or update secrets
	VariablesRead     bool // "Variables" (read)
	VariablesWrite    bool // "Variables" (write)
	EnvironmentsRead  bool // "Environments" (read): environment secrets and variables
	EnvironmentsWrite bool // "Environments" (write)
	ActionsRead       bool // "Actions" (read): workflow runs
}

// OrgPermissions are organization permissions of a fine-grained token.
type OrgPermissions struct {
	SecretsRead  bool // "Secrets" organization permission (read)
	SecretsWrite bool // "Secrets" organization permission (write)
}

func (p RepoPermissions) visible() bool { return p != RepoPermissions{} }

// AllPermissions grants everything on every repository and organization.
func AllPermissions() Permissions {
	return Permissions{
		Repos: map[string]RepoPermissions{"*": {true, true, true, true, true, true, true, true}},
		Orgs:  map[string]OrgPermissions{"*": {true, true}},
	}
}

// lookup finds key case-insensitively in m, falling back to the "*" entry.
func lookup[T any](m map[string]T, key string) T {
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return m["*"]
}

// Secret is the emulator's record of a secret, with its decrypted value.
type Secret struct {
	Name                  string
	Value                 string
	CreatedAt, UpdatedAt  time.Time
	Visibility            string  // organization secrets only: all, private or selected
	SelectedRepositoryIDs []int64 // organization secrets with visibility selected
}

// Request is one entry of the request log. Request bodies are not kept, since
// a variable body carries its plaintext value; only the key_id of a secret PUT
// is recorded.
type Request struct {
	Method  string
	Path    string
	Route   string // one of the Route constants
	Name    string // secret or variable name, upper-cased, when the route has one
	KeyID   string // key_id sent with a secret PUT
	Token   string // bearer token presented, "" if none
	Status  int    // status answered; 0 when the connection was dropped
	Faulted bool   // an injected Fault shaped the answer
	Dropped bool   // the connection was closed without an answer
	Start   time.Time
	End     time.Time
}

// Option configures an Emulator.
type Option func(*Emulator)

// WithLatency makes every request wait d before it is handled (for benchmarks).
func WithLatency(d time.Duration) Option { return func(e *Emulator) { e.latency = d } }

// WithClock sets the clock used for created_at/updated_at timestamps and the
// rate-limit window. Request log times and delays always use the real clock.
func WithClock(now func() time.Time) Option { return func(e *Emulator) { e.clock = now } }

// WithRand sets the randomness used to generate key pairs and key ids.
func WithRand(r io.Reader) Option { return func(e *Emulator) { e.rand = r } }

// WithRateLimit sets each token's primary rate limit per hour (default
// [DefaultRateLimit]). Past it, requests get GitHub's 403 with
// x-ratelimit-remaining: 0. Zero or less disables enforcement; the headers
// then always report the full limit as remaining.
func WithRateLimit(perHour int) Option { return func(e *Emulator) { e.rateLimit = perHour } }

// Emulator is an in-memory GitHub REST API. Create it with [New].
type Emulator struct {
	mu        sync.Mutex
	clock     func() time.Time
	rand      io.Reader
	latency   time.Duration
	rateLimit int

	repos     map[string]*repoState // by lower-case full name
	orgs      map[string]*orgState  // by lower-case login
	tokens    map[string]Permissions
	faults    []*faultState
	log       []Request
	buckets   map[string]*bucket
	lastRepo  int64
	requestNo uint64
}

type keyPair struct {
	id        string
	pub, priv [32]byte
}

type publicKey struct {
	KeyID string `json:"key_id"`
	Key   string `json:"key"`
}

// store holds one scope's key and its secrets and variables.
type store struct {
	key      keyPair
	override *publicKey
	secrets  map[string]*Secret // by upper-case name
	vars     map[string]*Secret // variables: Name, Value and times only
}

type repoState struct {
	id       int64
	fullName string
	store    *store
	envs     map[string]*store // by lower-case name
	runs     map[int64]time.Time
}

type orgState struct {
	login string
	store *store
	repos map[int64]*repoState
}

type bucket struct {
	start time.Time
	used  int
}

// New returns an empty emulator: add repositories, organizations and tokens
// before serving requests.
func New(opts ...Option) *Emulator {
	e := &Emulator{
		clock:     time.Now,
		rand:      rand.Reader,
		rateLimit: DefaultRateLimit,
		repos:     map[string]*repoState{},
		orgs:      map[string]*orgState{},
		tokens:    map[string]Permissions{},
		buckets:   map[string]*bucket{},
	}
	for _, o := range opts {
		o(e)
	}
	return e
}

// lock locks e.mu and returns the unlock: defer e.lock()().
func (e *Emulator) lock() func() { e.mu.Lock(); return e.mu.Unlock }

func (e *Emulator) now() time.Time { return e.clock().UTC().Truncate(time.Second) }

func (e *Emulator) newKey() keyPair {
	pub, priv, err := box.GenerateKey(e.rand)
	if err != nil {
		panic("githubemu: generating key pair: " + err.Error())
	}
	var b [8]byte
	if _, err := io.ReadFull(e.rand, b[:]); err != nil {
		panic("githubemu: generating key id: " + err.Error())
	}
	// GitHub key ids are long decimal strings, e.g. "568250167242549743".
	id := strconv.FormatUint(binary.BigEndian.Uint64(b[:])%1e18, 10)
	return keyPair{id: id, pub: *pub, priv: *priv}
}

func (e *Emulator) newStore() *store {
	return &store{key: e.newKey(), secrets: map[string]*Secret{}, vars: map[string]*Secret{}}
}

// AddRepo adds repository fullName ("owner/name") with the given id; an id of
// 0 picks the next free one. Adding an existing repository changes nothing.
func (e *Emulator) AddRepo(fullName string, id int64) {
	defer e.lock()()
	e.addRepo(fullName, id)
}

func (e *Emulator) addRepo(fullName string, id int64) *repoState {
	if owner, name, ok := strings.Cut(fullName, "/"); !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		panic(fmt.Sprintf("githubemu: repository %q is not owner/name", fullName))
	}
	if r := e.repos[strings.ToLower(fullName)]; r != nil {
		return r
	}
	if id == 0 {
		id = e.lastRepo + 1
	}
	for _, r := range e.repos {
		if r.id == id {
			panic(fmt.Sprintf("githubemu: repository id %d already used by %s", id, r.fullName))
		}
	}
	e.lastRepo = max(e.lastRepo, id)
	r := &repoState{id: id, fullName: fullName, store: e.newStore(), envs: map[string]*store{}, runs: map[int64]time.Time{}}
	e.repos[strings.ToLower(fullName)] = r
	return r
}

// AddEnvironment adds deployment environment env to repository repo.
func (e *Emulator) AddEnvironment(repo, env string) {
	defer e.lock()()
	r := e.mustRepo(repo)
	if r.envs[strings.ToLower(env)] == nil {
		r.envs[strings.ToLower(env)] = e.newStore()
	}
}

// AddOrg adds organization org and makes repos (full names) its repositories,
// adding any that do not exist yet.
func (e *Emulator) AddOrg(org string, repos ...string) {
	defer e.lock()()
	o := e.orgs[strings.ToLower(org)]
	if o == nil {
		o = &orgState{login: org, store: e.newStore(), repos: map[int64]*repoState{}}
		e.orgs[strings.ToLower(org)] = o
	}
	for _, name := range repos {
		r := e.addRepo(name, 0)
		o.repos[r.id] = r
	}
}

// AddToken registers token with the given permissions, replacing any earlier
// registration of the same token.
func (e *Emulator) AddToken(token string, perms Permissions) {
	defer e.lock()()
	e.tokens[token] = perms
}

// RemoveToken revokes token: it then gets 401 Bad credentials.
func (e *Emulator) RemoveToken(token string) {
	defer e.lock()()
	delete(e.tokens, token)
}

// AddRun adds workflow run runID to repository repo.
func (e *Emulator) AddRun(repo string, runID int64, startedAt time.Time) {
	defer e.lock()()
	e.mustRepo(repo).runs[runID] = startedAt.UTC()
}

func (e *Emulator) mustRepo(repo string) *repoState {
	r := e.repos[strings.ToLower(repo)]
	if r == nil {
		panic(fmt.Sprintf("githubemu: unknown repository %q", repo))
	}
	return r
}

func (e *Emulator) storeOf(s Scope) *store {
	switch {
	case s.Org != "":
		if o := e.orgs[strings.ToLower(s.Org)]; o != nil {
			return o.store
		}
	case s.Env != "":
		if r := e.repos[strings.ToLower(s.Repo)]; r != nil {
			return r.envs[strings.ToLower(s.Env)]
		}
	default:
		if r := e.repos[strings.ToLower(s.Repo)]; r != nil {
			return r.store
		}
	}
	return nil
}

func (e *Emulator) mustStore(s Scope) *store {
	st := e.storeOf(s)
	if st == nil {
		panic(fmt.Sprintf("githubemu: unknown scope %+v", s))
	}
	return st
}

// RotateKey gives scope a new Curve25519 key pair and key id. Values sealed for
// the old key are then rejected. It also clears any public key override.
func (e *Emulator) RotateKey(scope Scope) {
	defer e.lock()()
	st := e.mustStore(scope)
	st.key, st.override = e.newKey(), nil
}

// PublicKey returns what GET …/secrets/public-key currently answers for scope.
func (e *Emulator) PublicKey(scope Scope) (keyID, keyB64 string) {
	defer e.lock()()
	pk := e.mustStore(scope).publicKey()
	return pk.KeyID, pk.Key
}

// SetPublicKeyOverride makes GET …/secrets/public-key answer keyB64 and keyID
// verbatim (for instance a key that is not 32 bytes). PUTs must then carry
// keyID; their values are still opened with the scope's real private key.
func (e *Emulator) SetPublicKeyOverride(scope Scope, keyB64, keyID string) {
	defer e.lock()()
	e.mustStore(scope).override = &publicKey{KeyID: keyID, Key: keyB64}
}

func (st *store) publicKey() publicKey {
	if st.override != nil {
		return *st.override
	}
	return publicKey{KeyID: st.key.id, Key: b64(st.key.pub[:])}
}

// SetSecret seeds secret name of scope with plaintext, created and last
// updated at updatedAt. An organization secret seeded here has visibility
// "private" unless it existed; see [Emulator.SetOrgSecretAccess].
func (e *Emulator) SetSecret(scope Scope, name, plaintext string, updatedAt time.Time) {
	defer e.lock()()
	st := e.mustStore(scope)
	name = strings.ToUpper(name)
	s := st.secrets[name]
	if s == nil {
		s = &Secret{Name: name, CreatedAt: updatedAt.UTC()}
		if scope.Org != "" {
			s.Visibility = "private"
		}
		st.secrets[name] = s
	}
	s.Value, s.UpdatedAt = plaintext, updatedAt.UTC()
}

// SetOrgSecretAccess sets the visibility and selected repositories of an
// existing organization secret, as the "set selected repositories" endpoint
// and the UI would.
func (e *Emulator) SetOrgSecretAccess(org, name, visibility string, repoIDs ...int64) {
	defer e.lock()()
	s := e.mustStore(OrgScope(org)).secrets[strings.ToUpper(name)]
	if s == nil {
		panic(fmt.Sprintf("githubemu: no secret %s in org %s", name, org))
	}
	s.Visibility, s.SelectedRepositoryIDs = visibility, nil
	if visibility == "selected" {
		s.SelectedRepositoryIDs = append([]int64{}, repoIDs...)
	}
}

// Secret returns secret name of scope with its decrypted value.
func (e *Emulator) Secret(scope Scope, name string) (Secret, bool) {
	defer e.lock()()
	st := e.storeOf(scope)
	if st == nil || st.secrets[strings.ToUpper(name)] == nil {
		return Secret{}, false
	}
	s := *st.secrets[strings.ToUpper(name)]
	if s.SelectedRepositoryIDs != nil {
		s.SelectedRepositoryIDs = append([]int64{}, s.SelectedRepositoryIDs...)
	}
	return s, true
}

// SetVariable creates or overwrites variable name of scope.
func (e *Emulator) SetVariable(scope Scope, name, value string) {
	defer e.lock()()
	st, key := e.mustStore(scope), strings.ToUpper(name)
	if st.vars[key] == nil {
		st.vars[key] = &Secret{Name: key, CreatedAt: e.now()}
	}
	st.vars[key].Value, st.vars[key].UpdatedAt = value, e.now()
}

// Variable returns the value of variable name of scope.
func (e *Emulator) Variable(scope Scope, name string) (string, bool) {
	defer e.lock()()
	st := e.storeOf(scope)
	if st == nil || st.vars[strings.ToUpper(name)] == nil {
		return "", false
	}
	return st.vars[strings.ToUpper(name)].Value, true
}

// Requests returns a copy of the request log, oldest first.
func (e *Emulator) Requests() []Request {
	defer e.lock()()
	return append([]Request(nil), e.log...)
}

// ResetRequests empties the request log.
func (e *Emulator) ResetRequests() {
	defer e.lock()()
	e.log = nil
}

// call is one request being served.
type call struct {
	route, method, token, baseURL string
	owner, repo, repoID, env, org string // path parameters
	name, runID                   string // name: secret or variable name as sent
	body                          []byte
}

// response is an answer not yet written; a nil body means no body.
type response struct {
	status int
	header http.Header
	body   []byte
}

// maxBody bounds how much of a request body is read.
const maxBody = 1 << 20

// ServeHTTP serves the emulated API.
func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxBody))
	c := parse(r, body)
	if e.latency > 0 {
		sleep(r.Context(), e.latency)
	}

	e.mu.Lock()
	e.requestNo++
	reqID := fmt.Sprintf("%04X:%04X:%06X:%06X:%08X", e.requestNo%0xFFFF, 0xE0A1, e.requestNo*31, e.requestNo*97, start.Unix())
	rate := e.consumeRate(c.token)
	f := e.matchFault(c)
	e.mu.Unlock()

	var resp response
	dropped := false
	if f != nil && f.Delay > 0 {
		sleep(r.Context(), f.Delay)
	}
	if f == nil || f.Commit || (f.Status == 0 && !f.DropConnection) {
		resp = e.handle(c, rate)
	}
	if f != nil {
		if f.DropConnection {
			dropped = true
		} else if f.Status != 0 {
			resp = f.response(reqID)
		}
	}

	entry := Request{Method: r.Method, Path: r.URL.Path, Route: c.route, Name: strings.ToUpper(c.name),
		KeyID: keyIDOf(c), Token: c.token, Status: resp.status, Faulted: f != nil, Dropped: dropped, Start: start}
	if dropped {
		entry.Status = 0
		entry.End = time.Now()
		e.record(entry)
		dropConnection(w)
		return
	}

	h := w.Header()
	h.Set("X-GitHub-Request-Id", reqID)
	h.Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	h.Set("X-GitHub-Media-Type", "github.v3; format=json")
	for k, v := range rate.headers() {
		h.Set(k, v)
	}
	for k, v := range resp.header {
		h[k] = v
	}
	if resp.body != nil && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json; charset=utf-8")
	}
	w.WriteHeader(resp.status)
	if resp.body != nil && resp.status != http.StatusNoContent {
		_, _ = w.Write(resp.body)
	}
	entry.End = time.Now()
	e.record(entry)
}

func (e *Emulator) record(r Request) {
	defer e.lock()()
	e.log = append(e.log, r)
}

func keyIDOf(c *call) string {
	var in struct {
		KeyID string `json:"key_id"`
	}
	if c.method == http.MethodPut {
		_ = json.Unmarshal(c.body, &in)
	}
	return in.KeyID
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// dropConnection closes the client connection without answering.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Without a hijackable connection (HTTP/2), aborting the handler resets the stream.
	panic(http.ErrAbortHandler)
}

// rateState is the primary rate-limit position after counting a request.
type rateState struct {
	limit, used int
	reset       time.Time
	exceeded    bool
}

func (r rateState) headers() map[string]string {
	return map[string]string{
		"X-RateLimit-Limit":     strconv.Itoa(r.limit),
		"X-RateLimit-Remaining": strconv.Itoa(max(0, r.limit-r.used)),
		"X-RateLimit-Used":      strconv.Itoa(min(r.used, r.limit)),
		"X-RateLimit-Reset":     strconv.FormatInt(r.reset.Unix(), 10),
		"X-RateLimit-Resource":  "core",
	}
}

// consumeRate counts a request against its token's hourly window. Requests
// without a valid token are counted against a 60-per-hour anonymous bucket
// that is reported but not enforced. Callers hold e.mu.
func (e *Emulator) consumeRate(token string) rateState {
	limit, key := e.rateLimit, "t:"+token
	if _, ok := e.tokens[token]; !ok || token == "" {
		limit, key = 60, "anonymous"
	}
	now := e.clock()
	b := e.buckets[key]
	if b == nil || !now.Before(b.start.Add(time.Hour)) {
		b = &bucket{start: now}
		e.buckets[key] = b
	}
	b.used++
	st := rateState{limit: limit, used: b.used, reset: b.start.Add(time.Hour)}
	if limit <= 0 {
		st.limit, st.used = DefaultRateLimit, 0
		return st
	}
	st.exceeded = key != "anonymous" && b.used > limit
	return st
}

// parse works out the route and its parameters from the request.
func parse(r *http.Request, body []byte) *call {
	c := &call{route: RouteUnknown, method: r.Method, body: body, baseURL: "http://" + r.Host}
	if r.TLS != nil {
		c.baseURL = "https://" + r.Host
	}
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok &&
		(strings.EqualFold(scheme, "bearer") || strings.EqualFold(scheme, "token")) {
		c.token = strings.TrimSpace(tok)
	}
	seg := strings.Split(strings.Trim(strings.TrimPrefix(r.URL.EscapedPath(), "/api/v3"), "/"), "/")
	for i := range seg {
		var err error
		if seg[i], err = url.PathUnescape(seg[i]); err != nil {
			return c
		}
	}
next:
	for _, rt := range routes {
		pat := strings.Split(rt.pattern, "/")
		if rt.method != r.Method || len(pat) != len(seg) {
			continue
		}
		p := map[string]string{}
		for i, ps := range pat {
			if ps[0] == ':' && seg[i] != "" {
				p[ps[1:]] = seg[i]
			} else if ps != seg[i] {
				continue next
			}
		}
		c.route, c.owner, c.repo, c.repoID = rt.name, p["owner"], p["repo"], p["id"]
		c.env, c.org, c.name, c.runID = p["env"], p["org"], p["name"], p["run"]
		break
	}
	if c.route == RouteCreateRepoVariable || c.route == RouteCreateEnvVariable {
		var in struct{ Name string }
		_ = json.Unmarshal(body, &in)
		c.name = in.Name
	}
	return c
}

// apiError is GitHub's error body.
type apiError struct {
	Message          string `json:"message"`
	Errors           any    `json:"errors,omitempty"`
	DocumentationURL string `json:"documentation_url"`
	Status           string `json:"status"`
}

func errorBody(status int, message, docs string, errs any) []byte {
	b, _ := json.Marshal(apiError{Message: message, Errors: errs, DocumentationURL: docs, Status: strconv.Itoa(status)})
	return b
}

func (c *call) fail(status int, message string) response {
	return response{status: status, body: errorBody(status, message, docsURL(c.route), nil)}
}

func (c *call) notFound() response { return c.fail(http.StatusNotFound, "Not Found") }

// forbidden is GitHub's answer to a fine-grained token that can see the
// resource but lacks the permission; x-accepted-github-permissions names the
// permission the endpoint accepts.
func (c *call) forbidden(accepted string) response {
	r := c.fail(http.StatusForbidden, "Resource not accessible by personal access token")
	r.header = http.Header{"X-Accepted-Github-Permissions": {accepted}}
	return r
}

func jsonResponse(status int, v any) response {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return response{status: status, body: bytes.TrimRight(buf.Bytes(), "\n")}
}

func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

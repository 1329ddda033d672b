package githubemu

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

const (
	testRepo = "acme/app"
	testEnv  = "prod"
	testOrg  = "acme"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// clock is an adjustable fake clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	e     *Emulator
	srv   *httptest.Server
	clock *clock
}

// newFixture serves an emulator with repos acme/app (101), acme/lib (102) and
// other/private (201), environment prod on acme/app, org acme owning the acme
// repos, and these tokens:
//
//	full      everything
//	meta      acme/app metadata only
//	secrets   acme/app secrets write only
//	secrets-r acme/app secrets read only
//	vars      acme/app variables write only
//	envs      acme/app environments write only
//	orgread   org acme secrets read, acme/app metadata
func newFixture(t *testing.T, opts ...Option) *fixture {
	t.Helper()
	clk := &clock{t: t0}
	e := New(append([]Option{WithClock(clk.now)}, opts...)...)
	e.AddRepo(testRepo, 101)
	e.AddRepo("acme/lib", 102)
	e.AddRepo("other/private", 201)
	e.AddEnvironment(testRepo, testEnv)
	e.AddOrg(testOrg, testRepo, "acme/lib")
	e.AddRun(testRepo, 9001, t0.Add(-2*time.Minute))
	repoOnly := func(p RepoPermissions) Permissions {
		return Permissions{Repos: map[string]RepoPermissions{testRepo: p}}
	}
	e.AddToken("full", AllPermissions())
	e.AddToken("meta", repoOnly(RepoPermissions{Metadata: true}))
	e.AddToken("secrets", repoOnly(RepoPermissions{SecretsWrite: true}))
	e.AddToken("secrets-r", repoOnly(RepoPermissions{SecretsRead: true}))
	e.AddToken("vars", repoOnly(RepoPermissions{VariablesWrite: true}))
	e.AddToken("envs", repoOnly(RepoPermissions{EnvironmentsWrite: true}))
	e.AddToken("orgread", Permissions{
		Repos: map[string]RepoPermissions{testRepo: {Metadata: true}},
		Orgs:  map[string]OrgPermissions{testOrg: {SecretsRead: true}},
	})
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	return &fixture{e: e, srv: srv, clock: clk}
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

func (r reply) message(t *testing.T) string {
	t.Helper()
	msg, _ := r.json(t)["message"].(string)
	return msg
}

// do sends a request; body is sent raw if it is a string, as JSON otherwise.
func (f *fixture) do(t *testing.T, method, path, token string, body any) reply {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

// sealed fetches the public key at keyPath and seals plaintext for it, as the
// action does.
func (f *fixture) sealed(t *testing.T, keyPath, plaintext string) map[string]any {
	t.Helper()
	r := f.do(t, http.MethodGet, keyPath, "full", nil)
	if r.status != http.StatusOK {
		t.Fatalf("GET %s = %d %s", keyPath, r.status, r.body)
	}
	var pk publicKey
	if err := json.Unmarshal(r.body, &pk); err != nil {
		t.Fatal(err)
	}
	return map[string]any{"encrypted_value": seal(t, pk.Key, plaintext), "key_id": pk.KeyID}
}

func seal(t *testing.T, keyB64, plaintext string) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil || len(raw) != 32 {
		t.Fatalf("public key %q: %v (len %d)", keyB64, err, len(raw))
	}
	var pk [32]byte
	copy(pk[:], raw)
	out, err := box.SealAnonymous(nil, []byte(plaintext), &pk, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(out)
}

const (
	repoKeyPath = "/repos/acme/app/actions/secrets/public-key"
	envKeyPath  = "/repos/acme/app/environments/prod/secrets/public-key"
	orgKeyPath  = "/orgs/acme/actions/secrets/public-key"
)

func TestRepoSecretRoundTrip(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	path := "/repos/acme/app/actions/secrets/wizard_refresh_token"

	r := f.do(t, http.MethodPut, path, "full", f.sealed(t, repoKeyPath, "first"))
	if got, want := r.status, http.StatusCreated; got != want {
		t.Fatalf("create: status = %d, want %d (%s)", got, want, r.body)
	}
	if got, want := string(r.body), "{}"; got != want {
		t.Errorf("create: body = %q, want %q", got, want)
	}
	if got, want := r.header.Get("Content-Type"), "application/json; charset=utf-8"; got != want {
		t.Errorf("content-type = %q, want %q", got, want)
	}

	f.clock.advance(time.Hour)
	r = f.do(t, http.MethodPut, path, "full", f.sealed(t, repoKeyPath, "second"))
	if got, want := r.status, http.StatusNoContent; got != want {
		t.Fatalf("update: status = %d, want %d (%s)", got, want, r.body)
	}
	if len(r.body) != 0 {
		t.Errorf("update: body = %q, want empty", r.body)
	}

	s, ok := f.e.Secret(RepoScope(testRepo), "WIZARD_REFRESH_TOKEN")
	if !ok {
		t.Fatal("secret not stored")
	}
	if got, want := s, (Secret{Name: "WIZARD_REFRESH_TOKEN", Value: "second", CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}); !reflect.DeepEqual(got, want) {
		t.Errorf("Secret = %+v, want %+v", got, want)
	}

	r = f.do(t, http.MethodGet, "/repos/ACME/App/actions/secrets/Wizard_Refresh_Token", "full", nil)
	want := map[string]any{"name": "WIZARD_REFRESH_TOKEN", "created_at": "2026-05-01T12:00:00Z", "updated_at": "2026-05-01T13:00:00Z"}
	if got := r.json(t); r.status != http.StatusOK || !reflect.DeepEqual(got, want) {
		t.Errorf("GET secret = %d %v, want 200 %v", r.status, got, want)
	}
	if r := f.do(t, http.MethodGet, "/repos/acme/app/actions/secrets/NOPE", "full", nil); r.status != http.StatusNotFound {
		t.Errorf("GET missing secret = %d, want 404", r.status)
	}
}

func TestPutSecretValidation(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	good := f.sealed(t, repoKeyPath, "v")
	with := func(k string, v any) map[string]any {
		m := map[string]any{"encrypted_value": good["encrypted_value"], "key_id": good["key_id"]}
		if v == nil {
			delete(m, k)
		} else {
			m[k] = v
		}
		return m
	}
	keyID, _ := f.e.PublicKey(RepoScope(testRepo))
	tests := []struct {
		name       string
		secret     string
		body       any
		wantStatus int
		wantMsg    string // substring of message
	}{
		{"wrong key_id", "A", with("key_id", "12345"), 422, improperlyEncrypted},
		{"garbage ciphertext", "A", with("encrypted_value", base64.StdEncoding.EncodeToString(make([]byte, 80))), 422, improperlyEncrypted},
		{"too short ciphertext", "A", with("encrypted_value", "AAAA"), 422, improperlyEncrypted},
		{"sealed for another key", "A", map[string]any{"encrypted_value": f.sealed(t, envKeyPath, "v")["encrypted_value"], "key_id": keyID}, 422, improperlyEncrypted},
		{"not base64", "A", with("encrypted_value", "not base64!"), 422, "does not match"},
		{"unpadded base64", "A", with("encrypted_value", "QUJD"[:3]), 422, "does not match"},
		{"missing key_id", "A", with("key_id", nil), 422, `"key_id" wasn't supplied`},
		{"missing encrypted_value", "A", with("encrypted_value", nil), 422, `"encrypted_value" wasn't supplied`},
		{"key_id wrong type", "A", with("key_id", 42), 422, "properties/key_id"},
		{"malformed JSON", "A", `{"key_id":`, 400, "Problems parsing JSON"},
		{"name with dash", "A-B", good, 422, "can only contain alphanumeric"},
		{"name with space", "A%20B", good, 422, "can only contain alphanumeric"},
		{"name with dot", "A.B", good, 422, "can only contain alphanumeric"},
		{"name starting with digit", "1ABC", good, 422, "Must start with a letter"},
		{"name GITHUB_ prefix", "GITHUB_TOKEN", good, 422, "must not start with GITHUB_"},
		{"name github_ prefix lower-case", "github_x", good, 422, "must not start with GITHUB_"},
		{"name non-ASCII", "CAF%C3%89", good, 422, "can only contain alphanumeric"},
		{"leading underscore ok", "_X", good, 201, ""},
		{"digits inside ok", "A1_2", good, 201, ""},
		{"GITHUB without underscore ok", "GITHUBX", good, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/"+tc.secret, "full", tc.body)
			if got, want := r.status, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d (%s)", got, want, r.body)
			}
			if tc.wantMsg == "" {
				return
			}
			m := r.json(t)
			if got := m["message"].(string); !strings.Contains(got, tc.wantMsg) {
				t.Errorf("message = %q, want it to contain %q", got, tc.wantMsg)
			}
			if got, want := m["status"], fmt.Sprint(tc.wantStatus); got != want {
				t.Errorf("status field = %v, want %q", got, want)
			}
			if got, want := m["documentation_url"], docsURL(RoutePutRepoSecret); got != want {
				t.Errorf("documentation_url = %v, want %q", got, want)
			}
		})
	}
}

func TestSecretSizeLimit(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		size       int
		wantStatus int
	}{
		{MaxValueBytes, http.StatusCreated},
		{MaxValueBytes + 1, http.StatusUnprocessableEntity},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.size), func(t *testing.T) {
			name := fmt.Sprintf("BIG_%d", tc.size)
			body := f.sealed(t, repoKeyPath, strings.Repeat("x", tc.size))
			r := f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/"+name, "full", body)
			if got, want := r.status, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d (%.200s)", got, want, r.body)
			}
			_, stored := f.e.Secret(RepoScope(testRepo), name)
			if got, want := stored, tc.wantStatus == http.StatusCreated; got != want {
				t.Errorf("stored = %v, want %v", got, want)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	put := f.sealed(t, repoKeyPath, "v")
	tests := []struct {
		name         string
		method, path string
		auth         string // raw Authorization header
		body         any
		wantStatus   int
		wantMsg      string
		wantAccepted string
	}{
		{"no credentials", "GET", repoKeyPath, "", nil, 401, "Requires authentication", ""},
		{"unknown token", "GET", repoKeyPath, "Bearer nope", nil, 401, "Bad credentials", ""},
		{"unknown scheme", "GET", repoKeyPath, "Basic full", nil, 401, "Requires authentication", ""},
		{"token scheme", "GET", repoKeyPath, "token full", nil, 200, "", ""},
		{"bearer scheme", "GET", repoKeyPath, "Bearer full", nil, 200, "", ""},
		{"metadata only: public key", "GET", repoKeyPath, "Bearer meta", nil, 403, "Resource not accessible by personal access token", "secrets=read"},
		{"metadata only: put", "PUT", "/repos/acme/app/actions/secrets/X", "Bearer meta", put, 403, "Resource not accessible by personal access token", "secrets=write"},
		{"secrets read only: put", "PUT", "/repos/acme/app/actions/secrets/X", "Bearer secrets-r", put, 403, "Resource not accessible", "secrets=write"},
		{"secrets read only: public key", "GET", repoKeyPath, "Bearer secrets-r", nil, 200, "", ""},
		{"secrets write implies read", "GET", repoKeyPath, "Bearer secrets", nil, 200, "", ""},
		{"repo the token cannot see", "GET", "/repos/other/private/actions/secrets/public-key", "Bearer meta", nil, 404, "Not Found", ""},
		{"unknown repo", "GET", "/repos/acme/nope/actions/secrets/public-key", "Bearer full", nil, 404, "Not Found", ""},
		{"get repo", "GET", "/repos/acme/app", "Bearer meta", nil, 200, "", ""},
		{"get invisible repo", "GET", "/repos/other/private", "Bearer secrets-r", nil, 404, "Not Found", ""},
		{"run without actions read", "GET", "/repos/acme/app/actions/runs/9001", "Bearer meta", nil, 403, "Resource not accessible", "actions=read"},
		{"run in invisible repo", "GET", "/repos/other/private/actions/runs/9001", "Bearer meta", nil, 404, "Not Found", ""},
		{"env secret without environments permission", "GET", envKeyPath, "Bearer secrets", nil, 403, "Resource not accessible", "environments=read"},
		{"org secret without org permission", "GET", orgKeyPath, "Bearer meta", nil, 403, "Resource not accessible", "organization_secrets=read"},
		{"org put with read only", "PUT", "/orgs/acme/actions/secrets/X", "Bearer orgread", map[string]any{}, 403, "Resource not accessible", "organization_secrets=write"},
		{"unknown org", "GET", "/orgs/nope/actions/secrets/public-key", "Bearer full", nil, 404, "Not Found", ""},
		{"unknown path", "GET", "/repos/acme/app/issues", "Bearer full", nil, 404, "Not Found", ""},
		{"wrong method", "DELETE", "/repos/acme/app/actions/secrets/X", "Bearer full", nil, 404, "Not Found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var rd io.Reader
			if tc.body != nil {
				b, _ := json.Marshal(tc.body)
				rd = bytes.NewReader(b)
			}
			req, _ := http.NewRequest(tc.method, f.srv.URL+tc.path, rd)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			r := reply{resp.StatusCode, resp.Header, body}
			if got, want := r.status, tc.wantStatus; got != want {
				t.Fatalf("status = %d, want %d (%s)", got, want, body)
			}
			if tc.wantMsg != "" {
				m := r.json(t)
				if got := m["message"].(string); !strings.Contains(got, tc.wantMsg) {
					t.Errorf("message = %q, want %q", got, tc.wantMsg)
				}
				if _, ok := m["documentation_url"].(string); !ok {
					t.Errorf("body %s has no documentation_url", body)
				}
			}
			if got, want := r.header.Get("X-Accepted-Github-Permissions"), tc.wantAccepted; got != want {
				t.Errorf("x-accepted-github-permissions = %q, want %q", got, want)
			}
		})
	}
	t.Run("bad credentials body", func(t *testing.T) {
		r := f.do(t, http.MethodGet, repoKeyPath, "revoked", nil)
		want := map[string]any{"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}
		if got := r.json(t); !reflect.DeepEqual(got, want) {
			t.Errorf("body = %v, want %v", got, want)
		}
	})
}

func TestRemoveToken(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.AddToken("temp", AllPermissions())
	if r := f.do(t, http.MethodGet, "/repos/acme/app", "temp", nil); r.status != http.StatusOK {
		t.Fatalf("before: %d", r.status)
	}
	f.e.RemoveToken("temp")
	if r := f.do(t, http.MethodGet, "/repos/acme/app", "temp", nil); r.status != http.StatusUnauthorized {
		t.Errorf("after RemoveToken: status = %d, want 401", r.status)
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	const path = "/repos/acme/app/actions/secrets/WIZARD_REFRESH_TOKEN"
	tests := []struct {
		name        string
		fault       Fault
		requests    int
		wantStatus  []int
		wantHeaders map[string]string
		wantMsg     string
		wantDocs    string
	}{
		{
			name:       "502 twice then succeed",
			fault:      ServerError(RoutePutRepoSecret, 502).ForName("wizard_refresh_token").FirstN(2),
			requests:   4,
			wantStatus: []int{502, 502, 201, 204},
			wantMsg:    "Bad Gateway",
		},
		{
			name:       "always",
			fault:      ServerError(RoutePutRepoSecret, 503),
			requests:   3,
			wantStatus: []int{503, 503, 503},
		},
		{
			name:       "other name unaffected",
			fault:      ServerError(RoutePutRepoSecret, 500).ForName("OTHER"),
			requests:   2,
			wantStatus: []int{201, 204},
		},
		{
			name:       "other route unaffected",
			fault:      ServerError(RoutePutEnvSecret, 500),
			requests:   1,
			wantStatus: []int{201},
		},
		{
			name:        "secondary rate limit",
			fault:       SecondaryRateLimit(RoutePutRepoSecret, 1500*time.Millisecond).FirstN(1),
			requests:    2,
			wantStatus:  []int{403, 201},
			wantHeaders: map[string]string{"Retry-After": "2"},
			wantMsg:     "You have exceeded a secondary rate limit",
			wantDocs:    SecondaryRateLimitDocs,
		},
		{
			name:        "primary rate limit",
			fault:       PrimaryRateLimit(RoutePutRepoSecret, t0.Add(time.Hour)).FirstN(1),
			requests:    2,
			wantStatus:  []int{403, 201},
			wantHeaders: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Limit": "5000", "X-RateLimit-Reset": fmt.Sprint(t0.Add(time.Hour).Unix())},
			wantMsg:     "API rate limit exceeded for",
			wantDocs:    PrimaryRateLimitDocs,
		},
		{
			name:       "bad credentials",
			fault:      BadCredentials(RoutePutRepoSecret).FirstN(1),
			requests:   2,
			wantStatus: []int{401, 201},
			wantMsg:    "Bad credentials",
		},
		{
			name:        "custom status headers body",
			fault:       Fault{Route: RoutePutRepoSecret, Times: 1, Status: 429, Headers: map[string]string{"Content-Type": "text/plain"}, Body: "slow down {request_id}"},
			requests:    2,
			wantStatus:  []int{429, 201},
			wantHeaders: map[string]string{"Content-Type": "text/plain"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id := f.e.Inject(tc.fault)
			var got []int
			var first reply
			for i := 0; i < tc.requests; i++ {
				r := f.do(t, http.MethodPut, path, "full", f.sealed(t, repoKeyPath, fmt.Sprint("v", i)))
				if i == 0 {
					first = r
				}
				got = append(got, r.status)
			}
			if !reflect.DeepEqual(got, tc.wantStatus) {
				t.Fatalf("statuses = %v, want %v", got, tc.wantStatus)
			}
			for k, want := range tc.wantHeaders {
				if got := first.header.Get(k); got != want {
					t.Errorf("header %s = %q, want %q", k, got, want)
				}
			}
			if tc.wantMsg != "" {
				if got := first.message(t); !strings.Contains(got, tc.wantMsg) {
					t.Errorf("message = %q, want it to contain %q", got, tc.wantMsg)
				}
			}
			if tc.wantDocs != "" {
				if got := first.json(t)["documentation_url"]; got != tc.wantDocs {
					t.Errorf("documentation_url = %v, want %q", got, tc.wantDocs)
				}
			}
			if strings.HasPrefix(string(first.body), "slow down") {
				if got, want := string(first.body), "slow down "+first.header.Get("X-GitHub-Request-Id"); got != want {
					t.Errorf("body = %q, want %q", got, want)
				}
			}
			wantHits := 0
			for _, s := range tc.wantStatus {
				if s >= 400 {
					wantHits++
				}
			}
			if got := f.e.Hits(id); got != wantHits {
				t.Errorf("Hits = %d, want %d", got, wantHits)
			}
		})
	}
}

// TestRateLimitShapesMatchGoGithub checks the answers against the rules
// go-github v62 uses (CheckResponse): a 403 whose documentation_url ends in
// "secondary-rate-limits" is an AbuseRateLimitError; a 403 with
// x-ratelimit-remaining 0 is a RateLimitError.
func TestRateLimitShapesMatchGoGithub(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.Inject(SecondaryRateLimit(RouteGetRepo, time.Second).FirstN(1))
	f.e.Inject(PrimaryRateLimit(RouteGetRepo, t0).FirstN(1))
	r := f.do(t, http.MethodGet, "/repos/acme/app", "full", nil)
	docs, _ := r.json(t)["documentation_url"].(string)
	if r.status != 403 || !strings.HasSuffix(docs, "secondary-rate-limits") || r.header.Get("X-RateLimit-Remaining") == "0" {
		t.Errorf("secondary: status %d, docs %q, remaining %q", r.status, docs, r.header.Get("X-RateLimit-Remaining"))
	}
	r = f.do(t, http.MethodGet, "/repos/acme/app", "full", nil)
	if r.status != 403 || r.header.Get("X-RateLimit-Remaining") != "0" {
		t.Errorf("primary: status %d, remaining %q", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
}

func TestFaultDelay(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.Inject(Slow(RouteGetRepo, 80*time.Millisecond).FirstN(1))
	start := time.Now()
	r := f.do(t, http.MethodGet, "/repos/acme/app", "full", nil)
	if elapsed := time.Since(start); elapsed < 80*time.Millisecond {
		t.Errorf("elapsed = %v, want >= 80ms", elapsed)
	}
	if got, want := r.status, http.StatusOK; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	log := f.e.Requests()
	if got := log[len(log)-1]; !got.Faulted || got.End.Sub(got.Start) < 80*time.Millisecond {
		t.Errorf("log entry = %+v, want Faulted and >= 80ms", got)
	}
}

func TestDropConnection(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		commit     bool
		wantStored bool
	}{
		{"dropped before processing", false, false},
		{"dropped after commit", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			f.e.Inject(Fault{Route: RoutePutRepoSecret, Times: 1, DropConnection: true, Commit: tc.commit})
			body, _ := json.Marshal(f.sealed(t, repoKeyPath, "v"))
			req, _ := http.NewRequest(http.MethodPut, f.srv.URL+"/repos/acme/app/actions/secrets/X", bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer full")
			if resp, err := f.srv.Client().Do(req); err == nil {
				resp.Body.Close()
				t.Fatalf("PUT answered %d, want a transport error", resp.StatusCode)
			}
			_, stored := f.e.Secret(RepoScope(testRepo), "X")
			if got, want := stored, tc.wantStored; got != want {
				t.Errorf("stored = %v, want %v", got, want)
			}
			log := f.e.Requests()
			if got := log[len(log)-1]; !got.Dropped || got.Status != 0 || got.Route != RoutePutRepoSecret {
				t.Errorf("log entry = %+v, want Dropped, Status 0", got)
			}
			wantStatus := http.StatusCreated
			if tc.wantStored {
				wantStatus = http.StatusNoContent
			}
			if r := f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/X", "full", f.sealed(t, repoKeyPath, "v2")); r.status != wantStatus {
				t.Errorf("retry status = %d, want %d", r.status, wantStatus)
			}
		})
	}
}

func TestCommitFaultKeepsWrite(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.Inject(ServerError(RoutePutRepoSecret, 502).FirstN(1))
	f.e.ClearFaults()
	f.e.Inject(Fault{Route: RoutePutRepoSecret, Times: 1, Status: 504, Commit: true})
	r := f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/X", "full", f.sealed(t, repoKeyPath, "kept"))
	if got, want := r.status, http.StatusGatewayTimeout; got != want {
		t.Fatalf("status = %d, want %d", got, want)
	}
	if s, ok := f.e.Secret(RepoScope(testRepo), "X"); !ok || s.Value != "kept" {
		t.Errorf("Secret = %+v, %v; want value kept", s, ok)
	}
	if got := f.e.Hits(0); got != 0 {
		t.Errorf("Hits of cleared fault = %d, want 0", got)
	}
}

func TestRotateKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	stale := f.sealed(t, repoKeyPath, "old")
	oldID, oldKey := f.e.PublicKey(RepoScope(testRepo))
	f.e.RotateKey(RepoScope(testRepo))
	newID, newKey := f.e.PublicKey(RepoScope(testRepo))
	if newID == oldID || newKey == oldKey {
		t.Fatalf("key not rotated: id %s -> %s", oldID, newID)
	}
	r := f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/X", "full", stale)
	if got, want := r.status, http.StatusUnprocessableEntity; got != want {
		t.Fatalf("stale key: status = %d, want %d", got, want)
	}
	if got := r.message(t); got != improperlyEncrypted {
		t.Errorf("stale key: message = %q", got)
	}
	// Right key id but a value sealed for the old key.
	r = f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/X", "full", map[string]any{"encrypted_value": stale["encrypted_value"], "key_id": newID})
	if got, want := r.status, http.StatusUnprocessableEntity; got != want {
		t.Errorf("old ciphertext, new key id: status = %d, want %d", got, want)
	}
	if r := f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/X", "full", f.sealed(t, repoKeyPath, "new")); r.status != http.StatusCreated {
		t.Errorf("fresh key: status = %d, want 201", r.status)
	}
	if s, _ := f.e.Secret(RepoScope(testRepo), "X"); s.Value != "new" {
		t.Errorf("value = %q, want new", s.Value)
	}
}

func TestPublicKeyOverride(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	short := base64.StdEncoding.EncodeToString([]byte("too short"))
	f.e.SetPublicKeyOverride(RepoScope(testRepo), short, "777")
	r := f.do(t, http.MethodGet, repoKeyPath, "full", nil)
	if got, want := r.json(t), map[string]any{"key_id": "777", "key": short}; !reflect.DeepEqual(got, want) {
		t.Errorf("public key = %v, want %v", got, want)
	}
	f.e.RotateKey(RepoScope(testRepo))
	if id, _ := f.e.PublicKey(RepoScope(testRepo)); id == "777" {
		t.Error("RotateKey kept the override")
	}
}

func TestDeterministicKeys(t *testing.T) {
	t.Parallel()
	seed := func() io.Reader { return bytes.NewReader(bytes.Repeat([]byte{7}, 1<<12)) }
	a, b := New(WithRand(seed())), New(WithRand(seed()))
	a.AddRepo(testRepo, 1)
	b.AddRepo(testRepo, 1)
	idA, keyA := a.PublicKey(RepoScope(testRepo))
	idB, keyB := b.PublicKey(RepoScope(testRepo))
	if idA != idB || keyA != keyB {
		t.Errorf("keys differ with the same randomness: %s/%s vs %s/%s", idA, keyA, idB, keyB)
	}
}

func TestEnvironmentSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	repoID, _ := f.e.PublicKey(RepoScope(testRepo))
	envID, _ := f.e.PublicKey(EnvScope(testRepo, testEnv))
	if repoID == envID {
		t.Fatal("environment shares the repository key")
	}
	tests := []struct {
		name       string
		path       string
		token      string
		body       map[string]any
		wantStatus int
	}{
		{"owner/repo form", "/repos/acme/app/environments/prod/secrets/TOKEN", "full", f.sealed(t, envKeyPath, "env-v1"), 201},
		{"legacy repository id form", "/repositories/101/environments/prod/secrets/TOKEN", "full", f.sealed(t, "/repositories/101/environments/prod/secrets/public-key", "env-v2"), 204},
		{"environment name case-insensitive", "/repos/acme/app/environments/PROD/secrets/TOKEN", "envs", f.sealed(t, envKeyPath, "env-v3"), 204},
		{"repository key for environment", "/repos/acme/app/environments/prod/secrets/TOKEN", "full", f.sealed(t, repoKeyPath, "wrong"), 422},
		{"unknown environment", "/repos/acme/app/environments/staging/secrets/TOKEN", "full", f.sealed(t, envKeyPath, "x"), 404},
		{"unknown repository id", "/repositories/999/environments/prod/secrets/TOKEN", "full", f.sealed(t, envKeyPath, "x"), 404},
		{"secrets permission is not enough", "/repos/acme/app/environments/prod/secrets/TOKEN", "secrets", f.sealed(t, envKeyPath, "x"), 403},
	}
	for _, tc := range tests {
		r := f.do(t, http.MethodPut, tc.path, tc.token, tc.body)
		if got, want := r.status, tc.wantStatus; got != want {
			t.Errorf("%s: status = %d, want %d (%s)", tc.name, got, want, r.body)
		}
	}
	if s, _ := f.e.Secret(EnvScope(testRepo, "Prod"), "token"); s.Value != "env-v3" {
		t.Errorf("environment value = %q, want env-v3", s.Value)
	}
	if _, ok := f.e.Secret(RepoScope(testRepo), "TOKEN"); ok {
		t.Error("environment secret leaked into repository scope")
	}
	r := f.do(t, http.MethodGet, "/repos/acme/app/environments/prod/secrets/token", "full", nil)
	if got := r.json(t); r.status != 200 || got["name"] != "TOKEN" {
		t.Errorf("GET env secret = %d %v", r.status, got)
	}
	if r := f.do(t, http.MethodGet, "/repos/acme/app/environments/nope/secrets/public-key", "full", nil); r.status != 404 {
		t.Errorf("public key of unknown environment = %d, want 404", r.status)
	}
}

func TestOrgSecrets(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const path = "/orgs/acme/actions/secrets/SHARED"
	put := func(extra map[string]any) reply {
		body := f.sealed(t, orgKeyPath, "org-value")
		for k, v := range extra {
			body[k] = v
		}
		return f.do(t, http.MethodPut, path, "full", body)
	}
	steps := []struct {
		name         string
		extra        map[string]any
		wantStatus   int
		wantVis      string
		wantSelected []int64
		wantList     int // status of GET …/repositories
	}{
		{"visibility required", nil, 422, "", nil, 404},
		{"visibility enum", map[string]any{"visibility": "public"}, 422, "", nil, 404},
		{"ids need selected", map[string]any{"visibility": "all", "selected_repository_ids": []int64{101}}, 422, "", nil, 404},
		{"unknown repository id", map[string]any{"visibility": "selected", "selected_repository_ids": []int64{201}}, 422, "", nil, 404},
		{"create selected", map[string]any{"visibility": "selected", "selected_repository_ids": []int64{101, 102}}, 201, "selected", []int64{101, 102}, 200},
		{"update keeping ids", map[string]any{"visibility": "selected", "selected_repository_ids": []int64{102}}, 204, "selected", []int64{102}, 200},
		{"update omitting ids clears them", map[string]any{"visibility": "selected"}, 204, "selected", []int64{}, 200},
		{"update to private", map[string]any{"visibility": "private"}, 204, "private", nil, 409},
	}
	for _, st := range steps {
		r := put(st.extra)
		if got, want := r.status, st.wantStatus; got != want {
			t.Fatalf("%s: status = %d, want %d (%s)", st.name, got, want, r.body)
		}
		if st.wantStatus < 300 {
			s, _ := f.e.Secret(OrgScope(testOrg), "SHARED")
			if s.Visibility != st.wantVis || !reflect.DeepEqual(s.SelectedRepositoryIDs, st.wantSelected) || s.Value != "org-value" {
				t.Errorf("%s: secret = %+v, want visibility %s ids %v", st.name, s, st.wantVis, st.wantSelected)
			}
		}
		list := f.do(t, http.MethodGet, path+"/repositories", "orgread", nil)
		if got, want := list.status, st.wantList; got != want {
			t.Errorf("%s: list status = %d, want %d (%s)", st.name, got, want, list.body)
		}
		if list.status == 200 {
			m := list.json(t)
			if got, want := m["total_count"], float64(len(st.wantSelected)); got != want {
				t.Errorf("%s: total_count = %v, want %v", st.name, got, want)
			}
		}
	}

	f.e.SetOrgSecretAccess(testOrg, "shared", "selected", 101)
	r := f.do(t, http.MethodGet, path, "orgread", nil)
	want := map[string]any{"name": "SHARED", "created_at": ts(t0), "updated_at": ts(t0), "visibility": "selected",
		"selected_repositories_url": f.srv.URL + "/orgs/acme/actions/secrets/SHARED/repositories"}
	if got := r.json(t); !reflect.DeepEqual(got, want) {
		t.Errorf("GET org secret = %v, want %v", got, want)
	}
	list := f.do(t, http.MethodGet, path+"/repositories", "orgread", nil).json(t)
	repos := list["repositories"].([]any)
	if got := repos[0].(map[string]any)["full_name"]; len(repos) != 1 || got != testRepo {
		t.Errorf("repositories = %v, want [%s]", repos, testRepo)
	}
}

func TestVariables(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	tests := []struct {
		name         string
		method, path string
		token        string
		body         any
		wantStatus   int
		wantMsg      string
	}{
		{"create", "POST", "/repos/acme/app/actions/variables", "vars", map[string]any{"name": "last_refresh", "value": "v1"}, 201, ""},
		{"create again", "POST", "/repos/acme/app/actions/variables", "vars", map[string]any{"name": "LAST_REFRESH", "value": "v2"}, 409, "Already exists - Variable already exists"},
		{"create missing value", "POST", "/repos/acme/app/actions/variables", "vars", map[string]any{"name": "X"}, 422, `"value" wasn't supplied`},
		{"create bad name", "POST", "/repos/acme/app/actions/variables", "vars", map[string]any{"name": "GITHUB_X", "value": "v"}, 422, "must not start with GITHUB_"},
		{"create too large", "POST", "/repos/acme/app/actions/variables", "vars", map[string]any{"name": "BIG", "value": strings.Repeat("x", MaxValueBytes+1)}, 422, "48 KB"},
		{"create without permission", "POST", "/repos/acme/app/actions/variables", "secrets", map[string]any{"name": "X", "value": "v"}, 403, "Resource not accessible"},
		{"update", "PATCH", "/repos/acme/app/actions/variables/Last_Refresh", "vars", map[string]any{"value": "v3"}, 204, ""},
		{"update missing", "PATCH", "/repos/acme/app/actions/variables/NOPE", "vars", map[string]any{"value": "v"}, 404, "Not Found"},
		{"get missing", "GET", "/repos/acme/app/actions/variables/NOPE", "vars", nil, 404, "Not Found"},
		{"env create", "POST", "/repos/acme/app/environments/prod/variables", "envs", map[string]any{"name": "E", "value": "e1"}, 201, ""},
		{"env update", "PATCH", "/repos/acme/app/environments/prod/variables/E", "envs", map[string]any{"value": "e2"}, 204, ""},
		{"env unknown", "POST", "/repos/acme/app/environments/qa/variables", "envs", map[string]any{"name": "E", "value": "e1"}, 404, "Not Found"},
		{"env needs environments permission", "POST", "/repos/acme/app/environments/prod/variables", "vars", map[string]any{"name": "F", "value": "f"}, 403, "Resource not accessible"},
	}
	for _, tc := range tests {
		r := f.do(t, tc.method, tc.path, tc.token, tc.body)
		if got, want := r.status, tc.wantStatus; got != want {
			t.Errorf("%s: status = %d, want %d (%s)", tc.name, got, want, r.body)
			continue
		}
		if tc.wantMsg != "" && !strings.Contains(r.message(t), tc.wantMsg) {
			t.Errorf("%s: message = %q, want %q", tc.name, r.message(t), tc.wantMsg)
		}
	}
	r := f.do(t, http.MethodGet, "/repos/acme/app/actions/variables/last_refresh", "vars", nil)
	want := map[string]any{"name": "LAST_REFRESH", "value": "v3", "created_at": ts(t0), "updated_at": ts(t0)}
	if got := r.json(t); !reflect.DeepEqual(got, want) {
		t.Errorf("GET variable = %v, want %v", got, want)
	}
	if got, ok := f.e.Variable(EnvScope(testRepo, testEnv), "e"); !ok || got != "e2" {
		t.Errorf("env variable = %q, %v; want e2", got, ok)
	}
	f.e.SetVariable(RepoScope(testRepo), "seeded", "s")
	if r := f.do(t, http.MethodGet, "/repos/acme/app/actions/variables/SEEDED", "vars", nil); r.json(t)["value"] != "s" {
		t.Errorf("seeded variable = %s", r.body)
	}
}

func TestRunsAndRepo(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	r := f.do(t, http.MethodGet, "/repos/acme/app/actions/runs/9001", "full", nil)
	m := r.json(t)
	if r.status != 200 || m["id"] != float64(9001) || m["run_started_at"] != ts(t0.Add(-2*time.Minute)) {
		t.Errorf("GET run = %d %v", r.status, m)
	}
	if r := f.do(t, http.MethodGet, "/repos/acme/app/actions/runs/1", "full", nil); r.status != 404 {
		t.Errorf("GET missing run = %d, want 404", r.status)
	}
	if r := f.do(t, http.MethodGet, "/repos/acme/app/actions/runs/abc", "full", nil); r.status != 404 {
		t.Errorf("GET run abc = %d, want 404", r.status)
	}
	m = f.do(t, http.MethodGet, "/repos/acme/app", "full", nil).json(t)
	if m["id"] != float64(101) || m["full_name"] != testRepo {
		t.Errorf("GET repo = %v", m)
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithLatency(60*time.Millisecond))
	start := time.Now()
	f.do(t, http.MethodGet, "/repos/acme/app", "full", nil)
	if elapsed := time.Since(start); elapsed < 60*time.Millisecond {
		t.Errorf("elapsed = %v, want >= 60ms", elapsed)
	}
}

func TestRateLimitHeadersAndEnforcement(t *testing.T) {
	t.Parallel()
	f := newFixture(t, WithRateLimit(2))
	var ids []string
	var statuses []int
	var remaining []string
	for i := 0; i < 3; i++ {
		r := f.do(t, http.MethodGet, "/repos/acme/app", "full", nil)
		ids = append(ids, r.header.Get("X-GitHub-Request-Id"))
		statuses = append(statuses, r.status)
		remaining = append(remaining, r.header.Get("X-RateLimit-Remaining"))
		if got, want := r.header.Get("X-RateLimit-Reset"), fmt.Sprint(t0.Add(time.Hour).Unix()); got != want {
			t.Errorf("reset = %q, want %q", got, want)
		}
	}
	if want := []int{200, 200, 403}; !reflect.DeepEqual(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
	if want := []string{"1", "0", "0"}; !reflect.DeepEqual(remaining, want) {
		t.Errorf("remaining = %v, want %v", remaining, want)
	}
	if ids[0] == "" || ids[0] == ids[1] {
		t.Errorf("request ids = %v, want distinct", ids)
	}
	// Other tokens have their own budget; the window resets after an hour.
	if r := f.do(t, http.MethodGet, "/repos/acme/app", "meta", nil); r.status != 200 {
		t.Errorf("other token: %d", r.status)
	}
	f.clock.advance(time.Hour)
	if r := f.do(t, http.MethodGet, "/repos/acme/app", "full", nil); r.status != 200 || r.header.Get("X-RateLimit-Remaining") != "1" {
		t.Errorf("after reset: %d remaining %s", r.status, r.header.Get("X-RateLimit-Remaining"))
	}
}

func TestRequestLog(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	const plaintext = "super-secret-plaintext"
	body := f.sealed(t, repoKeyPath, plaintext)
	f.do(t, http.MethodPut, "/repos/acme/app/actions/secrets/tok", "full", body)
	f.do(t, http.MethodPost, "/repos/acme/app/actions/variables", "vars", map[string]any{"name": "v", "value": plaintext})
	f.do(t, http.MethodGet, "/nowhere", "", nil)

	log := f.e.Requests()
	type row struct {
		Method, Route, Name, KeyID, Token string
		Status                            int
	}
	var got []row
	for _, r := range log {
		got = append(got, row{r.Method, r.Route, r.Name, r.KeyID, r.Token, r.Status})
		if r.Start.IsZero() || r.End.Before(r.Start) {
			t.Errorf("bad times in %+v", r)
		}
	}
	want := []row{
		{"GET", RouteGetRepoPublicKey, "", "", "full", 200},
		{"PUT", RoutePutRepoSecret, "TOK", body["key_id"].(string), "full", 201},
		{"POST", RouteCreateRepoVariable, "V", "", "vars", 201},
		{"GET", RouteUnknown, "", "", "", 404},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("log =\n%+v\nwant\n%+v", got, want)
	}
	if dump := fmt.Sprintf("%+v", log); strings.Contains(dump, plaintext) {
		t.Error("request log contains a plaintext value")
	}
	f.e.ResetRequests()
	if got := len(f.e.Requests()); got != 0 {
		t.Errorf("after ResetRequests: %d entries", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.Inject(ServerError(RoutePutRepoSecret, 500).FirstN(5))
	var wg sync.WaitGroup
	var mu sync.Mutex
	failures := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f.do(t, http.MethodPut, fmt.Sprintf("/repos/acme/app/actions/secrets/S%d", i), "full", f.sealed(t, repoKeyPath, "v"))
			if r.status == 500 {
				mu.Lock()
				failures++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if failures != 5 {
		t.Errorf("failures = %d, want exactly 5", failures)
	}
}

func TestSeededSecret(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.e.SetSecret(RepoScope(testRepo), "seeded", "p", t0.Add(-24*time.Hour))
	r := f.do(t, http.MethodGet, "/repos/acme/app/actions/secrets/SEEDED", "full", nil)
	if got, want := r.json(t)["updated_at"], ts(t0.Add(-24*time.Hour)); got != want {
		t.Errorf("updated_at = %v, want %v", got, want)
	}
	f.e.SetSecret(OrgScope(testOrg), "o", "p", t0)
	if s, _ := f.e.Secret(OrgScope(testOrg), "O"); s.Visibility != "private" {
		t.Errorf("seeded org secret visibility = %q, want private", s.Visibility)
	}
}

// BenchmarkPutSecret measures a public-key fetch plus a sealed PUT through HTTP.
func BenchmarkPutSecret(b *testing.B) {
	e := New(WithRateLimit(0))
	e.AddRepo(testRepo, 1)
	e.AddToken("full", AllPermissions())
	srv := httptest.NewServer(e)
	defer srv.Close()
	keyID, key := e.PublicKey(RepoScope(testRepo))
	raw, _ := base64.StdEncoding.DecodeString(key)
	var pk [32]byte
	copy(pk[:], raw)
	for b.Loop() {
		sealed, _ := box.SealAnonymous(nil, []byte("value"), &pk, rand.Reader)
		body, _ := json.Marshal(map[string]string{"encrypted_value": base64.StdEncoding.EncodeToString(sealed), "key_id": keyID})
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/repos/acme/app/actions/secrets/TOKEN", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer full")
		resp, err := srv.Client().Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

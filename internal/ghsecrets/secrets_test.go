package ghsecrets

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/nacl/box"
)

// registry is a strict fake API: every request must match a registered
// stub, and every stub must be used (like cli/cli's httpmock registry).
type registry struct {
	t     *testing.T
	mu    sync.Mutex
	stubs []*stub
}

type stub struct {
	method, path string
	times        int // how many requests it answers
	used         int
	respond      func(w http.ResponseWriter, body []byte)
}

func newRegistry(t *testing.T) (*registry, *httptest.Server) {
	reg := &registry{t: t}
	srv := httptest.NewServer(reg)
	t.Cleanup(func() {
		srv.Close()
		reg.mu.Lock()
		defer reg.mu.Unlock()
		for _, s := range reg.stubs {
			if s.used != s.times {
				t.Errorf("stub %s %s used %d times, want %d", s.method, s.path, s.used, s.times)
			}
		}
	})
	return reg, srv
}

func (r *registry) on(method, path string, times int, respond func(w http.ResponseWriter, body []byte)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stubs = append(r.stubs, &stub{method: method, path: path, times: times, respond: respond})
}

func (r *registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if got, want := req.Header.Get("Authorization"), "Bearer pat-1"; got != want {
		r.t.Errorf("%s %s: Authorization = %q, want %q", req.Method, req.URL.Path, got, want)
	}
	r.mu.Lock()
	var match *stub
	for _, s := range r.stubs {
		if s.method == req.Method && s.path == req.URL.Path && s.used < s.times {
			match = s
			s.used++
			break
		}
	}
	r.mu.Unlock()
	if match == nil {
		r.t.Errorf("unexpected request %s %s", req.Method, req.URL.Path)
		http.Error(w, `{"message":"unexpected"}`, http.StatusTeapot)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	match.respond(w, body)
}

func jsonAnswer(status int, v any) func(http.ResponseWriter, []byte) {
	return func(w http.ResponseWriter, _ []byte) {
		w.WriteHeader(status)
		if v != nil {
			json.NewEncoder(w).Encode(v)
		}
	}
}

type keyPair struct {
	id        string
	pub, priv *[32]byte
}

func newKey(t *testing.T, id string) keyPair {
	pub, priv, err := box.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{id: id, pub: pub, priv: priv}
}

func (k keyPair) answer() func(http.ResponseWriter, []byte) {
	return jsonAnswer(200, map[string]string{"key_id": k.id, "key": base64.StdEncoding.EncodeToString(k.pub[:])})
}

// putChecker decrypts a PUT body with k and records the plaintext.
func putChecker(t *testing.T, k keyPair, status int, got *sync.Map, name string) func(http.ResponseWriter, []byte) {
	return func(w http.ResponseWriter, body []byte) {
		var p struct {
			KeyID          string `json:"key_id"`
			EncryptedValue string `json:"encrypted_value"`
		}
		if err := json.Unmarshal(body, &p); err != nil {
			t.Errorf("PUT %s body: %v", name, err)
		}
		if p.KeyID != k.id {
			t.Errorf("PUT %s key_id = %q, want %q", name, p.KeyID, k.id)
		}
		ct, _ := base64.StdEncoding.DecodeString(p.EncryptedValue)
		plain, ok := box.OpenAnonymous(nil, ct, k.pub, k.priv)
		if !ok {
			t.Errorf("PUT %s: ciphertext does not open with key %s", name, k.id)
		}
		got.Store(name, string(plain))
		w.WriteHeader(status)
	}
}

func newClient(t *testing.T, url string) *Client {
	t.Helper()
	c, err := New(Options{APIURL: url, Token: "pat-1", WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond, MaxAttempts: 3, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var repo = Target{Owner: "amplitude", Repo: "wizard"}

func TestWriteAllSealsWithTheOneKey(t *testing.T) {
	t.Parallel()
	reg, srv := newRegistry(t)
	k := newKey(t, "key-1")
	var got sync.Map
	reg.on("GET", "/repos/amplitude/wizard/actions/secrets/public-key", 1, k.answer())
	reg.on("PUT", "/repos/amplitude/wizard/actions/secrets/WIZARD_REFRESH_TOKEN", 1, putChecker(t, k, 204, &got, "rt"))
	reg.on("PUT", "/repos/amplitude/wizard/actions/secrets/WIZARD_OAUTH_TOKEN", 1, putChecker(t, k, 201, &got, "at"))
	reg.on("PUT", "/repos/amplitude/wizard/actions/secrets/WIZARD_EXPIRES_AT", 1, putChecker(t, k, 204, &got, "exp"))

	c := newClient(t, srv.URL)
	key, err := c.PublicKey(context.Background(), repo)
	if err != nil {
		t.Fatal(err)
	}
	res := c.WriteAll(context.Background(), repo, key, []Value{
		{Name: "WIZARD_REFRESH_TOKEN", Value: "rt-2"},
		{Name: "WIZARD_OAUTH_TOKEN", Value: "at-2"},
		{Name: "WIZARD_EXPIRES_AT", Value: "2026-01-01T00:00:00Z"},
	})
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
	}
	for name, want := range map[string]string{"rt": "rt-2", "at": "at-2", "exp": "2026-01-01T00:00:00Z"} {
		if v, _ := got.Load(name); v != want {
			t.Errorf("%s stored %v, want %q", name, v, want)
		}
	}
}

func TestEnvironmentAndOrgPaths(t *testing.T) {
	t.Parallel()
	cases := []struct {
		target Target
		prefix string
		vis    string
	}{
		{Target{Owner: "amplitude", Repo: "wizard", Environment: "prod env"}, "/repos/amplitude/wizard/environments/prod env/secrets", ""},
		{Target{Org: "amplitude", Visibility: "private"}, "/orgs/amplitude/actions/secrets", "private"},
	}
	for _, tc := range cases {
		t.Run(tc.prefix, func(t *testing.T) {
			t.Parallel()
			reg, srv := newRegistry(t)
			k := newKey(t, "k")
			reg.on("GET", tc.prefix+"/public-key", 1, k.answer())
			reg.on("PUT", tc.prefix+"/S", 1, func(w http.ResponseWriter, body []byte) {
				var p map[string]any
				json.Unmarshal(body, &p)
				if got, _ := p["visibility"].(string); got != tc.vis {
					t.Errorf("visibility = %q, want %q", got, tc.vis)
				}
				w.WriteHeader(201)
			})
			c := newClient(t, srv.URL)
			key, err := c.PublicKey(context.Background(), tc.target)
			if err != nil {
				t.Fatal(err)
			}
			if r := c.WriteAll(context.Background(), tc.target, key, []Value{{Name: "S", Value: "v"}}); r[0].Err != nil {
				t.Fatal(r[0].Err)
			}
		})
	}
}

func TestWriteRefetchesKeyOnceAfter422(t *testing.T) {
	t.Parallel()
	reg, srv := newRegistry(t)
	oldKey, newK := newKey(t, "old"), newKey(t, "new")
	var got sync.Map
	reg.on("GET", "/repos/amplitude/wizard/actions/secrets/public-key", 1, newK.answer())
	for _, name := range []string{"A", "B"} {
		reg.on("PUT", "/repos/amplitude/wizard/actions/secrets/"+name, 1, jsonAnswer(422, map[string]string{"message": "Bad request - key_id does not match"}))
		reg.on("PUT", "/repos/amplitude/wizard/actions/secrets/"+name, 1, putChecker(t, newK, 204, &got, name))
	}
	c := newClient(t, srv.URL)
	key := PublicKey{ID: oldKey.id, Key: *oldKey.pub}
	res := c.WriteAll(context.Background(), repo, key, []Value{{Name: "A", Value: "a"}, {Name: "B", Value: "b"}})
	for _, r := range res {
		if r.Err != nil || !r.Refetched || r.KeyID != "new" || r.Attempts != 2 {
			t.Errorf("%s: err=%v refetched=%v key=%s attempts=%d", r.Name, r.Err, r.Refetched, r.KeyID, r.Attempts)
		}
	}
}

func TestWriteIsolatesFailures(t *testing.T) {
	t.Parallel()
	reg, srv := newRegistry(t)
	k := newKey(t, "k")
	var got sync.Map
	// The access-token write fails for good (3 attempts); the refresh-token
	// write must still happen.
	reg.on("PUT", "/repos/amplitude/wizard/actions/secrets/AT", 3, jsonAnswer(502, map[string]string{"message": "Bad gateway"}))
	reg.on("PUT", "/repos/amplitude/wizard/actions/secrets/RT", 1, putChecker(t, k, 204, &got, "RT"))
	c := newClient(t, srv.URL)
	res := c.WriteAll(context.Background(), repo, PublicKey{ID: k.id, Key: *k.pub}, []Value{{Name: "RT", Value: "rt"}, {Name: "AT", Value: "at"}})
	if res[0].Err != nil {
		t.Errorf("RT: %v", res[0].Err)
	}
	if got := KindOf(res[1].Err); got != KindUnavailable {
		t.Errorf("AT kind = %v, want KindUnavailable (%v)", got, res[1].Err)
	}
	var e *Error
	if errors.As(res[1].Err, &e); e == nil || e.Status != 502 || e.Attempts != 3 {
		t.Errorf("AT error = %+v, want status 502 after 3 attempts", e)
	}
}

func TestErrorKinds(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		status int
		header map[string]string
		body   map[string]string
		times  int
		want   ErrorKind
	}{
		{"401", 401, nil, map[string]string{"message": "Bad credentials"}, 1, KindUnauthorized},
		{"403", 403, nil, map[string]string{"message": "Resource not accessible by personal access token"}, 1, KindForbidden},
		{"404", 404, nil, map[string]string{"message": "Not Found"}, 1, KindNotFound},
		{"secondary rate limit over cap", 403, map[string]string{"Retry-After": "3600"}, map[string]string{"message": "You have exceeded a secondary rate limit"}, 1, KindRateLimited},
		{"primary rate limit over cap", 403, map[string]string{"X-Ratelimit-Remaining": "0", "X-Ratelimit-Reset": fmt.Sprint(time.Now().Add(time.Hour).Unix())}, map[string]string{"message": "API rate limit exceeded"}, 1, KindRateLimited},
		{"5xx", 503, nil, nil, 3, KindUnavailable},
		{"301 moved", 301, map[string]string{"Location": "https://api.github.com/repositories/1"}, nil, 1, KindMoved},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			reg, srv := newRegistry(t)
			reg.on("GET", "/repos/amplitude/wizard/actions/secrets/public-key", tc.times, func(w http.ResponseWriter, _ []byte) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				jsonAnswer(tc.status, tc.body)(w, nil)
			})
			_, err := newClient(t, srv.URL).PublicKey(context.Background(), repo)
			if got := KindOf(err); got != tc.want {
				t.Fatalf("kind = %v, want %v (%v)", got, tc.want, err)
			}
		})
	}
}

func TestRateLimitRecovers(t *testing.T) {
	t.Parallel()
	reg, srv := newRegistry(t)
	k := newKey(t, "k")
	reg.on("GET", "/repos/amplitude/wizard/actions/secrets/public-key", 1, func(w http.ResponseWriter, _ []byte) {
		w.Header().Set("Retry-After", "0")
		jsonAnswer(403, map[string]string{"message": "You have exceeded a secondary rate limit"})(w, nil)
	})
	reg.on("GET", "/repos/amplitude/wizard/actions/secrets/public-key", 1, k.answer())
	if _, err := newClient(t, srv.URL).PublicKey(context.Background(), repo); err != nil {
		t.Fatal(err)
	}
}

func TestBadPublicKey(t *testing.T) {
	t.Parallel()
	reg, srv := newRegistry(t)
	reg.on("GET", "/repos/amplitude/wizard/actions/secrets/public-key", 1, jsonAnswer(200, map[string]string{"key_id": "k", "key": base64.StdEncoding.EncodeToString(make([]byte, 31))}))
	_, err := newClient(t, srv.URL).PublicKey(context.Background(), repo)
	if got := KindOf(err); got != KindBadKey {
		t.Fatalf("kind = %v, want KindBadKey (%v)", got, err)
	}
}

func TestNoCredentialsToOtherHosts(t *testing.T) {
	t.Parallel()
	tr := &authTransport{host: "api.github.com", token: "pat-1", next: http.DefaultTransport}
	req, _ := http.NewRequest("GET", "https://evil.example/x", nil)
	if _, err := tr.RoundTrip(req); err == nil || !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("err = %v, want refusal", err)
	}
}

// TestSealExactCiphertext pins the sealed-box output for a fixed key and a
// fixed random reader (golden file), and checks that it opens.
func TestSealExactCiphertext(t *testing.T) {
	t.Parallel()
	var pub, priv [32]byte
	for i := range priv {
		priv[i] = byte(i + 1)
	}
	p2, pr2, err := box.GenerateKey(bytes.NewReader(priv[:]))
	if err != nil {
		t.Fatal(err)
	}
	pub, priv = *p2, *pr2
	fixed := bytes.NewReader(bytes.Repeat([]byte{0x42}, 64))
	got, err := Seal(fixed, PublicKey{ID: "k", Key: pub}, "ory_rt_golden.value")
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "sealed.golden")
	if os.Getenv("UPDATE_GOLDEN") != "" {
		os.WriteFile(golden, []byte(got+"\n"), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if got != strings.TrimSpace(string(want)) {
		t.Fatalf("ciphertext = %s, want %s", got, want)
	}
	ct, _ := base64.StdEncoding.DecodeString(got)
	plain, ok := box.OpenAnonymous(nil, ct, &pub, &priv)
	if !ok || string(plain) != "ory_rt_golden.value" {
		t.Fatalf("open = %q, %v", plain, ok)
	}
}

func TestRecoveryRecordRoundTrip(t *testing.T) {
	t.Parallel()
	rec := NewRecord(Target{Owner: "o", Repo: "r", Environment: "e"}, "key-9", time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), []Sealed{{Name: "WIZARD_REFRESH_TOKEN", EncryptedValue: base64.StdEncoding.EncodeToString(make([]byte, 60))}})
	line := "::error::blah " + rec.Encode() + " trailing"
	got, err := ParseRecord(line)
	if err != nil {
		t.Fatal(err)
	}
	if got.KeyID != "key-9" || got.Target().Environment != "e" || got.Secrets[0].Name != "WIZARD_REFRESH_TOKEN" {
		t.Fatalf("record = %+v", got)
	}
	for _, bad := range []string{"", "wizard-recovery-v1.", "wizard-recovery-v1.!!!", RecoveryPrefix + base64.RawURLEncoding.EncodeToString([]byte(`{"v":2}`))} {
		if _, err := ParseRecord(bad); err == nil {
			t.Errorf("ParseRecord(%q) succeeded", bad)
		}
	}
}

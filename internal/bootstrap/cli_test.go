package bootstrap

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
)

var repoScope = githubemu.RepoScope(testRepo)

// The tokens of the "us" session fixture.
var usSession = []string{"ory_at_us-access-1001", "ory_rt_us-refresh-1001", "eyJhbGciOiJSUzI1NiJ9.us-id-1001.sig"}

func TestPushFromSessionFile(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.seed("us")
	r := w.run("", "--yes")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out())
	}
	for name, want := range map[string]string{
		"WIZARD_REFRESH_TOKEN": "ory_rt_us-refresh-1001",
		"WIZARD_OAUTH_TOKEN":   "ory_at_us-access-1001",
		"WIZARD_EXPIRES_AT":    "2026-06-01T11:30:00Z",
	} {
		if got := w.secret(repoScope, name); got != want {
			t.Errorf("secret %s = %q, want %q", name, got, want)
		}
	}
	if got, ok := w.gh.Variable(repoScope, "WIZARD_ZONE"); !ok || got != "us" {
		t.Errorf("variable WIZARD_ZONE = %q, %v; want us", got, ok)
	}
	// The refresh token alone first, then the rest, then the variable.
	writes := w.writes()
	if len(writes) != 4 || writes[0] != "PUT WIZARD_REFRESH_TOKEN" || writes[3] != "POST WIZARD_ZONE" {
		t.Errorf("writes = %q, want the refresh token first and the variable last", writes)
	}
	// The preflight preceded every write.
	if got := w.gh.Requests()[0].Route; got != githubemu.RouteGetRepoPublicKey {
		t.Errorf("first request = %s, want the public key", got)
	}
	// Hand-off: the file lost the refresh token and nothing else.
	want, _ := os.ReadFile(filepath.Join(fixtures, "golden", "us.handoff.golden"))
	if got := w.readFile(w.sessionPath()); got != string(want) {
		t.Errorf("session file after the hand-off:\n%s\nwant\n%s", got, want)
	}
	if st, _ := os.Stat(w.sessionPath()); st.Mode().Perm() != 0o600 {
		t.Errorf("session file mode = %v, want 0600", st.Mode().Perm())
	}
	for _, s := range []string{"Handed off", "sign in to the wizard again", "Next:", "WIZARD_SECRET_REFRESH_PAT"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("stdout lacks %q:\n%s", s, r.stdout)
		}
	}
	noSecrets(t, r.out(), append(usSession, testToken)...)
}

func TestPushVariableCreateOrUpdate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		env       string
		seed      string // existing value ("" none)
		wantWrite string
		wantSaid  string
	}{
		{"create", "", "", "POST WIZARD_ZONE", "Created variable WIZARD_ZONE"},
		{"update", "", "eu", "PATCH WIZARD_ZONE", "Updated variable WIZARD_ZONE"},
		{"environment create", "ci", "", "POST WIZARD_ZONE", "Created variable WIZARD_ZONE"},
		{"environment update", "ci", "eu", "PATCH WIZARD_ZONE", "Updated variable WIZARD_ZONE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			scope := repoScope
			args := []string{"--yes"}
			if tt.env != "" {
				scope = githubemu.EnvScope(testRepo, tt.env)
				args = append(args, "--environment", tt.env)
			}
			if tt.seed != "" {
				w.gh.SetVariable(scope, "WIZARD_ZONE", tt.seed)
			}
			r := w.run("", args...)
			if r.code != 0 {
				t.Fatalf("exit %d:\n%s", r.code, r.out())
			}
			if got, _ := w.gh.Variable(scope, "WIZARD_ZONE"); got != "us" {
				t.Errorf("variable = %q, want us", got)
			}
			if got := w.writes(); got[len(got)-1] != tt.wantWrite {
				t.Errorf("last write = %q, want %q", got[len(got)-1], tt.wantWrite)
			}
			if !strings.Contains(r.stdout, tt.wantSaid) {
				t.Errorf("stdout lacks %q:\n%s", tt.wantSaid, r.stdout)
			}
			if tt.env != "" && w.secret(scope, "WIZARD_REFRESH_TOKEN") == "" {
				t.Error("the environment secret was not written")
			}
		})
	}
}

func TestPushPATFromStdin(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stdin    string
		args     []string
		noGHTok  bool
		wantCode Code
		wantPAT  string
	}{
		{name: "with --yes", stdin: testPAT + "\n", args: []string{"--pat-stdin", "--yes"}, wantPAT: testPAT},
		{name: "then the confirmation", stdin: testPAT + "\r\ny\n", args: []string{"--pat-stdin"}, wantPAT: testPAT},
		{name: "stdin ends before the confirmation", stdin: testPAT, args: []string{"--pat-stdin"}, wantCode: CodeNotConfirmed},
		{name: "the PAT doubles as the GitHub token", stdin: testToken + "\n", args: []string{"--pat-stdin", "--yes"}, noGHTok: true, wantPAT: testToken},
		{name: "empty stdin", stdin: "", args: []string{"--pat-stdin", "--yes"}, wantCode: CodeBadInput},
		{name: "PAT with a space", stdin: "github_pat_a b\n", args: []string{"--pat-stdin", "--yes"}, wantCode: CodeBadInput},
		{name: "PAT the API refuses", stdin: "github_pat_revoked_000000000000\n", args: []string{"--pat-stdin", "--yes"}, wantCode: CodeGitHubAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			if tt.noGHTok {
				delete(w.env, "GH_TOKEN")
			}
			before := w.readFile(w.sessionPath())
			r := w.run(tt.stdin, tt.args...)
			if r.code != int(tt.wantCode) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, tt.wantCode, r.out())
			}
			noSecrets(t, r.out(), append(usSession, testPAT, testToken, "github_pat_revoked_000000000000")...)
			if tt.wantCode != 0 {
				if got := w.writes(); len(got) != 0 {
					t.Errorf("writes = %q, want none", got)
				}
				if w.readFile(w.sessionPath()) != before {
					t.Error("the session file changed")
				}
				return
			}
			if got := w.secret(repoScope, DefaultPATSecret); got != tt.wantPAT {
				t.Errorf("secret %s = %q, want %q", DefaultPATSecret, got, tt.wantPAT)
			}
			if !tt.noGHTok {
				// The PAT itself was checked against the repository.
				var patUsed bool
				for _, req := range w.gh.Requests() {
					patUsed = patUsed || (req.Token == testPAT && req.Route == githubemu.RouteGetRepoPublicKey)
				}
				if !patUsed {
					t.Error("the PAT was not checked before writing")
				}
			}
		})
	}
}

func TestPushDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"session", []string{"--dry-run"}},
		{"session with --yes", []string{"--dry-run", "--yes", "--pat-stdin"}},
		{"login", []string{"--dry-run", "--login"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			w.browser = func(context.Context, string) error { t.Error("a browser was opened"); return nil }
			before := w.readFile(w.sessionPath())
			r := w.run(testPAT+"\n", tt.args...)
			if r.code != 0 {
				t.Fatalf("exit %d:\n%s", r.code, r.out())
			}
			if got := w.writes(); len(got) != 0 {
				t.Errorf("writes = %q, want none", got)
			}
			if got := w.hy.Requests(); len(got) != 0 {
				t.Errorf("%d requests reached Hydra", len(got))
			}
			if w.readFile(w.sessionPath()) != before {
				t.Error("the session file changed")
			}
			if !strings.Contains(r.stdout, "Dry run") || !strings.Contains(r.stdout, "WIZARD_REFRESH_TOKEN") {
				t.Errorf("stdout lacks the plan:\n%s", r.stdout)
			}
			noSecrets(t, r.out(), append(usSession, testPAT, testToken)...)
		})
	}
}

func TestPushConfirmation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		stdin    string
		wantCode Code
	}{
		{"yes", "y\n", 0},
		{"YES", "YES\n", 0},
		{"no", "n\n", CodeNotConfirmed},
		{"enter", "\n", CodeNotConfirmed},
		{"no answer", "", CodeNotConfirmed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			r := w.run(tt.stdin, "--zone-secret", "--id-token-secret", "wizard_id_token")
			if r.code != int(tt.wantCode) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, tt.wantCode, r.out())
			}
			// The prompt names the repository and every name, never a value.
			for _, s := range []string{"amplitude/wizard", "WIZARD_REFRESH_TOKEN", "WIZARD_OAUTH_TOKEN", "WIZARD_EXPIRES_AT", "WIZARD_ID_TOKEN", "secret    WIZARD_ZONE", "variable  WIZARD_ZONE", "[y/N]"} {
				if !strings.Contains(r.stdout, s) {
					t.Errorf("the prompt lacks %q:\n%s", s, r.stdout)
				}
			}
			noSecrets(t, r.out(), append(usSession, testToken)...)
			wrote := len(w.writes()) > 0
			if wrote != (tt.wantCode == 0) {
				t.Errorf("wrote = %v, want %v", wrote, tt.wantCode == 0)
			}
			if tt.wantCode == 0 {
				if got := w.secret(repoScope, "WIZARD_ID_TOKEN"); got != usSession[2] {
					t.Errorf("id token secret = %q", got)
				}
				if got := w.secret(repoScope, "WIZARD_ZONE"); got != "us" {
					t.Errorf("zone secret = %q", got)
				}
			}
		})
	}
}

func TestInterruptedAtThePrompt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"confirmation", nil},
		{"PAT", []string{"--pat-stdin"}},
		{"restore record", []string{"restore"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			stdin, keep := io.Pipe() // a terminal nobody types into
			defer keep.Close()
			ctx, cancel := context.WithCancel(context.Background())
			var out syncBuffer
			done := make(chan error, 1)
			go func() { done <- Main(ctx, tt.args, w.deps(stdin, &out, &out)) }()
			time.Sleep(50 * time.Millisecond)
			cancel() // Ctrl-C
			select {
			case err := <-done:
				if got, want := ExitCode(err), int(CodeInternal); got != want {
					t.Errorf("exit %d, want %d:\n%s", got, want, out.String())
				}
				if !strings.Contains(out.String(), "interrupted") {
					t.Errorf("output lacks \"interrupted\":\n%s", out.String())
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Ctrl-C at the prompt did not end the CLI")
			}
			if got := w.writes(); len(got) != 0 {
				t.Errorf("writes = %q, want none", got)
			}
		})
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestPushLoginEndToEnd(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		zone string
	}{
		{"us", ""},
		{"eu", "eu"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us") // a laptop session, which the login must not touch
			before := w.readFile(w.sessionPath())
			args := []string{"--login", "--hydra-url", w.hyURL, "--yes"}
			wantZone := "us"
			if tt.zone != "" {
				args = append(args, "--zone", tt.zone)
				wantZone = tt.zone
			}
			r := w.run("", args...)
			if r.code != 0 {
				t.Fatalf("exit %d:\n%s", r.code, r.out())
			}
			rt := w.secret(repoScope, "WIZARD_REFRESH_TOKEN")
			at := w.secret(repoScope, "WIZARD_OAUTH_TOKEN")
			if !w.hy.RefreshTokenUsable(rt) {
				t.Error("the stored refresh token does not work")
			}
			if !w.hy.AccessTokenActive(at) {
				t.Error("the stored access token is not active")
			}
			if w.hy.ChainID(rt) != w.hy.ChainID(at) {
				t.Error("the stored tokens are not of one chain")
			}
			exp, err := inputs.ParseTime(w.secret(repoScope, "WIZARD_EXPIRES_AT"))
			if err != nil || exp.Sub(w.clock.Now()) < 50*time.Minute || exp.Sub(w.clock.Now()) > time.Hour {
				t.Errorf("WIZARD_EXPIRES_AT = %v (%v), want about an hour from now", exp, err)
			}
			if got, _ := w.gh.Variable(repoScope, "WIZARD_ZONE"); got != wantZone {
				t.Errorf("WIZARD_ZONE = %q, want %q", got, wantZone)
			}
			// The right OAuth client signed in.
			zone, _ := inputs.LookupZone(wantZone)
			for _, req := range w.hy.Requests() {
				if req.ClientID != "" && req.ClientID != zone.ClientID {
					t.Errorf("request with client %s, want %s", req.ClientID, zone.ClientID)
				}
			}
			if w.readFile(w.sessionPath()) != before {
				t.Error("the login changed the wizard's session file")
			}
			if len(w.pages) != 1 || !strings.Contains(w.pages[0], "close this tab") {
				t.Errorf("browser pages = %q", w.pages)
			}
			if !strings.Contains(r.stdout, "/oauth2/auth?") {
				t.Errorf("the URL was not printed:\n%s", r.stdout)
			}
			noSecrets(t, r.out(), rt, at, testToken)
			noSecrets(t, strings.Join(w.pages, "\n"), rt, at)
		})
	}
}

func TestPushLoginWithoutBrowser(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// xdg-open is missing: the URL is printed and the user opens it.
	w.browser = func(ctx context.Context, u string) error {
		go w.follow(context.Background(), u)
		return os.ErrNotExist
	}
	r := w.run("", "--login", "--auth-url", w.hyURL+"/oauth2/auth", "--token-url", w.hyURL+"/oauth2/token", "--yes")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out())
	}
	if !strings.Contains(r.stderr, "could not open a browser") {
		t.Errorf("stderr lacks the browser warning:\n%s", r.stderr)
	}
	if !w.hy.RefreshTokenUsable(w.secret(repoScope, "WIZARD_REFRESH_TOKEN")) {
		t.Error("the stored refresh token does not work")
	}
}

func TestPushLoginFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(w *world)
		args     []string
		wantCode Code
	}{
		{"consent denied", func(w *world) { w.hy.DenyAuthorization(true) }, nil, CodeLoginFailed},
		{"unknown client", nil, []string{"--client-id", "not-registered", "--login-timeout", "300ms"}, CodeLoginFailed},
		{"browser never returns", func(w *world) {
			w.browser = func(context.Context, string) error { return nil }
		}, []string{"--login-timeout", "200ms"}, CodeLoginFailed},
		{"token endpoint down", func(w *world) {
			w.hy.Inject(hydraemuFault503())
		}, nil, CodeTokenExchange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			if tt.setup != nil {
				tt.setup(w)
			}
			r := w.run("", append([]string{"--login", "--hydra-url", w.hyURL, "--yes"}, tt.args...)...)
			if r.code != int(tt.wantCode) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, tt.wantCode, r.out())
			}
			if got := w.writes(); len(got) != 0 {
				t.Errorf("writes = %q, want none", got)
			}
			if !strings.Contains(r.stderr, "what to do:") {
				t.Errorf("stderr lacks advice:\n%s", r.stderr)
			}
		})
	}
}

func TestPushPreflightFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(w *world)
		args     []string
		wantCode Code
	}{
		{"revoked token", func(w *world) { w.gh.RemoveToken(testToken) }, nil, CodeGitHubAuth},
		{"revoked token, login", func(w *world) { w.gh.RemoveToken(testToken) }, []string{"--login", "--hydra-url", "HYDRA"}, CodeGitHubAuth},
		{"no such repository", nil, []string{"--repo", "amplitude/nope"}, CodeGitHubNotFound},
		{"no such environment", nil, []string{"--environment", "prod"}, CodeGitHubNotFound},
		{"no secrets permission", func(w *world) {
			w.gh.AddToken(testToken, githubemu.Permissions{Repos: map[string]githubemu.RepoPermissions{testRepo: {Metadata: true}}})
		}, nil, CodeGitHubPerm},
		{"no variables permission", func(w *world) {
			w.gh.AddToken(testToken, githubemu.Permissions{Repos: map[string]githubemu.RepoPermissions{testRepo: {Metadata: true, SecretsWrite: true}}})
		}, nil, CodeGitHubPerm},
		{"GitHub down", func(w *world) { w.gh.Inject(githubemu.ServerError(githubemu.AnyRoute, 503)) }, nil, CodeGitHubDown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			w.browser = func(context.Context, string) error { t.Error("a browser was opened"); return nil }
			if tt.setup != nil {
				tt.setup(w)
			}
			before := w.readFile(w.sessionPath())
			args := []string{"--yes"}
			for _, a := range tt.args {
				args = append(args, strings.ReplaceAll(a, "HYDRA", w.hyURL))
			}
			r := w.run("", args...)
			if r.code != int(tt.wantCode) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, tt.wantCode, r.out())
			}
			if got := w.writes(); len(got) != 0 {
				t.Errorf("writes = %q, want none", got)
			}
			if w.readFile(w.sessionPath()) != before {
				t.Error("the session file changed")
			}
			if got := w.hy.Requests(); len(got) != 0 {
				t.Errorf("%d requests reached Hydra", len(got))
			}
			noSecrets(t, r.out(), append(usSession, testToken)...)
		})
	}
}

func TestPushRefreshTokenNotStored(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		login bool
	}{
		{"session", false},
		{"login", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			before := w.readFile(w.sessionPath())
			w.gh.Inject(githubemu.ServerError(githubemu.RoutePutRepoSecret, 502).ForName("WIZARD_REFRESH_TOKEN"))
			args := []string{"--yes"}
			if tt.login {
				args = append(args, "--login", "--hydra-url", w.hyURL)
			}
			r := w.run("", args...)
			if r.code != int(CodeNotStored) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, CodeNotStored, r.out())
			}
			for _, wr := range w.writes() {
				if wr != "PUT WIZARD_REFRESH_TOKEN" {
					t.Errorf("wrote %s after the refresh token failed", wr)
				}
			}
			if w.readFile(w.sessionPath()) != before {
				t.Error("the session was handed off although CI does not hold it")
			}
			noSecrets(t, r.out(), append(usSession, testToken)...)
			if !tt.login {
				return
			}
			// The new chain was printed sealed; restoring it stores it.
			rec, err := ghsecrets.ParseRecord(r.stdout)
			if err != nil {
				t.Fatalf("no recovery record printed: %v\n%s", err, r.stdout)
			}
			w.gh.ClearFaults()
			rr := w.run("", "restore", "--yes", ghsecrets.RecoveryPrefix+strings.SplitN(strings.SplitN(r.stdout, ghsecrets.RecoveryPrefix, 2)[1], "\n", 2)[0])
			if rr.code != 0 {
				t.Fatalf("restore: exit %d:\n%s", rr.code, rr.out())
			}
			rt := w.secret(repoScope, "WIZARD_REFRESH_TOKEN")
			if !w.hy.RefreshTokenUsable(rt) {
				t.Error("the restored refresh token does not work")
			}
			if rec.KeyID == "" || len(rec.Secrets) != 1 {
				t.Errorf("record = %+v", rec)
			}
			noSecrets(t, r.out()+rr.out(), rt)
		})
	}
}

func TestPushPartialWrite(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(w *world)
		want  string
	}{
		{"access token", func(w *world) {
			w.gh.Inject(githubemu.ServerError(githubemu.RoutePutRepoSecret, 502).ForName("WIZARD_OAUTH_TOKEN"))
		}, "WIZARD_OAUTH_TOKEN could not be written"},
		{"variable", func(w *world) {
			w.gh.Inject(githubemu.ServerError(githubemu.RouteCreateRepoVariable, 503))
		}, "gh variable set WIZARD_ZONE --body us"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed("us")
			tt.setup(w)
			r := w.run("", "--yes")
			if r.code != int(CodePartial) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, CodePartial, r.out())
			}
			if got := w.secret(repoScope, "WIZARD_REFRESH_TOKEN"); got != usSession[1] {
				t.Errorf("refresh token secret = %q", got)
			}
			// CI holds the token: the hand-off happened all the same.
			if strings.Contains(w.readFile(w.sessionPath()), usSession[1]) {
				t.Error("the session file still holds the refresh token")
			}
			if !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr lacks %q:\n%s", tt.want, r.stderr)
			}
		})
	}
}

func TestPushHandOff(t *testing.T) {
	t.Parallel()
	otherRT := "ory_rt_rotated-by-the-wizard"
	tests := []struct {
		name     string
		fixture  string
		args     []string
		setup    func(w *world)
		wantCode Code
		// wantFile is the session file's expected content: "golden:NAME",
		// "same" (unchanged) or "" (not checked).
		wantFile   string
		wantLegacy string
		wantSaid   string
	}{
		{name: "canonical", fixture: "us", wantFile: "golden:us.handoff.golden", wantSaid: "Handed off"},
		{name: "legacy only", fixture: "legacy-only", wantLegacy: "golden:legacy-only.handoff.golden", wantSaid: "legacy"},
		{name: "mirror in the legacy file", fixture: "mirrored", wantFile: "golden:mirrored.handoff.golden", wantLegacy: "golden:mirrored.mirror.golden", wantSaid: "Also removed it from the copy"},
		{name: "keep the local session", fixture: "us", args: []string{"--keep-local-session"}, wantFile: "same", wantSaid: "revokes the whole chain"},
		{name: "wizard refreshed meanwhile", fixture: "us", wantCode: CodeSessionChanged, wantFile: "has:" + otherRT, setup: func(w *world) {
			w.afterGitHub = func(r *http.Request) {
				if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/WIZARD_REFRESH_TOKEN") {
					b := strings.Replace(w.readFile(w.sessionPath()), usSession[1], otherRT, 1)
					os.WriteFile(w.sessionPath(), []byte(b), 0o600)
				}
			}
		}},
		{name: "file broken meanwhile", fixture: "us", wantCode: CodeHandOffFailed, setup: func(w *world) {
			w.afterGitHub = func(r *http.Request) {
				if r.Method == http.MethodPut && strings.HasSuffix(r.URL.Path, "/WIZARD_REFRESH_TOKEN") {
					os.WriteFile(w.sessionPath(), []byte("{not json"), 0o600)
				}
			}
		}},
		{name: "pending placeholder skipped", fixture: "pending", wantFile: "golden:pending.handoff.golden"},
		{name: "explicit session file", fixture: "eu", args: []string{"--session-file", "CACHE/oauth-session.json"}, wantFile: "golden:eu.handoff.golden"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			w.seed(tt.fixture)
			if tt.setup != nil {
				tt.setup(w)
			}
			read := func(p string) string { b, _ := os.ReadFile(p); return string(b) }
			beforeFile, beforeLegacy := read(w.sessionPath()), read(w.legacyPath())
			args := []string{"--yes"}
			for _, a := range tt.args {
				args = append(args, strings.Replace(a, "CACHE", w.cache, 1))
			}
			r := w.run("", args...)
			if r.code != int(tt.wantCode) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, tt.wantCode, r.out())
			}
			check := func(what, path, want, before string) {
				switch {
				case want == "":
				case want == "same":
					if got := read(path); got != before {
						t.Errorf("%s changed:\n%s", what, got)
					}
				case strings.HasPrefix(want, "has:"):
					if got := read(path); !strings.Contains(got, strings.TrimPrefix(want, "has:")) {
						t.Errorf("%s lost the wizard's new token:\n%s", what, got)
					}
				default:
					g, _ := os.ReadFile(filepath.Join(fixtures, "golden", strings.TrimPrefix(want, "golden:")))
					if got := read(path); got != string(g) {
						t.Errorf("%s:\n%s\nwant\n%s", what, got, g)
					}
				}
			}
			check("session file", w.sessionPath(), tt.wantFile, beforeFile)
			check("legacy file", w.legacyPath(), tt.wantLegacy, beforeLegacy)
			if tt.wantSaid != "" && !strings.Contains(r.out(), tt.wantSaid) {
				t.Errorf("output lacks %q:\n%s", tt.wantSaid, r.out())
			}
			noSecrets(t, r.out(), append(usSession, otherRT, "ory_rt_legacy-refresh-3003", "ory_rt_real-refresh-4004", "ory_rt_eu-refresh-2002")...)
		})
	}
}

func TestPushBadInput(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fixture  string
		env      map[string]string // "" deletes
		remote   *string
		args     []string
		wantCode Code
		wantSaid string
	}{
		{name: "unknown zone", args: []string{"--zone", "apac"}, wantCode: CodeBadInput, wantSaid: "unknown zone"},
		{name: "malformed repo", args: []string{"--repo", "not a repo"}, wantCode: CodeBadInput, wantSaid: "--repo"},
		{name: "repo without owner", args: []string{"--repo", "wizard"}, wantCode: CodeBadInput, wantSaid: "owner/name"},
		{name: "no GitHub token", env: map[string]string{"GH_TOKEN": ""}, wantCode: CodeBadInput, wantSaid: "GH_TOKEN"},
		{name: "GITHUB_TOKEN is enough", fixture: "us", env: map[string]string{"GH_TOKEN": "", "GITHUB_TOKEN": testToken}, args: []string{"--dry-run"}},
		{name: "GitHub token with a line break", env: map[string]string{"GH_TOKEN": "abc\ndef"}, wantCode: CodeBadInput, wantSaid: "GH_TOKEN"},
		{name: "plain http API", env: map[string]string{"GITHUB_API_URL": "http://github.example.com/api/v3"}, wantCode: CodeBadInput, wantSaid: "GITHUB_API_URL"},
		{name: "login with a session file", args: []string{"--login", "--session-file", "x"}, wantCode: CodeBadInput, wantSaid: "--session-file"},
		{name: "login flag without login", args: []string{"--token-url", "https://auth.example.com/oauth2/token"}, wantCode: CodeBadInput, wantSaid: "only applies with --login"},
		{name: "plain http hydra", args: []string{"--login", "--hydra-url", "http://auth.example.com"}, wantCode: CodeBadInput, wantSaid: "loopback"},
		{name: "bad redirect host", args: []string{"--login", "--redirect-host", "0.0.0.0"}, wantCode: CodeBadInput, wantSaid: "--redirect-host"},
		{name: "bad secret name", args: []string{"--access-token-secret", "1BAD"}, wantCode: CodeBadInput, wantSaid: "--access-token-secret"},
		{name: "GITHUB_ prefix", args: []string{"--pat-secret", "GITHUB_PAT"}, wantCode: CodeBadInput, wantSaid: "GITHUB_"},
		{name: "duplicate names", args: []string{"--access-token-secret", "wizard_refresh_token"}, wantCode: CodeBadInput, wantSaid: "also the name"},
		{name: "positional argument", args: []string{"ory_rt_secret-in-argv"}, wantCode: CodeBadInput, wantSaid: "argument (not shown)"},
		{name: "mistyped subcommand", args: []string{"restor"}, wantCode: CodeBadInput, wantSaid: `argument "restor"`},
		{name: "unknown flag", args: []string{"--refresh-token", "x"}, wantCode: CodeBadInput, wantSaid: "unknown flag --refresh-token"},
		{name: "bad environment", args: []string{"--environment", "a/b"}, wantCode: CodeBadInput, wantSaid: "--environment"},
		{name: "no session", wantCode: CodeNoSession, wantSaid: "npx @amplitude/wizard login"},
		{name: "malformed session", fixture: "malformed", wantCode: CodeNoSession, wantSaid: "malformed"},
		{name: "session without refresh token", fixture: "missing-refresh", wantCode: CodeNoSession, wantSaid: "no refresh token"},
		{name: "refresh window over", fixture: "expired", wantCode: CodeNoSession, wantSaid: "refresh window"},
		{name: "canonical cleared, legacy ignored", fixture: "canonical-cleared", wantCode: CodeNoSession, wantSaid: "no signed-in user"},
		{name: "two zones", fixture: "both-zones", wantCode: CodeBadInput, wantSaid: "--zone"},
		{name: "wrong zone", fixture: "us", args: []string{"--zone", "eu"}, wantCode: CodeNoSession, wantSaid: "zone eu"},
		{name: "missing session file", args: []string{"--session-file", "/does/not/exist.json"}, wantCode: CodeNoSession, wantSaid: "/does/not/exist.json"},
		{name: "no HOME", env: map[string]string{"HOME": "", "AMPLITUDE_WIZARD_CACHE_DIR": ""}, wantCode: CodeNoSession, wantSaid: "HOME"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			if tt.fixture != "" {
				w.seed(tt.fixture)
			}
			for k, v := range tt.env {
				if v == "" {
					delete(w.env, k)
				} else {
					w.env[k] = v
				}
			}
			r := w.run("", append([]string{"--yes"}, tt.args...)...)
			if r.code != int(tt.wantCode) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, tt.wantCode, r.out())
			}
			if !strings.Contains(r.out(), tt.wantSaid) {
				t.Errorf("output lacks %q:\n%s", tt.wantSaid, r.out())
			}
			if tt.wantCode != 0 {
				if got := w.writes(); len(got) != 0 {
					t.Errorf("writes = %q, want none", got)
				}
				if !strings.Contains(r.stderr, "(exit ") {
					t.Errorf("stderr does not name the exit code:\n%s", r.stderr)
				}
			}
			noSecrets(t, r.out(), append(usSession, testToken, "ory_rt_secret-in-argv", "ory_rt_truncated")...)
		})
	}
}

func TestRepoDefault(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, remote, api, want, wantSource string
	}{
		{"ssh", "git@github.com:my-org/wizard-fork.git\n", "", "my-org/wizard-fork", "the origin remote"},
		{"https", "https://github.com/my-org/wizard-fork.git", "", "my-org/wizard-fork", "the origin remote"},
		{"no git", "", "", DefaultRepo, "default"},
		{"not GitHub", "git@gitlab.com:my-org/wizard.git", "", DefaultRepo, "default: the origin remote is not a GitHub repository"},
		{"enterprise", "https://ghe.example.com/team/wizard", "https://ghe.example.com/api/v3", "team/wizard", "the origin remote"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := &cli{d: Deps{Git: func(context.Context, ...string) ([]byte, error) {
				if tt.remote == "" {
					return nil, os.ErrNotExist
				}
				return []byte(tt.remote), nil
			}}}
			p := &pushConfig{gh: githubSetup{apiURL: tt.api}}
			if err := c.resolveRepo(context.Background(), p, ""); err != nil {
				t.Fatal(err)
			}
			if got := p.owner + "/" + p.repo; got != tt.want || p.repoSource != tt.wantSource {
				t.Errorf("repo = %s (%s), want %s (%s)", got, p.repoSource, tt.want, tt.wantSource)
			}
		})
	}
}

func TestParseRemote(t *testing.T) {
	t.Parallel()
	hosts := githubHosts("")
	tests := []struct {
		remote, want string
		ok           bool
	}{
		{"git@github.com:amplitude/wizard.git", "amplitude/wizard", true},
		{"git@github.com:amplitude/wizard", "amplitude/wizard", true},
		{"github.com:amplitude/wizard.git", "amplitude/wizard", true},
		{"https://github.com/amplitude/wizard.git", "amplitude/wizard", true},
		{"https://github.com/amplitude/wizard/", "amplitude/wizard", true},
		{"https://x-access-token:tok@github.com/amplitude/wizard.git", "amplitude/wizard", true},
		{"ssh://git@github.com/amplitude/wizard.git", "amplitude/wizard", true},
		{"ssh://git@ssh.github.com:443/amplitude/wizard.git", "amplitude/wizard", true},
		{"git://github.com/amplitude/wizard.git", "amplitude/wizard", true},
		{"https://GitHub.com/Amplitude/Wizard.js", "Amplitude/Wizard.js", true},
		{"https://gitlab.com/amplitude/wizard.git", "", false},
		{"file:///src/wizard.git", "", false},
		{"/src/wizard", "", false},
		{"https://github.com/amplitude", "", false},
		{"https://github.com/amplitude/wizard/tree/main", "", false},
	}
	for _, tt := range tests {
		got, ok := parseRemote(tt.remote, hosts)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseRemote(%q) = %q, %v; want %q, %v", tt.remote, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"restore", "--help"}} {
		w := newWorld(t)
		r := w.run("", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
			t.Errorf("%v: exit %d, stdout %.40q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	// Every flag is documented.
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	var repo string
	definePushFlags(fs, &pushConfig{}, &repo)
	fs.VisitAll(func(f *flag.Flag) {
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name + ","
		}
		if !strings.Contains(usageText, name) {
			t.Errorf("--help does not document %s", name)
		}
	})
	for _, s := range []string{"--force", "restore", "13222..13232", "GH_TOKEN", "GITHUB_API_URL", "AMPLITUDE_WIZARD_CACHE_DIR"} {
		if !strings.Contains(usageText, s) {
			t.Errorf("--help does not mention %s", s)
		}
	}
}

func TestExitCodesAreDistinct(t *testing.T) {
	t.Parallel()
	codes := []Code{CodeOK, CodeInternal, CodeBadInput, CodeNotConfirmed, CodeNoSession, CodeLoginFailed, CodeTokenExchange,
		CodeGitHubAuth, CodeGitHubPerm, CodeGitHubNotFound, CodeGitHubRateLimit, CodeGitHubDown, CodeGitHubBadKey,
		CodeKeyChanged, CodeStaleRecord, CodeNotStored, CodePartial, CodeHandOffFailed, CodeSessionChanged}
	seen := map[Code]bool{}
	for _, c := range codes {
		if seen[c] {
			t.Errorf("exit code %d used twice", c)
		}
		seen[c] = true
		if c != 0 && !strings.Contains(usageText, " "+strconv.Itoa(int(c))+" ") {
			t.Errorf("--help does not list exit code %d", c)
		}
	}
	if got := ExitCode(nil); got != 0 {
		t.Errorf("ExitCode(nil) = %d", got)
	}
	if got := ExitCode(os.ErrClosed); got != 1 {
		t.Errorf("ExitCode(other) = %d", got)
	}
}

func hydraemuFault503() hydraemu.Fault {
	return hydraemu.Fault{Endpoint: hydraemu.PathToken, Status: http.StatusServiceUnavailable}
}

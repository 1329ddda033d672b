package matrix

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
)

// Cases is the whole matrix.
func Cases() []*Case {
	var all []*Case
	all = append(all, runCases()...)
	all = append(all, inputCases()...)
	all = append(all, hydraCases()...)
	all = append(all, githubCases()...)
	return all
}

var repoScope = githubemu.RepoScope(stack.Repo)

// hydraFault injects a token endpoint fault.
func hydraFault(f hydraemu.Fault) func(*stack.Stack, map[string]string) {
	return func(s *stack.Stack, _ map[string]string) {
		f.Endpoint = hydraemu.PathToken
		s.Hydra.Inject(f)
	}
}

func ghFault(f githubemu.Fault) func(*stack.Stack, map[string]string) {
	return func(s *stack.Stack, _ map[string]string) { s.GitHub.Inject(f) }
}

func setInputs(kv ...string) func(*stack.Stack, map[string]string) {
	return func(_ *stack.Stack, in map[string]string) {
		for i := 0; i < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(in, kv[i])
				continue
			}
			in[kv[i]] = kv[i+1]
		}
	}
}

func both(fs ...func(*stack.Stack, map[string]string)) func(*stack.Stack, map[string]string) {
	return func(s *stack.Stack, in map[string]string) {
		for _, f := range fs {
			f(s, in)
		}
	}
}

// rotated checks that the stored refresh token changed and the outputs say so.
func rotated(s *stack.Stack, o *stack.Outcome) error {
	if s.Stored("WIZARD_REFRESH_TOKEN") == s.Initial.RefreshToken {
		return fmt.Errorf("refresh token not rotated")
	}
	if o.Outputs["rotated"] != "true" || o.Outputs["refreshed"] != "true" {
		return fmt.Errorf("outputs %v", redactOutputs(o.Outputs))
	}
	if o.Outputs["access-token"] != s.Stored("WIZARD_OAUTH_TOKEN") {
		return fmt.Errorf("access-token output differs from the stored secret")
	}
	return nil
}

// untouched checks that nothing was written to GitHub.
func untouched(s *stack.Stack, o *stack.Outcome) error {
	for _, r := range s.GitHub.Requests() {
		if r.Method == http.MethodPut {
			return fmt.Errorf("GitHub write %s %s happened", r.Method, r.Path)
		}
	}
	if s.Stored("WIZARD_REFRESH_TOKEN") != s.Initial.RefreshToken {
		return fmt.Errorf("stored refresh token changed")
	}
	return nil
}

// noNetwork checks that a bad input stopped the run before any request.
func noNetwork(s *stack.Stack, o *stack.Outcome) error {
	if n := len(s.GitHub.Requests()); n > 0 {
		return fmt.Errorf("%d GitHub requests before input validation failed", n)
	}
	return nil
}

func contains(sub string) func(*stack.Stack, *stack.Outcome) error {
	return func(_ *stack.Stack, o *stack.Outcome) error {
		if !strings.Contains(o.Stdout, sub) {
			return fmt.Errorf("stdout lacks %q", sub)
		}
		return nil
	}
}

func all(checks ...func(*stack.Stack, *stack.Outcome) error) func(*stack.Stack, *stack.Outcome) error {
	return func(s *stack.Stack, o *stack.Outcome) error {
		for _, c := range checks {
			if err := c(s, o); err != nil {
				return err
			}
		}
		return nil
	}
}

func redactOutputs(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if k == "access-token" && v != "" {
			v = "***"
		}
		out[k] = v
	}
	return out
}

func runCases() []*Case {
	return []*Case{
		{Name: "scheduled run rotates", Group: "run", WantHydra: true, WantAlive: true, Check: rotated},
		{Name: "skip-if-fresh: more than min-ttl left", Group: "run", WantAlive: true,
			Setup: setInputs("expires-at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339), "min-ttl", "20m"),
			Check: all(untouched, contains("Refresh skipped"), func(_ *stack.Stack, o *stack.Outcome) error {
				if o.Outputs["refreshed"] != "false" {
					return fmt.Errorf("refreshed = %q", o.Outputs["refreshed"])
				}
				return nil
			})},
		{Name: "skip-if-fresh: less than min-ttl left refreshes", Group: "run", WantHydra: true, WantAlive: true,
			Setup: setInputs("expires-at", time.Now().Add(5*time.Minute).UTC().Format(time.RFC3339), "min-ttl", "20m"), Check: rotated},
		{Name: "dry run: preflight only", Group: "run", WantAlive: true, Setup: setInputs("dry-run", "true"), Check: all(untouched, contains("Dry run"))},
		{Name: "environment secrets", Group: "run", WantHydra: true, WantAlive: true, Setup: setInputs("environment", "production"),
			Check: func(s *stack.Stack, o *stack.Outcome) error {
				sec, ok := s.GitHub.Secret(githubemu.EnvScope(stack.Repo, "production"), "WIZARD_OAUTH_TOKEN")
				if !ok || sec.Value != o.Outputs["access-token"] {
					return fmt.Errorf("environment secret not written")
				}
				if s.Stored("WIZARD_REFRESH_TOKEN") != s.Initial.RefreshToken {
					return fmt.Errorf("the repository secret changed too")
				}
				return nil
			}},
		{Name: "custom secret names", Group: "run", WantHydra: true, WantAlive: true,
			Setup: setInputs("access-token-secret", "AMP_AT", "refresh-token-secret", "AMP_RT", "expires-at-secret", "AMP_EXP"),
			Check: func(s *stack.Stack, o *stack.Outcome) error {
				for _, n := range []string{"AMP_AT", "AMP_RT", "AMP_EXP"} {
					if _, ok := s.GitHub.Secret(repoScope, n); !ok {
						return fmt.Errorf("%s not written", n)
					}
				}
				return nil
			}},
		{Name: "id token stored, expiry is the earlier", Group: "run", WantHydra: true, WantAlive: true,
			Stack: stack.Options{Hydra: []hydraemu.Option{hydraemu.WithIDTokens(true)}},
			Setup: setInputs("id-token-secret", "WIZARD_ID_TOKEN"),
			Check: func(s *stack.Stack, o *stack.Outcome) error {
				id, ok := s.GitHub.Secret(repoScope, "WIZARD_ID_TOKEN")
				if !ok || !strings.HasPrefix(id.Value, "eyJ") {
					return fmt.Errorf("id token not stored")
				}
				return nil
			}},
		{Name: "non-rotating client keeps the stored token", Group: "run", WantHydra: true, WantAlive: true,
			Stack: stack.Options{DisableRotation: true},
			Check: func(s *stack.Stack, o *stack.Outcome) error {
				if s.Stored("WIZARD_REFRESH_TOKEN") != s.Initial.RefreshToken || o.Outputs["rotated"] != "false" {
					return fmt.Errorf("refresh token rewritten or rotated=%q", o.Outputs["rotated"])
				}
				return nil
			}},
		{Name: "stale secret: updated after the run started", Group: "run", WantAlive: true,
			Stack: stack.Options{RunStartedAt: time.Now().Add(-10 * time.Minute)},
			Env:   []string{fmt.Sprintf("GITHUB_RUN_ID=%d", stack.RunID)},
			Setup: func(s *stack.Stack, in map[string]string) {
				// Another run rotated the chain after this run started: what
				// this run holds is the used token.
				newer := s.Hydra.IssueChain(stack.ClientID)
				s.GitHub.SetSecret(repoScope, "WIZARD_REFRESH_TOKEN", newer.RefreshToken, time.Now().Add(-time.Minute))
				s.Hydra.RevokeChain(s.Initial.RefreshToken)
			},
			Check: contains("Refresh skipped")},
		{Name: "stale-secret guard off without Actions: read", Group: "run", WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				p := githubemu.AllPermissions()
				rp := p.Repos["*"]
				rp.ActionsRead = false
				p.Repos["*"] = rp
				s.GitHub.AddToken(stack.PAT, p)
			},
			Check: all(rotated, contains("Stale-secret guard off"))},
	}
}

func inputCases() []*Case {
	c := func(name string, kv ...string) *Case {
		return &Case{Name: name, Group: "input", WantExit: 2, WantAlive: true, Setup: setInputs(kv...), Check: noNetwork}
	}
	return []*Case{
		c("missing refresh-token", "refresh-token", ""),
		c("missing github-token", "github-token", ""),
		c("unknown zone", "zone", "apac"),
		c("token-url http to a non-loopback host", "token-url", "http://auth.example.com/oauth2/token"),
		c("malformed repository", "repository", "amplitude"),
		c("secret name GitHub refuses (GITHUB_ prefix)", "access-token-secret", "GITHUB_TOKEN_X"),
		c("secret name GitHub refuses (hyphen)", "refresh-token-secret", "WIZARD-RT"),
		c("expires-at that does not parse", "expires-at", "next tuesday", "min-ttl", "20m"),
		c("min-ttl that does not parse", "min-ttl", "twenty"),
		c("refresh-token over 48 KB", "refresh-token", strings.Repeat("r", 48*1024+1)),
		c("environment and organization together", "environment", "production", "organization", "amplitude"),
		c("dry-run not a boolean", "dry-run", "perhaps"),
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:9"
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func hydraCases() []*Case {
	usedToken := func(s *stack.Stack, in map[string]string) {
		// Spend the stored token once, outside the action: what the action
		// then presents is a used token.
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {in["refresh-token"]}, "client_id": {stack.ClientID}}
		if resp, err := http.PostForm(s.TokenURL(), form); err == nil {
			resp.Body.Close()
		}
	}
	return []*Case{
		{Name: "connection refused", Group: "hydra", WantExit: 12, WantAlive: true,
			Setup: func(s *stack.Stack, in map[string]string) {
				in["token-url"] = "http://" + closedPort() + "/oauth2/token"
			}},
		{Name: "503 with Retry-After, recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 2, Status: 503, Headers: map[string]string{"Retry-After": "1"}}), Check: rotated},
		{Name: "500 forever: past the deadline", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 500, Body: `{"error":"server_error"}`, ContentType: "application/json"})},
		{Name: "502 HTML page forever", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 502, Body: "<html><body>Bad Gateway</body></html>", ContentType: "text/html"})},
		{Name: "429 recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 1, Status: 429, Headers: map[string]string{"Retry-After": "0"}}), Check: rotated},
		{Name: "invalid_grant: token already used", Group: "hydra", WantExit: 10, WantHydra: true, WantAlive: false,
			Setup: usedToken, Check: contains("re-bootstrap")},
		{Name: "invalid_client: wrong client id", Group: "hydra", WantExit: 11, WantHydra: true, WantAlive: true,
			Setup: setInputs("client-id", "not-a-client")},
		{Name: "200 with an error field", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 200, Body: `{"error":"access_denied"}`, ContentType: "application/json"})},
		{Name: "malformed JSON", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 200, Body: `{"access_token":`, ContentType: "application/json"})},
		{Name: "302 redirect not followed", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Redirect: "https://login.example.com/"})},
		{Name: "response slower than the deadline", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: both(setInputs("hydra-timeout", "1s"), hydraFault(hydraemu.Fault{Delay: 3 * time.Second}))},
	}
}

func githubCases() []*Case {
	keyRoute := githubemu.RouteGetRepoPublicKey
	put := githubemu.RoutePutRepoSecret
	return []*Case{
		{Name: "401 at preflight: Hydra never called", Group: "github", WantExit: 20, WantAlive: true,
			Setup: ghFault(githubemu.BadCredentials(keyRoute)), Check: untouched},
		{Name: "403 at preflight", Group: "github", WantExit: 21, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				p := githubemu.AllPermissions()
				rp := p.Repos["*"]
				rp.SecretsRead, rp.SecretsWrite = false, false
				p.Repos["*"] = rp
				s.GitHub.AddToken(stack.PAT, p)
			}, Check: untouched},
		{Name: "404 repository", Group: "github", WantExit: 22, WantAlive: true, Setup: setInputs("repository", "amplitude/no-such-repo"), Check: untouched},
		{Name: "404 environment", Group: "github", WantExit: 22, WantAlive: true, Setup: setInputs("environment", "no-such-env"), Check: untouched},
		{Name: "public key not 32 bytes", Group: "github", WantExit: 25, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				s.GitHub.SetPublicKeyOverride(repoScope, "c2hvcnQta2V5", "key-short")
			}, Check: untouched},
		{Name: "5xx at preflight forever", Group: "github", WantExit: 24, WantAlive: true,
			Setup: ghFault(githubemu.ServerError(keyRoute, 503)), Check: untouched},
		{Name: "refresh-token PUT 502 twice, recovers", Group: "github", WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.ServerError(put, 502).ForName("WIZARD_REFRESH_TOKEN").FirstN(2)), Check: rotated},
		{Name: "refresh-token PUT fails for good: recovery record", Group: "github", WantExit: 30, WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.ServerError(put, 502).ForName("WIZARD_REFRESH_TOKEN")),
			Check: restoreRecord},
		{Name: "access-token PUT fails for good: partial write", Group: "github", WantExit: 31, WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.ServerError(put, 500).ForName("WIZARD_OAUTH_TOKEN")),
			Check: func(s *stack.Stack, o *stack.Outcome) error {
				if s.Stored("WIZARD_REFRESH_TOKEN") == s.Initial.RefreshToken {
					return fmt.Errorf("refresh token write was stopped by the access-token failure")
				}
				return nil
			}},
		{Name: "422 after the key rotated: refetch once", Group: "github", WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				rotatedOnce := false
				s.AfterGitHub(func(r *http.Request) {
					if !rotatedOnce && strings.HasSuffix(r.URL.Path, "/secrets/public-key") {
						rotatedOnce = true
						s.GitHub.RotateKey(repoScope)
					}
				})
			},
			Check: all(rotated, contains("after fetching the rotated public key again"))},
		{Name: "secondary rate limit with retry-after", Group: "github", WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.SecondaryRateLimit(put, time.Second).FirstN(1)), Check: rotated},
		{Name: "primary rate limit beyond the deadline at preflight", Group: "github", WantExit: 23, WantAlive: true,
			Setup: ghFault(githubemu.PrimaryRateLimit(keyRoute, time.Now().Add(time.Hour))), Check: untouched},
		{Name: "connection dropped mid-write, retried", Group: "github", WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.Drop(put).ForName("WIZARD_REFRESH_TOKEN").FirstN(1)), Check: rotated},
	}
}

// restoreRecord replays the printed recovery record against the emulator
// (what `bootstrap restore` does) and checks the chain is then alive.
func restoreRecord(s *stack.Stack, o *stack.Outcome) error {
	rec, err := ghsecrets.ParseRecord(o.Stdout)
	if err != nil {
		return err
	}
	if !strings.Contains(o.Summary, rec.Encode()) {
		return fmt.Errorf("recovery record missing from the step summary")
	}
	if s.ChainAlive() {
		return fmt.Errorf("chain alive before the restore: the old token should be used")
	}
	// The fault is still injected; clear it, as GitHub recovering would.
	s.GitHub.ClearFaults()
	c, err := ghsecrets.New(ghsecrets.Options{APIURL: s.GitHubURL, Token: stack.PAT})
	if err != nil {
		return err
	}
	for _, sec := range rec.Secrets {
		if err := c.PutSealed(context.Background(), rec.Target(), rec.KeyID, sec); err != nil {
			return fmt.Errorf("restore: %w", err)
		}
	}
	return nil
}

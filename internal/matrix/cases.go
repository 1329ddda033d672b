package matrix

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
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
		{Name: "scheduled run rotates (stale-secret guard on)", Group: "run", WantHydra: true, WantAlive: true,
			Check: all(rotated, noticeOnce("Stale-secret guard off", 0))},
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
		{Name: "stale secret: another run rotated after this run started", Group: "run", WantAlive: true,
			Stack: stack.Options{RunStartedAt: time.Now().Add(-10 * time.Minute)},
			Env:   []string{fmt.Sprintf("GITHUB_RUN_ID=%d", stack.RunID)},
			Setup: func(s *stack.Stack, in map[string]string) {
				// Another run spent the token this run holds and stored its
				// successor after this run started: presenting ours again
				// would be reuse, and Hydra would revoke the successor too.
				otherRun(s, in["refresh-token"], time.Now().Add(-time.Minute))
			},
			Check: all(contains("Refresh skipped"), untouchedByAction, noticeOnce("Stale-secret guard off", 0))},
		{Name: "stale secret: rotated in the same second the run started", Group: "run", WantAlive: true,
			Env: []string{fmt.Sprintf("GITHUB_RUN_ID=%d", stack.RunID)},
			Setup: func(s *stack.Stack, in map[string]string) {
				// GitHub's timestamps have whole seconds: a secret written
				// 0.5s after the run started shows the same second. The
				// guard must treat "not before" as stale.
				started := time.Now().Truncate(time.Second)
				s.GitHub.AddRun(stack.Repo, stack.RunID, started)
				otherRun(s, in["refresh-token"], started.Add(500*time.Millisecond))
			},
			Check: all(contains("Refresh skipped"), untouchedByAction)},
		{Name: "stale-secret guard off without Actions: read (notice once)", Group: "run", WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				p := githubemu.AllPermissions()
				rp := p.Repos["*"]
				rp.ActionsRead = false
				p.Repos["*"] = rp
				s.GitHub.AddToken(stack.PAT, p)
			},
			Check: all(rotated, noticeOnce("Stale-secret guard off", 1))},
		{Name: "stale-secret guard off: workflow run not found (notice once)", Group: "run", WantHydra: true, WantAlive: true,
			Env:   []string{"GITHUB_RUN_ID=987654321"},
			Check: all(rotated, noticeOnce("Stale-secret guard off", 1))},
		{Name: "organization secrets (created private)", Group: "run", WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, in map[string]string) {
				s.GitHub.AddOrg("amplitude", stack.Repo)
				in["organization"] = "amplitude"
			},
			Check: func(s *stack.Stack, o *stack.Outcome) error {
				sec, ok := s.GitHub.Secret(githubemu.OrgScope("amplitude"), "WIZARD_OAUTH_TOKEN")
				if !ok || sec.Value != o.Outputs["access-token"] || sec.Visibility != "private" {
					return fmt.Errorf("organization secret not written as a private secret (%v, visibility %q)", ok, sec.Visibility)
				}
				if s.Stored("WIZARD_REFRESH_TOKEN") != s.Initial.RefreshToken {
					return fmt.Errorf("the repository secret changed too")
				}
				return nil
			}},
	}
}

// otherRun is another run of the same chain: it spends rt at the token
// endpoint and stores the successor in the repository secret, updated at
// at.
func otherRun(s *stack.Stack, rt string, at time.Time) {
	next := refreshOutside(s, rt)
	if next.RefreshToken == "" {
		panic("matrix: the other run's refresh failed")
	}
	s.GitHub.SetSecret(repoScope, "WIZARD_REFRESH_TOKEN", next.RefreshToken, at)
}

// untouchedByAction checks that the action made no secret write.
func untouchedByAction(s *stack.Stack, _ *stack.Outcome) error {
	for _, r := range s.GitHub.Requests() {
		if r.Method == http.MethodPut {
			return fmt.Errorf("GitHub write %s %s happened", r.Method, r.Path)
		}
	}
	return nil
}

// noticeOnce checks that a notice with this title was printed n times.
func noticeOnce(title string, n int) func(*stack.Stack, *stack.Outcome) error {
	return func(_ *stack.Stack, o *stack.Outcome) error {
		if got := strings.Count(o.Stdout, "::notice title="+title+"::"); got != n {
			return fmt.Errorf("notice %q printed %d times, want %d", title, got, n)
		}
		return nil
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
		c("client-id with spaces", "client-id", "0ac84169 c41c 4222"),
		c("duplicate secret names", "access-token-secret", "WIZARD_REFRESH_TOKEN"),
		c("duplicate secret names differing in case", "expires-at-secret", "wizard_oauth_token"),
		c("visibility without organization", "visibility", "all"),
		c("selected-repositories without organization", "selected-repositories", "wizard"),
		c("visibility selected without selected-repositories", "organization", "amplitude", "visibility", "selected"),
		c("organization that is not a login", "organization", "-amplitude"),
		c("environment name with a slash", "environment", "prod/eu"),
		c("refresh-token pasted with a line break", "refresh-token", "rt-line-one-0123456789\nrt-line-two-0123456789"),
		c("expires-at without a time zone", "expires-at", "2026-01-02T15:04:05", "min-ttl", "20m"),
		withEnv(c("repository missing (no input, no GITHUB_REPOSITORY)", "repository", ""), "GITHUB_REPOSITORY="),
		withEnv(c("GITHUB_API_URL http:// to a non-loopback host"), "GITHUB_API_URL=http://api.github.example.com"),
		withSecret(c("token-url with credentials in it", "token-url", "https://ci:url-password-0123456789@auth.example.com/oauth2/token"), "url-password-0123456789"),
	}
}

func withEnv(c *Case, env ...string) *Case {
	c.Env = append(c.Env, env...)
	return c
}

// withSecret makes the leak scan look for value too (a case's own secret).
func withSecret(c *Case, value string) *Case {
	setup := c.Setup
	c.Setup = func(s *stack.Stack, in map[string]string) {
		scanFor(s, value)
		if setup != nil {
			setup(s, in)
		}
	}
	return c
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
		refreshOutside(s, in["refresh-token"])
	}
	jsonFault := func(status int, body string) func(*stack.Stack, map[string]string) {
		return hydraFault(hydraemu.Fault{Status: status, Body: body, ContentType: "application/json"})
	}
	// committed: Hydra rotated the token, the action never heard.
	const committed = "Hydra rotated; its answer never reached the action"
	return []*Case{
		// Transport.
		{Name: "connection refused", Group: "hydra", WantExit: 12, WantAlive: true,
			Setup: func(s *stack.Stack, in map[string]string) {
				in["token-url"] = "http://" + closedPort() + "/oauth2/token"
			},
			Check: all(contains("Chain untouched"), contains("Token endpoint retry"))},
		{Name: "connection refused, then the endpoint comes up", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, in map[string]string) {
				addr := closedPort()
				in["token-url"] = "http://" + addr + hydraemu.PathToken
				in["hydra-timeout"] = "10s"
				go func() {
					time.Sleep(time.Second)
					if l, err := net.Listen("tcp", addr); err == nil {
						serve(s, l, tokenProxy(s, nil))
					}
				}()
			},
			Check: all(rotated, contains("Token endpoint retry"))},
		{Name: "DNS failure", Group: "hydra", WantExit: 12, WantAlive: true,
			Setup: setInputs("token-url", "https://nonexistent.invalid/oauth2/token"), Check: contains("Chain untouched")},
		{Name: "timeout before any response (request held unprocessed)", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: both(setInputs("hydra-timeout", "1s"), hydraFault(hydraemu.Fault{Delay: 5 * time.Second})),
			Check: contains("Chain unknown")},
		{Name: "response slower than the deadline (Hydra committed)", Group: "hydra", WantExit: 12, WantHydra: true, Unavoidable: committed + " in time",
			Setup: both(setInputs("hydra-timeout", "1s"), hydraFault(hydraemu.Fault{AfterProcessing: true, Delay: 5 * time.Second})),
			Check: contains("Chain unknown")},
		{Name: "connection reset before Hydra processed it, retried", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 2, DropConnection: true}), Check: rotated},
		{Name: "connection reset after Hydra committed (grace period 0)", Group: "hydra", WantExit: 10, WantHydra: true,
			Unavoidable: committed + "; the retry is reuse",
			Setup:       hydraFault(hydraemu.Fault{Times: 1, AfterProcessing: true, DropConnection: true}),
			Check:       all(contains("this was attempt 2"), contains("Chain dead"), tokenRequests(2))},
		{Name: "connection reset after Hydra committed, grace period 1m: the retry recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Stack: stack.Options{Hydra: []hydraemu.Option{hydraemu.WithGracePeriod(time.Minute)}},
			Setup: hydraFault(hydraemu.Fault{Times: 1, AfterProcessing: true, DropConnection: true}),
			Check: all(rotated, tokenRequests(2))},

		// Transient statuses: each recovers after N failures, and fails past
		// the deadline.
		{Name: "500 twice, recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 2, Status: 500, Body: `{"error":"server_error"}`, ContentType: "application/json"}), Check: rotated},
		{Name: "500 forever: past the deadline", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: jsonFault(500, `{"error":"server_error"}`)},
		{Name: "502 HTML page twice, recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 2, Status: 502, Body: "<html><body>Bad Gateway</body></html>", ContentType: "text/html"}), Check: rotated},
		{Name: "502 HTML page forever", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 502, Body: "<html><body>Bad Gateway</body></html>", ContentType: "text/html"})},
		{Name: "503 with Retry-After, recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 2, Status: 503, Headers: map[string]string{"Retry-After": "1"}}), Check: rotated},
		{Name: "503 with Retry-After forever: past the deadline", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			// 3s deadline, Retry-After 2s: the second attempt at ~2s, the third
			// would start at ~4s, so retrying stops with a second to spare.
			Setup: both(setInputs("hydra-timeout", "3s"), hydraFault(hydraemu.Fault{Status: 503, Headers: map[string]string{"Retry-After": "2"}, Body: `{"error":"temporarily_unavailable"}`, ContentType: "application/json"})),
			Check: all(contains("would start after the deadline"), tokenRequests(2))},
		{Name: "504 once, recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 1, Status: 504}), Check: rotated},
		{Name: "504 forever: past the deadline", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 504, Body: "upstream request timeout", ContentType: "text/plain"})},
		{Name: "429 recovers", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Times: 1, Status: 429, Headers: map[string]string{"Retry-After": "0"}}), Check: rotated},
		{Name: "429 asking to wait an hour: not waited out", Group: "hydra", WantExit: 12, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 429, Headers: map[string]string{"Retry-After": "3600"}}),
			Check: all(contains("longer than the cap"), tokenRequests(1))},

		// OAuth errors: never retried.
		{Name: "invalid_grant: token already used", Group: "hydra", WantExit: 10, WantHydra: true,
			Unavoidable: "the token was spent outside the action before the run",
			Setup:       usedToken, Check: all(contains("re-bootstrap"), tokenRequests(2))},
		expiredChain(),
		{Name: "invalid_request: the same token refreshed concurrently elsewhere", Group: "hydra", WantExit: 14, WantHydra: true, WantAlive: true,
			Stack: stack.Options{Hydra: []hydraemu.Option{hydraemu.WithCommitDelay(3 * time.Second), hydraemu.WithConcurrentRefresh(hydraemu.ConcurrentRefreshInvalidRequest)}},
			Setup: concurrentRun,
			Check: all(contains("Please retry the request"), tokenRequests(2))},
		{Name: "two runs collide, the loser gets 500: no retry, chain kept", Group: "hydra", WantExit: 14, WantHydra: true, WantAlive: true,
			Stack: stack.Options{Hydra: []hydraemu.Option{hydraemu.WithCommitDelay(3 * time.Second), hydraemu.WithConcurrentRefresh(hydraemu.ConcurrentRefreshServerError)}},
			Setup: concurrentRun,
			Check: all(contains("another run had stored a new refresh token"), tokenRequests(2))},
		{Name: "500 while another run won the race: no retry, chain kept", Group: "hydra", WantExit: 14, WantHydra: true, WantAlive: true,
			Setup: lostRace, Check: all(contains("another run had stored a new refresh token"), tokenRequests(2))},
		{Name: "invalid_client: wrong client id", Group: "hydra", WantExit: 11, WantHydra: true, WantAlive: true,
			Setup: setInputs("client-id", "not-a-client")},

		// Answers that are not a token.
		{Name: "200 with an error field", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: jsonFault(200, `{"error":"access_denied"}`)},
		{Name: "200 with an error field and an access token", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: jsonFault(200, `{"access_token":"ory_at_with-error-field-0123456789","token_type":"bearer","expires_in":3600,"error":"temporarily_unavailable"}`),
			Check: untouched},
		{Name: "malformed JSON", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: jsonFault(200, `{"access_token":`)},
		{Name: "404 HTML page (token-url is not the token endpoint)", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Status: 404, Body: "<html><body><h1>Not Found</h1></body></html>", ContentType: "text/html"}),
			Check: all(contains("HTML page"), tokenRequests(1))},
		{Name: "missing access_token", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: jsonFault(200, `{"token_type":"bearer","expires_in":3600,"scope":"openid offline_access"}`),
			Check: all(contains("no access_token"), untouched)},
		{Name: "body over the 1 MiB limit", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: jsonFault(200, `{"access_token":"`+strings.Repeat("a", 1<<20)+`"}`),
			Check: all(contains("body larger than"), untouched)},
		{Name: "302 redirect not followed", Group: "hydra", WantExit: 13, WantHydra: true, WantAlive: true,
			Setup: hydraFault(hydraemu.Fault{Redirect: "https://login.example.com/"}), Check: tokenRequests(1)},

		// Answers with a token but odd fields: the rotated token is stored.
		{Name: "missing expires_in: stored expiry is now", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: rewrite(func(m map[string]any) { delete(m, "expires_in") }),
			Check: all(rotated, contains("expires_in"), expiresWithin(-time.Minute, time.Minute))},
		{Name: "expires_in as a string", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: rewrite(func(m map[string]any) { m["expires_in"] = "3600" }),
			Check: all(rotated, expiresWithin(59*time.Minute, 61*time.Minute))},
		{Name: "expires_in not a number: the rotated token is still stored", Group: "hydra", WantHydra: true, WantAlive: true,
			Setup: rewrite(func(m map[string]any) { m["expires_in"] = "soon" }),
			Check: all(rotated, contains("expires_in"), expiresWithin(-time.Minute, time.Minute))},
	}
}

// expiredChain: the stored refresh token outlived Hydra's ttl.refresh_token
// (720h without a refresh, e.g. a workflow disabled for a month).
func expiredChain() *Case {
	var skew atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	return &Case{Name: "invalid_grant: refresh token expired", Group: "hydra", WantExit: 10, WantHydra: true,
		Unavoidable: "the refresh token expired before the run",
		Stack:       stack.Options{Hydra: []hydraemu.Option{hydraemu.WithClock(clock)}},
		Setup:       func(*stack.Stack, map[string]string) { skew.Store(int64(hydraemu.DefaultRefreshTTL + time.Hour)) },
		Check:       all(contains("The refresh token expired"), tokenRequests(1))}
}

// concurrentRun is another run refreshing the same token at the same
// moment: it reaches Hydra first (during this run's preflight) and commits
// while this run's request is held between validation and commit, as in
// Hydra's transaction. The loser gets invalid_request and revokes nothing;
// the winner stores its successor.
func concurrentRun(s *stack.Stack, in map[string]string) {
	in["hydra-timeout"] = "10s"
	rt := in["refresh-token"]
	var once sync.Once
	done := make(chan struct{})
	s.AfterGitHub(func(r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/secrets/public-key") {
			return
		}
		once.Do(func() {
			go func() {
				defer close(done)
				next := refreshOutside(s, rt)
				if next.RefreshToken != "" {
					s.GitHub.SetSecret(repoScope, "WIZARD_REFRESH_TOKEN", next.RefreshToken, time.Now())
				}
			}()
			// Hold this run's preflight answer until the other run is inside
			// the token endpoint (validated, waiting to commit).
			for deadline := time.Now().Add(5 * time.Second); s.TokenRequestsInFlight() == 0 && time.Now().Before(deadline); {
				time.Sleep(5 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
		})
	})
	onSettle(s, func() {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
	})
}

// tokenRequests checks how many requests reached the token endpoint.
func tokenRequests(n int) func(*stack.Stack, *stack.Outcome) error {
	return func(s *stack.Stack, _ *stack.Outcome) error {
		got := 0
		for _, r := range s.Hydra.Requests() {
			if r.Endpoint == hydraemu.PathToken {
				got++
			}
		}
		if got != n {
			return fmt.Errorf("%d token endpoint requests, want %d", got, n)
		}
		return nil
	}
}

// expiresWithin checks the expires-at output against now.
func expiresWithin(lo, hi time.Duration) func(*stack.Stack, *stack.Outcome) error {
	return func(_ *stack.Stack, o *stack.Outcome) error {
		t, err := time.Parse(time.RFC3339, o.Outputs["expires-at"])
		if err != nil {
			return fmt.Errorf("expires-at output %q: %v", o.Outputs["expires-at"], err)
		}
		if d := time.Until(t); d < lo || d > hi {
			return fmt.Errorf("expires-at is %s from now, want between %s and %s", d.Round(time.Second), lo, hi)
		}
		return nil
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
				// The hook runs on concurrent handlers (the preflight's reads
				// are parallel): rotate exactly once.
				var rotatedOnce atomic.Bool
				s.AfterGitHub(func(r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/secrets/public-key") && rotatedOnce.CompareAndSwap(false, true) {
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

		// Preflight: nothing spent.
		{Name: "GitHub unreachable: Hydra never called", Group: "github", WantExit: 24, WantAlive: true,
			Env: []string{"GITHUB_API_URL=http://127.0.0.1:1"}, Check: untouchedHydra},
		{Name: "preflight slower than the deadline", Group: "github", WantExit: 24, WantAlive: true,
			Setup: both(setInputs("github-timeout", "2s"), ghFault(githubemu.Slow(keyRoute, 10*time.Second))), Check: untouched},
		{Name: "preflight answered with a redirect (repository renamed): not followed", Group: "github", WantExit: 22, WantAlive: true,
			Setup: ghFault(githubemu.Fault{Route: keyRoute, Status: 301, Headers: map[string]string{"Location": "http://127.0.0.1:9/repos/amplitude/renamed/actions/secrets/public-key"}, Body: `{"message":"Moved Permanently"}`}),
			Check: all(untouched, contains("renamed or transferred"), githubRequests(keyRoute, 1))},
		{Name: "secondary rate limit (429) at preflight, recovers", Group: "github", WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				f := githubemu.SecondaryRateLimit(keyRoute, time.Second).FirstN(1)
				f.Status = http.StatusTooManyRequests
				s.GitHub.Inject(f)
			},
			Check: rotated},

		// Writes, after the token was spent.
		{Name: "primary rate limit on the refresh-token PUT, resets in a second", Group: "github", WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				s.GitHub.Inject(githubemu.PrimaryRateLimit(put, time.Now().Add(time.Second)).ForName("WIZARD_REFRESH_TOKEN").FirstN(1))
			},
			Check: all(rotated, contains("GitHub retry"))},
		{Name: "rate limit beyond the cap on the refresh-token PUT: recovery record", Group: "github", WantExit: 30, WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.SecondaryRateLimit(put, time.Hour).ForName("WIZARD_REFRESH_TOKEN")),
			Check: restoreRecord},
		{Name: "access-token and expires-at PUTs 5xx for good, refresh token stored: partial write", Group: "github", WantExit: 31, WantHydra: true, WantAlive: true,
			Setup: both(ghFault(githubemu.ServerError(put, 503).ForName("WIZARD_OAUTH_TOKEN")), ghFault(githubemu.ServerError(put, 500).ForName("WIZARD_EXPIRES_AT"))),
			Check: all(contains("Chain alive"), func(s *stack.Stack, o *stack.Outcome) error {
				if s.Stored("WIZARD_REFRESH_TOKEN") == s.Initial.RefreshToken {
					return fmt.Errorf("refresh token not stored")
				}
				if s.Stored("WIZARD_OAUTH_TOKEN") != s.Initial.AccessToken {
					return fmt.Errorf("access token changed although its PUT failed")
				}
				if strings.Contains(o.Stdout, ghsecrets.RecoveryPrefix) {
					return fmt.Errorf("recovery record printed although the refresh token was stored")
				}
				return nil
			})},
		{Name: "every PUT 5xx for good: the recovery record holds all three", Group: "github", WantExit: 30, WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.ServerError(put, 502)),
			Check: all(recordHolds(3), restoreRecord, func(s *stack.Stack, o *stack.Outcome) error {
				if s.Stored("WIZARD_OAUTH_TOKEN") != o.Outputs["access-token"] {
					return fmt.Errorf("restored access token differs from the access-token output")
				}
				return nil
			})},
		{Name: "refresh-token PUT stored but its answer lost, retried", Group: "github", WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.Fault{Route: put, Name: "WIZARD_REFRESH_TOKEN", Times: 1, Commit: true, DropConnection: true}),
			Check: rotated},
		{Name: "refresh-token PUT stored but every answer 502: the record is harmless", Group: "github", WantExit: 30, WantHydra: true, WantAlive: true,
			Setup: ghFault(githubemu.Fault{Route: put, Name: "WIZARD_REFRESH_TOKEN", Commit: true, Status: 502}),
			Check: restoreRecordAfterCommit},
		{Name: "PAT revoked between preflight and write: recovery record", Group: "github", WantExit: 30, WantHydra: true, WantAlive: true,
			Setup: func(s *stack.Stack, _ map[string]string) {
				var once sync.Once
				s.AfterGitHub(func(r *http.Request) {
					if strings.HasSuffix(r.URL.Path, "/secrets/public-key") {
						once.Do(func() { s.GitHub.RemoveToken(stack.PAT) })
					}
				})
			},
			Check: func(s *stack.Stack, o *stack.Outcome) error {
				// The user restores with a fresh token.
				s.GitHub.AddToken(stack.PAT, githubemu.AllPermissions())
				return restoreRecord(s, o)
			}},
	}
}

// untouchedHydra checks that the token endpoint was never called.
func untouchedHydra(s *stack.Stack, _ *stack.Outcome) error {
	for _, r := range s.Hydra.Requests() {
		if r.Endpoint == hydraemu.PathToken {
			return fmt.Errorf("token endpoint called")
		}
	}
	return nil
}

// githubRequests checks how many requests a GitHub route got.
func githubRequests(route string, n int) func(*stack.Stack, *stack.Outcome) error {
	return func(s *stack.Stack, _ *stack.Outcome) error {
		got := 0
		for _, r := range s.GitHub.Requests() {
			if r.Route == route {
				got++
			}
		}
		if got != n {
			return fmt.Errorf("%d %s requests, want %d", got, route, n)
		}
		return nil
	}
}

// recordHolds checks the printed recovery record carries n secrets, the
// refresh token first.
func recordHolds(n int) func(*stack.Stack, *stack.Outcome) error {
	return func(_ *stack.Stack, o *stack.Outcome) error {
		rec, err := ghsecrets.ParseRecord(o.Stdout)
		if err != nil {
			return err
		}
		if len(rec.Secrets) != n || rec.Secrets[0].Name != "WIZARD_REFRESH_TOKEN" {
			return fmt.Errorf("recovery record holds %d secrets (first %s), want %d with the refresh token first", len(rec.Secrets), rec.Secrets[0].Name, n)
		}
		return nil
	}
}

// restoreRecord replays the printed recovery record against the emulator
// (what `bootstrap restore` does); the chain must be dead before it (the
// stored token was spent) and is then checked alive by the runner.
func restoreRecord(s *stack.Stack, o *stack.Outcome) error {
	if s.ChainAlive() {
		return fmt.Errorf("chain alive before the restore: the old token should be used")
	}
	return replayRecord(s, o)
}

// restoreRecordAfterCommit: GitHub stored the token but every answer was
// lost; the record is printed all the same and restoring it is harmless.
func restoreRecordAfterCommit(s *stack.Stack, o *stack.Outcome) error {
	if !s.ChainAlive() {
		return fmt.Errorf("chain not alive before the restore: the committed write should have stored the token")
	}
	return replayRecord(s, o)
}

func replayRecord(s *stack.Stack, o *stack.Outcome) error {
	rec, err := ghsecrets.ParseRecord(o.Stdout)
	if err != nil {
		return err
	}
	if !strings.Contains(o.Summary, rec.Encode()) {
		return fmt.Errorf("recovery record missing from the step summary")
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

// lostRace: when this run's token request arrives, another run holding the
// same token has just refreshed it and stored the new one, and Hydra answers
// this run 500 (as real Hydra v2.3.0 does when two refreshes collide on its
// database). Retrying would present the used token: reuse, which revokes
// the chain the other run stored. The run must re-read the secret and stop.
func lostRace(s *stack.Stack, in map[string]string) {
	rt := in["refresh-token"]
	var fired atomic.Bool
	s.BeforeToken(func(r *http.Request) {
		if !fired.CompareAndSwap(false, true) {
			return
		}
		next := refreshOutside(s, rt)
		if next.RefreshToken != "" {
			s.GitHub.SetSecret(repoScope, "WIZARD_REFRESH_TOKEN", next.RefreshToken, time.Now())
		}
		s.Hydra.Inject(hydraemu.Fault{Endpoint: hydraemu.PathToken, Times: 1, Status: 500, Body: `{"error":"server_error","error_description":"The authorization server encountered an unexpected condition that prevented it from fulfilling the request."}`, ContentType: "application/json"})
	})
}

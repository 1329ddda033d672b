package inputs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func parseEnv(env map[string]string, args ...string) (*Config, error) {
	getenv := func(k string) string { return env[k] }
	input := func(name string) string {
		return strings.TrimSpace(env["INPUT_"+strings.ToUpper(strings.ReplaceAll(name, " ", "_"))])
	}
	return Parse(args, &Source{Input: input, Getenv: getenv, Stdin: strings.NewReader("from-stdin\n")}, io.Discard)
}

func base() map[string]string {
	return map[string]string{
		"GITHUB_ACTIONS":      "true",
		"INPUT_REFRESH-TOKEN": "ory_rt_abc.def",
		"INPUT_GITHUB-TOKEN":  "github_pat_x",
		"INPUT_REPOSITORY":    "amplitude/wizard",
	}
}

func with(kv ...string) map[string]string {
	env := base()
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(env, kv[i])
			continue
		}
		env[kv[i]] = kv[i+1]
	}
	return env
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := parseEnv(base())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.TokenURL, "https://auth.amplitude.com/oauth2/token"; got != want {
		t.Errorf("token url = %q, want %q", got, want)
	}
	if got, want := c.ClientID, "0ac84169-c41c-4222-885b-31469c761cb0"; got != want {
		t.Errorf("client id = %q, want %q", got, want)
	}
	if c.AccessTokenSecret != "WIZARD_OAUTH_TOKEN" || c.RefreshTokenSecret != "WIZARD_REFRESH_TOKEN" || c.ExpiresAtSecret != "WIZARD_EXPIRES_AT" || c.IDTokenSecret != "" {
		t.Errorf("secret names = %q %q %q %q", c.AccessTokenSecret, c.RefreshTokenSecret, c.ExpiresAtSecret, c.IDTokenSecret)
	}
	if c.Owner != "amplitude" || c.Repo != "wizard" || c.DryRun || c.MinTTL != 0 || !c.ExpiresAt.IsZero() {
		t.Errorf("unexpected config %+v", c)
	}
	if c.HydraTimeout != 60*time.Second || c.GitHubTimeout != 60*time.Second {
		t.Errorf("timeouts = %s %s", c.HydraTimeout, c.GitHubTimeout)
	}
}

func TestValid(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		check func(*Config) bool
	}{
		{"eu zone", with("INPUT_ZONE", "EU"), nil, func(c *Config) bool {
			return c.TokenURL == "https://auth.eu.amplitude.com/oauth2/token" && c.ClientID == "110d04a1-8e60-4157-9c43-fcbe4e014a85"
		}},
		{"loopback http token url", with("INPUT_TOKEN-URL", "http://127.0.0.1:4444/oauth2/token"), nil, func(c *Config) bool { return c.TokenURL == "http://127.0.0.1:4444/oauth2/token" }},
		{"localhost http", with("INPUT_TOKEN-URL", "http://localhost:1/t"), nil, func(c *Config) bool { return true }},
		{"ipv6 loopback", with("INPUT_TOKEN-URL", "http://[::1]:1/t"), nil, func(c *Config) bool { return true }},
		{"flag wins over input", with("INPUT_ZONE", "us"), []string{"--zone", "eu"}, func(c *Config) bool { return c.Zone.Name == "eu" }},
		{"repository from env", with("INPUT_REPOSITORY", "<unset>", "GITHUB_REPOSITORY", "o/r"), nil, func(c *Config) bool { return c.Owner == "o" && c.Repo == "r" }},
		{"skip-if-fresh", with("INPUT_EXPIRES-AT", "2026-01-02T03:04:05.000Z", "INPUT_MIN-TTL", "20m"), nil, func(c *Config) bool {
			return c.ExpiresAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) && c.MinTTL == 20*time.Minute
		}},
		{"offset time", with("INPUT_EXPIRES-AT", "2026-01-02T05:04:05+02:00"), nil, func(c *Config) bool { return c.ExpiresAt.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) }},
		{"custom names upper-cased", with("INPUT_ACCESS-TOKEN-SECRET", "my_at", "INPUT_ID-TOKEN-SECRET", "ID_T"), nil, func(c *Config) bool { return c.AccessTokenSecret == "MY_AT" && c.IDTokenSecret == "ID_T" }},
		{"environment", with("INPUT_ENVIRONMENT", "production"), nil, func(c *Config) bool { return c.Environment == "production" }},
		{"organization selected", with("INPUT_ORGANIZATION", "amplitude", "INPUT_VISIBILITY", "selected", "INPUT_SELECTED-REPOSITORIES", "a, b\nc"), nil, func(c *Config) bool {
			return c.Visibility == "selected" && strings.Join(c.SelectedRepositories, ",") == "a,b,c"
		}},
		{"organization default private", with("INPUT_ORGANIZATION", "amplitude"), nil, func(c *Config) bool { return c.Visibility == "private" }},
		{"dry run", with("INPUT_DRY-RUN", "true"), nil, func(c *Config) bool { return c.DryRun }},
		{"run id", with("GITHUB_RUN_ID", "42"), nil, func(c *Config) bool { return c.RunID == 42 }},
		{"refresh token from stdin", with("INPUT_REFRESH-TOKEN", "<unset>"), []string{"--refresh-token-file", "-"}, func(c *Config) bool { return c.RefreshToken == "from-stdin" }},
		{"github token from GH_TOKEN outside actions", with("GITHUB_ACTIONS", "<unset>", "INPUT_GITHUB-TOKEN", "<unset>", "GH_TOKEN", "gho_x"), nil, func(c *Config) bool { return c.GitHubToken == "gho_x" }},
		{"api url", with("GITHUB_API_URL", "https://ghe.example.com/api/v3/"), nil, func(c *Config) bool { return c.APIURL == "https://ghe.example.com/api/v3" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseEnv(tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Fatalf("unexpected config %+v", c)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxSecretBytes+1)
	cases := []struct {
		name  string
		env   map[string]string
		args  []string
		input string
	}{
		{"unknown zone", with("INPUT_ZONE", "apac"), nil, "zone"},
		{"missing refresh token", with("INPUT_REFRESH-TOKEN", "<unset>"), nil, "refresh-token"},
		{"refresh token with newline", with("INPUT_REFRESH-TOKEN", "a\nb"), nil, "refresh-token"},
		{"refresh token over 48KB", with("INPUT_REFRESH-TOKEN", long), nil, "refresh-token"},
		{"missing github token in actions", with("INPUT_GITHUB-TOKEN", "<unset>", "GH_TOKEN", "ignored-in-actions"), nil, "github-token"},
		{"http to non-loopback", with("INPUT_TOKEN-URL", "http://auth.example.com/oauth2/token"), nil, "token-url"},
		{"http to private ip", with("INPUT_TOKEN-URL", "http://10.0.0.1/oauth2/token"), nil, "token-url"},
		{"ftp token url", with("INPUT_TOKEN-URL", "ftp://x/y"), nil, "token-url"},
		{"relative token url", with("INPUT_TOKEN-URL", "/oauth2/token"), nil, "token-url"},
		{"token url with credentials", with("INPUT_TOKEN-URL", "https://u:p@x/y"), nil, "token-url"},
		{"client id with space", with("INPUT_CLIENT-ID", "a b"), nil, "client-id"},
		{"api url http", with("GITHUB_API_URL", "http://api.github.com"), nil, "GITHUB_API_URL"},
		{"malformed repository", with("INPUT_REPOSITORY", "not-a-repo"), nil, "repository"},
		{"repository with spaces", with("INPUT_REPOSITORY", "a b/c"), nil, "repository"},
		{"no repository", with("INPUT_REPOSITORY", "<unset>"), nil, "repository"},
		{"env and org", with("INPUT_ENVIRONMENT", "prod", "INPUT_ORGANIZATION", "amplitude"), nil, "environment"},
		{"env with slash", with("INPUT_ENVIRONMENT", "a/b"), nil, "environment"},
		{"visibility without org", with("INPUT_VISIBILITY", "all"), nil, "visibility"},
		{"selected without org", with("INPUT_SELECTED-REPOSITORIES", "a"), nil, "selected-repositories"},
		{"bad visibility", with("INPUT_ORGANIZATION", "amplitude", "INPUT_VISIBILITY", "public"), nil, "visibility"},
		{"selected without list", with("INPUT_ORGANIZATION", "amplitude", "INPUT_VISIBILITY", "selected"), nil, "selected-repositories"},
		{"list without selected", with("INPUT_ORGANIZATION", "amplitude", "INPUT_SELECTED-REPOSITORIES", "a"), nil, "selected-repositories"},
		{"secret name GITHUB_", with("INPUT_ACCESS-TOKEN-SECRET", "github_token"), nil, "access-token-secret"},
		{"secret name digit", with("INPUT_REFRESH-TOKEN-SECRET", "1TOKEN"), nil, "refresh-token-secret"},
		{"secret name hyphen", with("INPUT_EXPIRES-AT-SECRET", "EXPIRES-AT"), nil, "expires-at-secret"},
		{"secret name empty", with("INPUT_EXPIRES-AT-SECRET", " "), []string{"--expires-at-secret", ""}, "expires-at-secret"},
		{"duplicate names", with("INPUT_ACCESS-TOKEN-SECRET", "wizard_refresh_token"), nil, "refresh-token-secret"},
		{"bad expires-at", with("INPUT_EXPIRES-AT", "tomorrow"), nil, "expires-at"},
		{"date only expires-at", with("INPUT_EXPIRES-AT", "2026-01-02"), nil, "expires-at"},
		{"bad min-ttl", with("INPUT_MIN-TTL", "20"), nil, "min-ttl"},
		{"negative min-ttl", with("INPUT_MIN-TTL", "-5m"), nil, "min-ttl"},
		{"min-ttl under a second", with("INPUT_MIN-TTL", "500ms"), nil, "min-ttl"},
		{"bad dry-run", with("INPUT_DRY-RUN", "maybe"), nil, "dry-run"},
		{"secret as argument", base(), []string{"ory_rt_abc.def"}, "flags"},
		{"unknown flag", base(), []string{"--refresh-token", "x"}, "flags"},
		{"missing token file", with("INPUT_REFRESH-TOKEN", "<unset>"), []string{"--refresh-token-file", "/nonexistent/x"}, "refresh-token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseEnv(tc.env, tc.args...)
			var ie *Error
			if !errors.As(err, &ie) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if got := ie.Input; got != tc.input {
				t.Fatalf("input = %q, want %q (%v)", got, tc.input, err)
			}
			if strings.Contains(err.Error(), "ory_rt_abc.def") || strings.Contains(err.Error(), "github_pat_x") {
				t.Fatalf("error quotes a secret: %v", err)
			}
		})
	}
}

func TestTokenFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "rt")
	if err := os.WriteFile(path, []byte("file-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := parseEnv(with("INPUT_REFRESH-TOKEN", "<unset>"), "--refresh-token-file", path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.RefreshToken, "file-token"; got != want {
		t.Fatalf("refresh token = %q, want %q", got, want)
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	_, err := Parse([]string{"--help"}, &Source{Input: func(string) string { return "" }, Getenv: func(string) string { return "" }}, &b)
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("err = %v, want ErrHelp", err)
	}
	for _, in := range All {
		name := "--" + in.Name
		if in.Secret {
			name += "-file"
		}
		if !strings.Contains(b.String(), name+"\n") {
			t.Errorf("help lacks %s", name)
		}
	}
}

func TestCheckURLNeverQuotesCredentials(t *testing.T) {
	t.Parallel()
	for _, raw := range []string{
		"https://user:hunter2secret@auth.example.com/oauth2/token",
		"https://user:hunter2secret@auth.example.com/%zz",
		"http://user:hunter2secret@10.0.0.1/t",
		"https://auth.example.com/t?token=hunter2secret",
		"ftp://u:hunter2secret@x/y",
	} {
		err := CheckURL(raw)
		if err == nil {
			t.Errorf("CheckURL(%q) accepted", raw)
			continue
		}
		if strings.Contains(err.Error(), "hunter2secret") {
			t.Errorf("CheckURL(%q) error quotes the secret: %v", raw, err)
		}
	}
}

// Package inputs turns the action's inputs (INPUT_* environment variables
// as the runner passes them to a container, or command-line flags of the
// same names) into a validated Config. Validation happens before any
// network call, and every error names the input at fault without quoting a
// secret.
package inputs

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Zone is an Amplitude data region with its Hydra host and OAuth client.
type Zone struct {
	Name     string
	Host     string
	ClientID string
}

// TokenURL is the zone's token endpoint.
func (z Zone) TokenURL() string { return z.Host + "/oauth2/token" }

// Zones are the known Amplitude zones.
var Zones = map[string]Zone{
	"us": {Name: "us", Host: "https://auth.amplitude.com", ClientID: "0ac84169-c41c-4222-885b-31469c761cb0"},
	"eu": {Name: "eu", Host: "https://auth.eu.amplitude.com", ClientID: "110d04a1-8e60-4157-9c43-fcbe4e014a85"},
}

// LookupZone returns the zone named (case-insensitively) or an error that
// lists the known ones.
func LookupZone(name string) (Zone, error) {
	z, ok := Zones[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Zone{}, fmt.Errorf("unknown zone %q: want us or eu", name)
	}
	return z, nil
}

// MaxSecretBytes is GitHub's limit on one secret's value.
const MaxSecretBytes = 48 * 1024

// Default secret names.
const (
	DefaultAccessTokenSecret  = "WIZARD_OAUTH_TOKEN"
	DefaultRefreshTokenSecret = "WIZARD_REFRESH_TOKEN"
	DefaultExpiresAtSecret    = "WIZARD_EXPIRES_AT"
)

// Config is a validated run configuration.
type Config struct {
	Zone     Zone
	TokenURL string
	ClientID string

	RefreshToken string
	GitHubToken  string
	APIURL       string

	// Repository is owner/name: the target (unless Organization is set)
	// and where the workflow run lives.
	Owner, Repo  string
	Environment  string
	Organization string
	Visibility   string
	// SelectedRepositories are repository names in Organization.
	SelectedRepositories []string

	AccessTokenSecret  string
	RefreshTokenSecret string
	ExpiresAtSecret    string
	IDTokenSecret      string

	// ExpiresAt is the stored token's expiry (zero when not given); MinTTL
	// the life it must have left for the run to skip the refresh.
	ExpiresAt time.Time
	MinTTL    time.Duration

	DryRun bool

	// RunID is the workflow run (GITHUB_RUN_ID), for the stale-secret
	// guard; 0 outside Actions.
	RunID int64

	HydraTimeout  time.Duration
	GitHubTimeout time.Duration
}

// Input describes one input: its name in action.yml and as a flag.
type Input struct {
	Name    string
	Usage   string
	Default string
	// Secret inputs are never taken as flag values (they would show in the
	// process list): the flag --NAME-file reads the value from a file, or
	// from standard input for "-".
	Secret bool
	// Hidden inputs are not in action.yml (advanced tuning).
	Hidden bool
}

// All lists every input in the order --help shows them.
var All = []Input{
	{Name: "zone", Default: "us", Usage: "Amplitude zone: us or eu (picks the Hydra host and OAuth client)"},
	{Name: "refresh-token", Secret: true, Usage: "the stored refresh token (required)"},
	{Name: "github-token", Secret: true, Usage: "fine-grained PAT or installation token with Secrets: write (required; outside Actions GH_TOKEN or GITHUB_TOKEN is used when unset)"},
	{Name: "repository", Usage: "owner/name of the repository (default: GITHUB_REPOSITORY)"},
	{Name: "environment", Usage: "write this environment's secrets instead of the repository's"},
	{Name: "organization", Usage: "write organization secrets instead of the repository's"},
	{Name: "visibility", Usage: "visibility of a newly created organization secret: private (default), all or selected; an existing secret keeps its own"},
	{Name: "selected-repositories", Usage: "comma- or newline-separated repository names for visibility selected"},
	{Name: "token-url", Usage: "token endpoint override (https://, or http:// on loopback only)"},
	{Name: "client-id", Usage: "OAuth client id override"},
	{Name: "access-token-secret", Default: DefaultAccessTokenSecret, Usage: "secret that receives the access token"},
	{Name: "refresh-token-secret", Default: DefaultRefreshTokenSecret, Usage: "secret that receives the refresh token"},
	{Name: "expires-at-secret", Default: DefaultExpiresAtSecret, Usage: "secret that receives the expiry (ISO 8601)"},
	{Name: "id-token-secret", Usage: "secret that receives the id token (empty: not stored)"},
	{Name: "expires-at", Usage: "expiry of the stored access token (ISO 8601), for skip-if-fresh"},
	{Name: "min-ttl", Usage: "skip the refresh while the stored token has more than this left (e.g. 20m)"},
	{Name: "dry-run", Default: "false", Usage: "validate inputs and check GitHub access; never call Hydra, write nothing"},
	{Name: "hydra-timeout", Default: "60s", Hidden: true, Usage: "total deadline of the token exchange, retries included"},
	{Name: "github-timeout", Default: "60s", Hidden: true, Usage: "deadline of each GitHub call, retries included"},
}

// Source reads raw values: flags first, then the runner's INPUT_*
// variables, then the defaults.
type Source struct {
	Input  func(name string) string // the runner's input, e.g. actions.Runtime.Input
	Getenv func(string) string
	Stdin  io.Reader
	flags  map[string]*string
	files  map[string]*string
	set    map[string]bool
}

// ErrHelp is returned by Parse when --help was asked for.
var ErrHelp = flag.ErrHelp

// Error is a bad input.
type Error struct {
	Input  string
	Reason string
}

func (e *Error) Error() string { return fmt.Sprintf("input %s: %s", e.Input, e.Reason) }

func bad(input, format string, args ...any) *Error {
	return &Error{Input: input, Reason: fmt.Sprintf(format, args...)}
}

// Parse reads args and the environment into a Config. usage receives the
// --help text.
func Parse(args []string, src *Source, usage io.Writer) (*Config, error) {
	fs := flag.NewFlagSet("wizard-oauth-refresh", flag.ContinueOnError)
	fs.SetOutput(usage)
	src.flags = map[string]*string{}
	src.files = map[string]*string{}
	for _, in := range All {
		if in.Secret {
			src.files[in.Name] = fs.String(in.Name+"-file", "", "read "+in.Name+" from this file (- for standard input): "+in.Usage)
			continue
		}
		src.flags[in.Name] = fs.String(in.Name, "", in.Usage+defaultNote(in))
	}
	fs.Usage = func() { writeUsage(fs, usage) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, &Error{Input: "flags", Reason: err.Error()}
	}
	if fs.NArg() > 0 {
		// The argument is not quoted: the likeliest one is a secret pasted
		// where a flag was meant.
		return nil, &Error{Input: "flags", Reason: fmt.Sprintf("%d unexpected argument(s) (secrets are never taken as arguments; see --help)", fs.NArg())}
	}
	src.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { src.set[strings.TrimSuffix(f.Name, "-file")] = true })
	return src.config()
}

func defaultNote(in Input) string {
	if in.Default == "" {
		return ""
	}
	return " (default " + in.Default + ")"
}

func writeUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, `wizard-oauth-refresh refreshes an Amplitude (Ory Hydra) OAuth session and
stores the new access token, refresh token and expiry as GitHub Actions
secrets. GitHub access is checked before the refresh token is spent, and a
rotated refresh token is never dropped: if GitHub refuses it, it is printed
sealed (only GitHub can open it) as a recovery record.

Usage:
  wizard-oauth-refresh [flags]

Inside a workflow every flag arrives as an action input (INPUT_ZONE,
INPUT_REFRESH-TOKEN, ...). A flag given on the command line wins over the
input of the same name. Secrets are never accepted as flag values (they would
be visible in the process list): pass them as INPUT_REFRESH-TOKEN /
INPUT_GITHUB-TOKEN in the environment, or with --refresh-token-file and
--github-token-file.

Flags:
`)
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  --%s\n      %s\n", f.Name, f.Usage)
	})
	fmt.Fprint(w, `
Exit codes: 0 success or skipped; see the README's "Exit codes" table for the
failure classes (2 bad input, 10 refresh token revoked, 30 new refresh token
not stored, ...).
`)
}

// raw returns an input's raw value: flag, then file flag, then INPUT_*,
// then default.
func (s *Source) raw(name string) (string, error) {
	if p, ok := s.flags[name]; ok && s.set[name] {
		return strings.TrimSpace(*p), nil
	}
	if p, ok := s.files[name]; ok && s.set[name] {
		return s.readFile(name, *p)
	}
	if v := s.Input(name); v != "" {
		return v, nil
	}
	for _, in := range All {
		if in.Name == name {
			return in.Default, nil
		}
	}
	return "", nil
}

func (s *Source) readFile(name, path string) (string, error) {
	var (
		b   []byte
		err error
	)
	if path == "-" {
		if s.Stdin == nil {
			return "", bad(name, "--%s-file - needs standard input", name)
		}
		b, err = io.ReadAll(io.LimitReader(s.Stdin, MaxSecretBytes+1))
	} else {
		var f *os.File
		if f, err = os.Open(path); err == nil {
			b, err = io.ReadAll(io.LimitReader(f, MaxSecretBytes+1))
			f.Close()
		}
	}
	if err != nil {
		return "", bad(name, "failed to read --%s-file: %v", name, err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (s *Source) config() (*Config, error) {
	v := map[string]string{}
	for _, in := range All {
		raw, err := s.raw(in.Name)
		if err != nil {
			return nil, err
		}
		v[in.Name] = raw
	}
	c := &Config{}
	var err error

	if c.Zone, err = LookupZone(v["zone"]); err != nil {
		return nil, bad("zone", "%q is not a zone: want us or eu", v["zone"])
	}
	c.TokenURL = c.Zone.TokenURL()
	if v["token-url"] != "" {
		if err := CheckURL(v["token-url"]); err != nil {
			return nil, bad("token-url", "%v", err)
		}
		c.TokenURL = v["token-url"]
	}
	c.ClientID = c.Zone.ClientID
	if id := v["client-id"]; id != "" {
		if len(id) > 255 || strings.ContainsFunc(id, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			return nil, bad("client-id", "must be at most 255 printable characters without spaces")
		}
		c.ClientID = id
	}

	if c.RefreshToken, err = secretValue("refresh-token", v["refresh-token"]); err != nil {
		return nil, err
	}
	gt := v["github-token"]
	if gt == "" && s.Getenv("GITHUB_ACTIONS") != "true" {
		gt = firstNonEmpty(s.Getenv("GH_TOKEN"), s.Getenv("GITHUB_TOKEN"))
	}
	if c.GitHubToken, err = secretValue("github-token", gt); err != nil {
		return nil, err
	}

	c.APIURL = strings.TrimRight(s.Getenv("GITHUB_API_URL"), "/")
	if c.APIURL != "" {
		if err := CheckURL(c.APIURL); err != nil {
			return nil, bad("GITHUB_API_URL", "%v", err)
		}
	}

	repo := firstNonEmpty(v["repository"], s.Getenv("GITHUB_REPOSITORY"))
	if repo == "" {
		return nil, bad("repository", "required (owner/name); GITHUB_REPOSITORY is not set either")
	}
	if c.Owner, c.Repo, err = SplitRepo(repo); err != nil {
		return nil, bad("repository", "%v", err)
	}
	if err := c.target(v); err != nil {
		return nil, err
	}

	for _, n := range []struct {
		input string
		dst   *string
	}{
		{"access-token-secret", &c.AccessTokenSecret},
		{"refresh-token-secret", &c.RefreshTokenSecret},
		{"expires-at-secret", &c.ExpiresAtSecret},
		{"id-token-secret", &c.IDTokenSecret},
	} {
		name := v[n.input]
		if name == "" && n.input == "id-token-secret" {
			continue
		}
		if err := CheckSecretName(name); err != nil {
			return nil, bad(n.input, "%v", err)
		}
		*n.dst = strings.ToUpper(name)
	}
	if err := distinct(c); err != nil {
		return nil, err
	}

	if e := v["expires-at"]; e != "" {
		if c.ExpiresAt, err = ParseTime(e); err != nil {
			return nil, bad("expires-at", "%v", err)
		}
	}
	if m := v["min-ttl"]; m != "" {
		if c.MinTTL, err = ParseDuration(m); err != nil {
			return nil, bad("min-ttl", "%v", err)
		}
	}
	if c.DryRun, err = parseBool(v["dry-run"]); err != nil {
		return nil, bad("dry-run", "%v", err)
	}
	if c.HydraTimeout, err = ParseDuration(v["hydra-timeout"]); err != nil {
		return nil, bad("hydra-timeout", "%v", err)
	}
	if c.GitHubTimeout, err = ParseDuration(v["github-timeout"]); err != nil {
		return nil, bad("github-timeout", "%v", err)
	}
	if id := s.Getenv("GITHUB_RUN_ID"); id != "" {
		if n, err := strconv.ParseInt(id, 10, 64); err == nil && n > 0 {
			c.RunID = n
		}
	}
	return c, nil
}

// target validates the environment / organization inputs: one target per
// run.
func (c *Config) target(v map[string]string) error {
	c.Environment = v["environment"]
	c.Organization = v["organization"]
	if c.Environment != "" && c.Organization != "" {
		return bad("environment", "cannot be combined with organization: one target per run")
	}
	if c.Environment != "" {
		if len(c.Environment) > 255 || strings.ContainsAny(c.Environment, "/\\") || strings.ContainsFunc(c.Environment, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			return bad("environment", "%q is not an environment name", c.Environment)
		}
	}
	vis := strings.ToLower(v["visibility"])
	sel := splitList(v["selected-repositories"])
	if c.Organization == "" {
		if vis != "" {
			return bad("visibility", "only applies with organization")
		}
		if len(sel) > 0 {
			return bad("selected-repositories", "only applies with organization")
		}
		return nil
	}
	if !ownerName.MatchString(c.Organization) {
		return bad("organization", "%q is not an organization login", c.Organization)
	}
	if vis == "" {
		vis = "private"
	}
	switch vis {
	case "private", "all":
		if len(sel) > 0 {
			return bad("selected-repositories", "needs visibility selected (visibility is %s)", vis)
		}
	case "selected":
		if len(sel) == 0 {
			return bad("selected-repositories", "required with visibility selected")
		}
		for _, r := range sel {
			if !repoName.MatchString(r) {
				return bad("selected-repositories", "%q is not a repository name", r)
			}
		}
	default:
		return bad("visibility", "%q: want private, all or selected", vis)
	}
	c.Visibility = vis
	c.SelectedRepositories = sel
	return nil
}

func distinct(c *Config) error {
	seen := map[string]string{}
	for _, n := range []struct{ input, name string }{
		{"access-token-secret", c.AccessTokenSecret},
		{"refresh-token-secret", c.RefreshTokenSecret},
		{"expires-at-secret", c.ExpiresAtSecret},
		{"id-token-secret", c.IDTokenSecret},
	} {
		if n.name == "" {
			continue
		}
		if other, dup := seen[n.name]; dup {
			return bad(n.input, "%s is also the name given to %s", n.name, other)
		}
		seen[n.name] = n.input
	}
	return nil
}

// secretValue checks a secret input without ever quoting it.
func secretValue(name, v string) (string, error) {
	switch {
	case v == "":
		return "", bad(name, "required but empty (is the secret set and passed to the step?)")
	case len(v) > MaxSecretBytes:
		return "", bad(name, "longer than %d bytes", MaxSecretBytes)
	case strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "", bad(name, "contains whitespace or control characters (was the secret pasted with a line break?)")
	}
	return v, nil
}

var (
	ownerName  = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	repoName   = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)
	secretRule = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// SplitRepo splits and checks owner/name.
func SplitRepo(s string) (owner, name string, err error) {
	owner, name, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || !ownerName.MatchString(owner) || !repoName.MatchString(name) || name == "." || name == ".." {
		return "", "", fmt.Errorf("%q is not owner/name", s)
	}
	return owner, name, nil
}

// CheckSecretName applies GitHub's rules for secret names: letters, digits
// and underscores, not starting with a digit or GITHUB_.
func CheckSecretName(name string) error {
	switch {
	case name == "":
		return errors.New("a secret name is required")
	case !secretRule.MatchString(name):
		return fmt.Errorf("%q: secret names may only contain letters, digits and underscores, and may not start with a digit", name)
	case strings.HasPrefix(strings.ToUpper(name), "GITHUB_"):
		return fmt.Errorf("%q: secret names may not start with GITHUB_", name)
	}
	return nil
}

// CheckURL accepts https URLs, and http URLs whose host is loopback
// (127.0.0.0/8, ::1, localhost). Its errors never quote credentials or a
// query string that the URL may carry.
func CheckURL(raw string) error {
	shown := redactURL(raw)
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", shown)
	}
	if u.User != nil {
		return fmt.Errorf("%q: credentials in a URL are not accepted", shown)
	}
	if u.Fragment != "" || u.RawQuery != "" {
		return fmt.Errorf("%q: no query or fragment expected", shown)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%q: http:// is only accepted for loopback hosts; use https://", shown)
	}
	return fmt.Errorf("%q: scheme must be https", shown)
}

var (
	urlUserinfo = regexp.MustCompile(`^([^:/?#]*://)[^/?#]*@`)
	urlQuery    = regexp.MustCompile(`[?#].*$`)
)

// redactURL hides the user info and the query or fragment of a URL, parsed
// or not, so a message can show the rest.
func redactURL(raw string) string {
	s := urlUserinfo.ReplaceAllString(raw, "${1}***@")
	return urlQuery.ReplaceAllString(s, "?***")
}

// IsLoopback reports whether host is localhost or a loopback IP.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ParseTime parses an ISO 8601 / RFC 3339 timestamp (with a zone or Z).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999Z0700", "2006-01-02T15:04Z07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is not an ISO 8601 time such as 2026-01-02T15:04:05Z", s)
}

// ParseDuration parses a positive Go duration such as 20m or 1h30m.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil || d < time.Second || d > 7*24*time.Hour {
		return 0, fmt.Errorf("%q is not a duration between 1s and 168h such as 20m", s)
	}
	return d, nil
}

func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "false", "0", "no", "off":
		return false, nil
	case "true", "1", "yes", "on":
		return true, nil
	}
	return false, fmt.Errorf("%q: want true or false", s)
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == '\n' || r == ' ' || r == '\t' || r == '\r' }) {
		out = append(out, f)
	}
	return out
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}

package bootstrap

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/bootstrap/login"
	"github.com/amplitude/wizard-oauth-refresh/internal/bootstrap/session"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
	"github.com/amplitude/wizard-oauth-refresh/internal/retry"
)

// Default names written besides the action's three secrets.
const (
	DefaultZoneVariable = "WIZARD_ZONE"
	DefaultPATSecret    = "WIZARD_SECRET_REFRESH_PAT"
)

// writeTimeout bounds the writes and the hand-off once the first secret is
// being written: they finish even if the user presses Ctrl-C meanwhile.
const writeTimeout = 3 * time.Minute

// pushConfig is a validated push.
type pushConfig struct {
	login       bool
	zone        string // as given (empty: from the session, or us for a login)
	sessionFile string
	keepLocal   bool

	owner, repo string
	repoSource  string
	environment string

	patStdin   bool
	pat        string
	zoneSecret bool
	yes        bool
	dryRun     bool

	refreshName, accessName, expiresName, idName, patName, zoneVar string

	hydraURL, authURL, tokenURL, clientID string
	loginTimeout                          time.Duration
	noBrowser                             bool
	redirectHost                          string

	gh githubSetup
}

// word is an argument that can be shown: a mistyped subcommand, never a
// token.
var word = regexp.MustCompile(`^[A-Za-z][A-Za-z-]{0,19}$`)

// definePushFlags registers the push flags on fs.
func definePushFlags(fs *flag.FlagSet, p *pushConfig, repo *string) {
	fs.BoolVar(&p.login, "login", false, "")
	fs.StringVar(&p.zone, "zone", "", "")
	fs.StringVar(&p.sessionFile, "session-file", "", "")
	fs.BoolVar(&p.keepLocal, "keep-local-session", false, "")
	fs.StringVar(repo, "repo", "", "")
	fs.StringVar(&p.environment, "environment", "", "")
	fs.BoolVar(&p.patStdin, "pat-stdin", false, "")
	fs.BoolVar(&p.zoneSecret, "zone-secret", false, "")
	fs.BoolVar(&p.yes, "yes", false, "")
	fs.BoolVar(&p.yes, "y", false, "")
	fs.BoolVar(&p.dryRun, "dry-run", false, "")
	fs.StringVar(&p.refreshName, "refresh-token-secret", inputs.DefaultRefreshTokenSecret, "")
	fs.StringVar(&p.accessName, "access-token-secret", inputs.DefaultAccessTokenSecret, "")
	fs.StringVar(&p.expiresName, "expires-at-secret", inputs.DefaultExpiresAtSecret, "")
	fs.StringVar(&p.idName, "id-token-secret", "", "")
	fs.StringVar(&p.patName, "pat-secret", DefaultPATSecret, "")
	fs.StringVar(&p.zoneVar, "zone-variable", DefaultZoneVariable, "")
	fs.StringVar(&p.hydraURL, "hydra-url", "", "")
	fs.StringVar(&p.authURL, "auth-url", "", "")
	fs.StringVar(&p.tokenURL, "token-url", "", "")
	fs.StringVar(&p.clientID, "client-id", "", "")
	fs.DurationVar(&p.loginTimeout, "login-timeout", login.DefaultTimeout, "")
	fs.BoolVar(&p.noBrowser, "no-browser", false, "")
	fs.StringVar(&p.redirectHost, "redirect-host", login.DefaultRedirectHost, "")
}

func (c *cli) parsePush(ctx context.Context, args []string) (*pushConfig, error) {
	fs := newFlagSet("bootstrap")
	p := &pushConfig{}
	var repo string
	definePushFlags(fs, p, &repo)
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return nil, flagError(err)
	}
	if len(pos) > 0 {
		shown := "(not shown)"
		if word.MatchString(pos[0]) {
			shown = strconv.Quote(pos[0])
		}
		return nil, badInput("unexpected argument %s: secrets are never taken as arguments; the only subcommand is restore", shown)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	if p.zone != "" {
		z, err := inputs.LookupZone(p.zone)
		if err != nil {
			return nil, badInput("--zone: %v", err)
		}
		p.zone = z.Name
	}
	if p.login {
		for _, f := range []string{"session-file", "keep-local-session"} {
			if set[f] {
				return nil, badInput("--%s does not apply to --login (a login does not read the session file)", f)
			}
		}
	} else {
		for _, f := range []string{"hydra-url", "auth-url", "token-url", "client-id", "login-timeout", "no-browser", "redirect-host"} {
			if set[f] {
				return nil, badInput("--%s only applies with --login", f)
			}
		}
	}
	for _, u := range []struct{ flag, v string }{{"hydra-url", p.hydraURL}, {"auth-url", p.authURL}, {"token-url", p.tokenURL}} {
		if u.v == "" {
			continue
		}
		if err := inputs.CheckURL(strings.TrimRight(u.v, "/")); err != nil {
			return nil, badInput("--%s: %v", u.flag, err)
		}
	}
	p.hydraURL = strings.TrimRight(p.hydraURL, "/")
	if p.clientID != "" && (len(p.clientID) > 255 || strings.ContainsFunc(p.clientID, func(r rune) bool { return r <= ' ' || r == 0x7f })) {
		return nil, badInput("--client-id: must be at most 255 printable characters without spaces")
	}
	if p.loginTimeout <= 0 || p.loginTimeout > time.Hour {
		return nil, badInput("--login-timeout: %s is not between 1s and 1h", p.loginTimeout)
	}
	if p.redirectHost != "localhost" && p.redirectHost != "127.0.0.1" {
		return nil, badInput("--redirect-host: %q: want localhost or 127.0.0.1", p.redirectHost)
	}
	if p.environment != "" && (len(p.environment) > 255 || strings.ContainsAny(p.environment, "/\\") || strings.ContainsFunc(p.environment, func(r rune) bool { return r < ' ' || r == 0x7f })) {
		return nil, badInput("--environment: %q is not an environment name", p.environment)
	}
	if err := p.checkNames(); err != nil {
		return nil, err
	}

	if p.gh, err = githubFromEnv(c.d.Getenv); err != nil {
		return nil, err
	}
	if err := c.resolveRepo(ctx, p, repo); err != nil {
		return nil, err
	}
	if p.patStdin {
		if c.stdinIsTerminal() {
			fmt.Fprintf(c.out, "Paste the PAT for %s and press Enter (it shows as you type; piping it is better):\n", p.patName)
		}
		line, ok, err := c.readLine(ctx)
		switch {
		case ctx.Err() != nil:
			return nil, &Error{Code: CodeInternal, What: "interrupted: nothing was written", Err: ctx.Err()}
		case err != nil:
			return nil, badInput("--pat-stdin: cannot read standard input: %v", err)
		case !ok:
			return nil, badInput("--pat-stdin: standard input is empty (pipe the PAT in: printf '%%s\\n' \"$PAT\" | bootstrap --pat-stdin ...)")
		}
		p.pat = strings.TrimSpace(line)
		if err := checkSecretValue(p.pat); err != nil {
			return nil, badInput("--pat-stdin: the PAT on standard input %v", err)
		}
		c.red.add(p.pat)
	}
	if p.gh.token == "" {
		if p.pat == "" {
			return nil, errNoGitHubToken()
		}
		c.printf("GH_TOKEN and GITHUB_TOKEN are not set: using the PAT from standard input for GitHub.\n")
		p.gh.token = p.pat
	}
	c.red.add(p.gh.token)
	return p, nil
}

// checkNames validates and upper-cases every name; secret names must be
// distinct.
func (p *pushConfig) checkNames() error {
	names := []struct {
		flag string
		v    *string
	}{
		{"refresh-token-secret", &p.refreshName},
		{"access-token-secret", &p.accessName},
		{"expires-at-secret", &p.expiresName},
		{"id-token-secret", &p.idName},
		{"pat-secret", &p.patName},
		{"zone-variable", &p.zoneVar},
	}
	for _, n := range names {
		if *n.v == "" && n.flag == "id-token-secret" {
			continue
		}
		if err := inputs.CheckSecretName(*n.v); err != nil {
			return badInput("--%s: %v", n.flag, err)
		}
		*n.v = strings.ToUpper(*n.v)
	}
	seen := map[string]string{}
	for _, n := range p.secretFlags() {
		if other, dup := seen[n[1]]; dup {
			return badInput("--%s: %s is also the name of --%s", n[0], n[1], other)
		}
		seen[n[1]] = n[0]
	}
	return nil
}

// secretFlags are the secrets written, as (flag, name), refresh token first.
func (p *pushConfig) secretFlags() [][2]string {
	out := [][2]string{{"refresh-token-secret", p.refreshName}, {"access-token-secret", p.accessName}, {"expires-at-secret", p.expiresName}}
	if p.idName != "" {
		out = append(out, [2]string{"id-token-secret", p.idName})
	}
	if p.zoneSecret {
		out = append(out, [2]string{"zone-variable", p.zoneVar})
	}
	if p.patStdin {
		out = append(out, [2]string{"pat-secret", p.patName})
	}
	return out
}

// resolveRepo takes --repo, else the origin remote, else DefaultRepo.
func (c *cli) resolveRepo(ctx context.Context, p *pushConfig, flagRepo string) error {
	repo, source := strings.TrimSpace(flagRepo), "--repo"
	if repo == "" {
		source = "default"
		repo = DefaultRepo
		out, err := c.d.Git(ctx, "remote", "get-url", "origin")
		if err == nil {
			if r, ok := parseRemote(string(out), githubHosts(p.gh.apiURL)); ok {
				repo, source = r, "the origin remote"
			} else {
				source = "default: the origin remote is not a GitHub repository"
			}
		}
	}
	owner, name, err := inputs.SplitRepo(repo)
	if err != nil {
		return badInput("--repo: %v", err)
	}
	p.owner, p.repo, p.repoSource = owner, name, source
	return nil
}

// pushSource is where the tokens come from.
type pushSource struct {
	zone  inputs.Zone
	entry *session.Entry // session push
	path  string         // the session file read
	paths session.Paths  // the wizard's default files (for the mirror)
	// login endpoints
	authURL, tokenURL, clientID string
}

func (c *cli) push(ctx context.Context, args []string) error {
	p, err := c.parsePush(ctx, args)
	if err != nil {
		return err
	}
	src, err := c.source(p)
	if err != nil {
		return err
	}
	target := ghsecrets.Target{Owner: p.owner, Repo: p.repo, Environment: p.environment}
	gh, err := c.client(p.gh, p.gh.token)
	if err != nil {
		return err
	}

	// Preflight: nothing is written, no browser opens and the session file
	// is not touched unless the token can manage the target's secrets.
	pre, err := c.preflight(ctx, p, gh, target)
	if err != nil {
		return err
	}
	c.showPlan(p, src, target, pre)
	if p.dryRun {
		what := "nothing was written"
		if p.login {
			what += ", no login was made"
		} else {
			what += ", the session file was not changed"
		}
		c.printf("\nDry run: inputs, session and GitHub access are fine; %s.\n", what)
		return nil
	}
	if !p.yes {
		if err := c.confirm(ctx, fmt.Sprintf("Write these to %s?", target)); err != nil {
			return err
		}
	}

	var tok *oauth.Token
	if p.login {
		if tok, err = c.login(ctx, p, src); err != nil {
			return err
		}
	}
	values, expiresAt, err := c.values(p, src, tok)
	if err != nil {
		return err
	}

	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
	defer cancel()
	return c.write(wctx, p, src, gh, target, pre, values, expiresAt)
}

// source loads the session (a push from the session file) or works out the
// login endpoints.
func (c *cli) source(p *pushConfig) (*pushSource, error) {
	src := &pushSource{}
	if p.login {
		zone := p.zone
		if zone == "" {
			zone = "us"
		}
		src.zone, _ = inputs.LookupZone(zone)
		base := src.zone.Host
		if p.hydraURL != "" {
			base = p.hydraURL
		}
		src.authURL, src.tokenURL = base+"/oauth2/auth", base+"/oauth2/token"
		if p.authURL != "" {
			src.authURL = p.authURL
		}
		if p.tokenURL != "" {
			src.tokenURL = p.tokenURL
		}
		src.clientID = src.zone.ClientID
		if p.clientID != "" {
			src.clientID = p.clientID
		}
		return src, nil
	}

	paths, err := session.Locate(c.d.Getenv)
	if err != nil && p.sessionFile == "" {
		return nil, sessionError(&session.Error{Kind: session.KindNoFile, Msg: err.Error()})
	}
	src.paths = paths
	if p.sessionFile != "" {
		src.path = p.sessionFile
	} else {
		var legacy bool
		if src.path, legacy, err = session.Find(paths); err != nil {
			return nil, sessionError(err)
		}
		if legacy {
			c.printf("No %s: reading the legacy %s.\n", paths.Canonical, src.path)
		}
	}
	f, err := session.Load(src.path)
	if err != nil {
		return nil, sessionError(err)
	}
	entry, err := f.Select(p.zone, c.d.Now())
	if err != nil {
		return nil, sessionError(err)
	}
	c.red.add(entry.AccessToken, entry.RefreshToken, entry.IDToken)
	zone, err := inputs.LookupZone(entry.Zone)
	if err != nil {
		return nil, &Error{Code: CodeNoSession, What: fmt.Sprintf("the session of %s is for an unknown zone", entry.Describe()), Err: err, Action: "sign in to zone us or eu, or use --login --zone"}
	}
	src.zone, src.entry = zone, entry
	return src, nil
}

// preflightResult is what GitHub told before anything was written.
type preflightResult struct {
	key         ghsecrets.PublicKey
	zoneVar     *ghsecrets.Variable // nil: does not exist
	patExists   bool                // the PAT secret exists (when not writing it)
	patChecked  bool
	patVerified bool
}

func (c *cli) preflight(ctx context.Context, p *pushConfig, gh *ghsecrets.Client, t ghsecrets.Target) (*preflightResult, error) {
	r := &preflightResult{}
	var err error
	if r.key, err = gh.PublicKey(ctx, t); err != nil {
		return nil, githubError(err, t, "the GitHub token cannot manage the Actions secrets of "+t.String())
	}
	if r.zoneVar, err = gh.Variable(ctx, t, p.zoneVar); err != nil {
		return nil, githubError(err, t, "the GitHub token cannot read the Actions variables of "+t.String())
	}
	if p.pat != "" && p.pat != p.gh.token {
		patClient, err := c.client(p.gh, p.pat)
		if err != nil {
			return nil, err
		}
		if _, err := patClient.PublicKey(ctx, t); err != nil {
			e := githubError(err, t, "the PAT from standard input cannot manage the Actions secrets of "+t.String()+" (the action would fail with it)")
			e.Action = "give the PAT Secrets: read and write on " + t.String() + " (and check it is not expired), then run again"
			return nil, e
		}
		r.patVerified = true
	}
	if !p.patStdin {
		// Best effort: only for the reminder at the end. A repository
		// secret also serves an environment's jobs.
		scopes := []ghsecrets.Target{t}
		if t.Environment != "" {
			scopes = append(scopes, ghsecrets.Target{Owner: t.Owner, Repo: t.Repo})
		}
		for _, s := range scopes {
			m, err := gh.Secret(ctx, s, p.patName)
			if err != nil {
				r.patChecked = false
				break
			}
			r.patChecked = true
			if m != nil {
				r.patExists = true
				break
			}
		}
	}
	return r, nil
}

func (c *cli) showPlan(p *pushConfig, src *pushSource, t ghsecrets.Target, pre *preflightResult) {
	c.printf("Target:  %s (%s)\n", t, p.repoSource)
	api := p.gh.apiURL
	if api == "" {
		api = ghsecrets.DefaultAPIURL
	}
	c.printf("GitHub:  %s, token checked (public key %s)\n", api, pre.key.ID)
	if p.login {
		c.printf("Source:  a new login at %s (zone %s, client %s)\n", src.authURL, src.zone.Name, src.clientID)
	} else {
		e := src.entry
		c.printf("Source:  the wizard session of %s\n", e.Describe())
		c.printf("         in %s; access token expires %s\n", src.path, e.ExpiresAt.UTC().Format(time.RFC3339))
	}
	c.printf("Writes:\n")
	for i, n := range p.secretFlags() {
		note := ""
		if i == 0 {
			note = "  (first)"
		}
		c.printf("  secret    %s%s\n", n[1], note)
	}
	action := "create"
	if pre.zoneVar != nil {
		action = "update"
	}
	c.printf("  variable  %s  (%s)\n", p.zoneVar, action)
	switch {
	case p.login:
		c.printf("Then:    nothing is stored on this machine.\n")
	case p.keepLocal:
		c.printf("Then:    the session file is left as it is (--keep-local-session).\n")
		c.warnf("%s", keepLocalWarning(src.path))
	default:
		c.printf("Then:    the refresh token is removed from %s: this machine must sign in to the wizard again.\n", src.path)
	}
}

// login runs the browser flow.
func (c *cli) login(ctx context.Context, p *pushConfig, src *pushSource) (*oauth.Token, error) {
	exchange := &oauth.Client{TokenURL: src.tokenURL, ClientID: src.clientID, HTTPClient: c.d.HTTPClient, Now: c.d.Now,
		OnRetry: func(attempt, status int, err error, wait time.Duration) {
			c.warnf("token endpoint attempt %d failed (%s); retrying in %s", attempt, retry.Describe(status, err), wait.Round(time.Millisecond))
		}}
	if c.d.RetryWait > 0 {
		exchange.WaitMin, exchange.WaitMax, exchange.MaxRetryAfter = c.d.RetryWait/4, c.d.RetryWait, c.d.RetryWait
	}
	res, err := login.Run(ctx, login.Config{
		AuthURL:      src.authURL,
		Exchange:     exchange,
		ClientID:     src.clientID,
		Ports:        c.d.CallbackPorts,
		RedirectHost: p.redirectHost,
		Timeout:      p.loginTimeout,
		Rand:         c.d.Rand,
		Ready: func(u string) {
			c.printf("\nSign in to Amplitude (zone %s) in your browser. If it does not open, open this URL on this machine:\n\n  %s\n\nWaiting up to %s for the browser to come back...\n", src.zone.Name, u, p.loginTimeout)
			if p.noBrowser {
				return
			}
			if err := c.d.OpenBrowser(ctx, u); err != nil {
				c.warnf("could not open a browser (%v): open the URL above yourself", err)
			}
		},
		Notice: func(msg string) { c.warnf("%s", msg) },
	})
	if err != nil {
		return nil, loginError(err)
	}
	tok := res.Token
	c.red.add(tok.AccessToken, tok.RefreshToken, tok.IDToken)
	if tok.RefreshToken == "" {
		return nil, &Error{Code: CodeTokenExchange, What: "the token endpoint issued no refresh token (the offline scope was not granted)", Action: "check --client-id: the client must be allowed the offline scope"}
	}
	for _, v := range []struct{ what, v string }{{"access token", tok.AccessToken}, {"refresh token", tok.RefreshToken}} {
		if err := checkSecretValue(v.v); err != nil {
			return nil, &Error{Code: CodeTokenExchange, What: fmt.Sprintf("the issued %s %v", v.what, err), Action: "check --token-url"}
		}
	}
	c.printf("Signed in: received a new token chain (callback %s).\n", res.RedirectURI)
	return tok, nil
}

// values are the secrets to write, refresh token first.
func (c *cli) values(p *pushConfig, src *pushSource, tok *oauth.Token) ([]ghsecrets.Value, time.Time, error) {
	var access, refresh, id string
	var expiresAt time.Time
	if tok != nil {
		access, refresh, id = tok.AccessToken, tok.RefreshToken, tok.IDToken
		expiresAt = tok.Expiry
		if expiresAt.IsZero() {
			// Unknown lifetime: the action's first run refreshes.
			c.warnf("the token endpoint gave no expires_in: storing the current time as the expiry")
			expiresAt = c.d.Now()
		}
	} else {
		e := src.entry
		access, refresh, id, expiresAt = e.AccessToken, e.RefreshToken, e.IDToken, e.ExpiresAt
	}
	expiresAt = expiresAt.UTC().Truncate(time.Second)
	values := []ghsecrets.Value{
		{Name: p.refreshName, Value: refresh},
		{Name: p.accessName, Value: access},
		{Name: p.expiresName, Value: expiresAt.Format(time.RFC3339)},
	}
	if p.idName != "" {
		if id == "" {
			c.warnf("no id token to store in %s: skipped", p.idName)
		} else if err := checkSecretValue(id); err != nil {
			c.warnf("the id token %v: %s skipped", err, p.idName)
		} else {
			values = append(values, ghsecrets.Value{Name: p.idName, Value: id})
		}
	}
	if p.zoneSecret {
		values = append(values, ghsecrets.Value{Name: p.zoneVar, Value: src.zone.Name})
	}
	if p.patStdin {
		values = append(values, ghsecrets.Value{Name: p.patName, Value: p.pat})
	}
	return values, expiresAt, nil
}

// write stores the refresh token alone, hands the session off, then writes
// the rest and the zone variable.
func (c *cli) write(ctx context.Context, p *pushConfig, src *pushSource, gh *ghsecrets.Client, t ghsecrets.Target, pre *preflightResult, values []ghsecrets.Value, expiresAt time.Time) error {
	first := gh.WriteAll(ctx, t, pre.key, values[:1])[0]
	if first.Err != nil {
		e := githubError(first.Err, t, "writing "+first.Name+" failed")
		e.Code = CodeNotStored
		if p.login {
			rec := ghsecrets.NewRecord(t, first.KeyID, c.d.Now(), []ghsecrets.Sealed{first.Sealed}).Encode()
			c.printf("\nThe new refresh token exists only in this process. Here it is sealed for %s's key %s (only GitHub can open it):\n\n  %s\n\n", t, first.KeyID, rec)
			e.Action = "restore it with `" + Command + " restore '" + rec + "'` once GitHub works again, or simply run the bootstrap with --login again; nothing else was written"
		} else {
			e.Action = "nothing else was written and the session file was not changed: fix the cause above and run again"
		}
		return e
	}
	c.printf("Wrote secret %s%s.\n", first.Name, refetchNote(first))

	var failures []*Error
	if !p.login {
		if err := c.handOff(p, src); err != nil {
			failures = append(failures, err)
		}
	}

	var failed []string
	for _, r := range gh.WriteAll(ctx, t, pre.key, values[1:]) {
		if r.Err != nil {
			failed = append(failed, r.Name)
			c.warnf("%v", r.Err)
			continue
		}
		c.printf("Wrote secret %s%s.\n", r.Name, refetchNote(r))
	}
	created, err := gh.SetVariable(ctx, t, p.zoneVar, src.zone.Name, pre.zoneVar != nil)
	if err != nil {
		failed = append(failed, "variable "+p.zoneVar)
		c.warnf("%v", err)
	} else if created {
		c.printf("Created variable %s.\n", p.zoneVar)
	} else {
		c.printf("Updated variable %s.\n", p.zoneVar)
	}
	if len(failed) > 0 {
		failures = append(failures, &Error{Code: CodePartial,
			What:   fmt.Sprintf("the refresh token is stored, but %s could not be written", strings.Join(failed, ", ")),
			Action: partialAction(p, t, src.zone.Name, failed)})
	}

	if len(failures) > 0 {
		// The most severe first.
		worst := failures[0]
		for _, f := range failures[1:] {
			if f.Code > worst.Code {
				worst = f
			}
		}
		for _, f := range failures {
			if f != worst {
				c.warnf("%s (%s)", f.Error(), f.Action)
			}
		}
		return worst
	}

	c.printf("\nDone: %s holds the session (access token expires %s); the action keeps it fresh from its next run.\n", t, expiresAt.Format(time.RFC3339))
	if !p.patStdin && pre.patChecked && !pre.patExists {
		c.printf("Next:  store the token the action writes secrets with as %s (a fine-grained PAT with Secrets: read and write on %s/%s), e.g. gh secret set %s --repo %s/%s; the workflow's GITHUB_TOKEN cannot write secrets.\n", p.patName, p.owner, p.repo, p.patName, p.owner, p.repo)
	}
	return nil
}

func partialAction(p *pushConfig, t ghsecrets.Target, zone string, failed []string) string {
	env := ""
	if t.Environment != "" {
		env = " --env " + t.Environment
	}
	a := "nothing urgent for the access token and expiry: the action writes them on its next run"
	for _, f := range failed {
		switch f {
		case "variable " + p.zoneVar:
			a += fmt.Sprintf("; but set the variable, or the action falls back to zone us: gh variable set %s --body %s --repo %s/%s%s", p.zoneVar, zone, p.owner, p.repo, env)
		case p.patName:
			a += fmt.Sprintf("; store the PAT: gh secret set %s --repo %s/%s%s", p.patName, p.owner, p.repo, env)
		case p.zoneVar:
			a += fmt.Sprintf("; store the zone secret: gh secret set %s --body %s --repo %s/%s%s", p.zoneVar, zone, p.owner, p.repo, env)
		}
	}
	return a
}

func refetchNote(r ghsecrets.Result) string {
	if r.Refetched {
		return " (after fetching the rotated public key again)"
	}
	return ""
}

// handOff removes the pushed refresh token from the session file (and from
// the wizard's mirror copy), or explains the risk of keeping it.
func (c *cli) handOff(p *pushConfig, src *pushSource) *Error {
	e := src.entry
	if p.keepLocal {
		c.warnf("the refresh token stays in %s (--keep-local-session): sign in to the wizard again on this machine before it refreshes", src.path)
		return nil
	}
	removed, err := session.HandOff(src.path, e.Key, e.RefreshToken)
	switch {
	case session.KindOf(err) == session.KindChanged:
		return &Error{Code: CodeSessionChanged, Err: err,
			What:   "the wizard refreshed its session while the bootstrap ran: the refresh token now in CI was already used, and the action's first run will be refused (and revoke this machine's session too)",
			Action: "run the bootstrap again, preferably with --login (a chain of CI's own)"}
	case session.KindOf(err) == session.KindNoFile:
		c.printf("The session file is gone: nothing to hand off.\n")
	case err != nil:
		return &Error{Code: CodeHandOffFailed, Err: err,
			What:   "the secrets are in CI, but the refresh token could not be removed from " + src.path,
			Action: fmt.Sprintf("delete the OAuthRefreshToken member of entry %s in %s by hand before the wizard refreshes on this machine; a token kept in two places gets the whole chain revoked", e.Key, src.path)}
	case removed:
		c.printf("Handed off: removed the refresh token of entry %s from %s. Sign in to the wizard again on this machine: npx @amplitude/wizard login\n", e.Key, src.path)
	default:
		c.printf("Entry %s of %s holds no refresh token any more: nothing to hand off.\n", e.Key, src.path)
	}
	// The wizard mirrors its session into the other file.
	for _, mirror := range []string{src.paths.Canonical, src.paths.Legacy} {
		if mirror == "" || sameFile(mirror, src.path) {
			continue
		}
		keys, err := session.Forget(mirror, e.RefreshToken)
		if err != nil {
			return &Error{Code: CodeHandOffFailed, Err: err,
				What:   "the secrets are in CI, but the wizard's copy in " + mirror + " still holds the refresh token",
				Action: "delete the OAuthRefreshToken member that holds it in " + mirror + " by hand before the wizard or the ampli CLI refreshes on this machine"}
		}
		if len(keys) > 0 {
			c.printf("Also removed it from the copy in %s (entry %s).\n", mirror, strings.Join(keys, ", "))
		}
	}
	return nil
}

// keepLocalWarning explains the reuse trap of --keep-local-session.
func keepLocalWarning(path string) string {
	return "--keep-local-session: " + path + " will still hold the refresh token CI uses. Whichever side refreshes first rotates it; when the other then presents the old token, Hydra sees reuse and revokes the whole chain, signing out both CI and this machine. Sign in to the wizard again on this machine (npx @amplitude/wizard login) before it refreshes, or use --login instead."
}

func sameFile(a, b string) bool {
	if a == b {
		return true
	}
	sa, errA := os.Stat(a)
	sb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(sa, sb)
}

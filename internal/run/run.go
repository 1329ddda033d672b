// Package run orchestrates one run of the action. The order is what keeps
// the refresh-token chain alive:
//
//  1. validate every input (no network);
//  2. preflight GitHub: the target's public key, with the refresh-token
//     secret's metadata and the workflow run's start in the same round trip;
//     a 401/403/404 stops the run before Hydra is called;
//  3. skip when the stored token is still fresh (expires-at + min-ttl);
//  4. skip when the refresh-token secret changed after this run started
//     (another run rotated it: presenting ours would be reuse);
//  5. one refresh at Hydra (retried only on transient failures);
//  6. mask every new value before anything else is printed;
//  7. seal with the one fetched key and write every secret concurrently;
//  8. if the new refresh token could not be written, print it sealed as a
//     recovery record;
//  9. outputs and the step summary.
package run

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/actions"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/inputs"
	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
	"github.com/amplitude/wizard-oauth-refresh/internal/retry"
)

// Deps are what a run needs from outside.
type Deps struct {
	RT *actions.Runtime
	// HTTPClient is the base client of both sides (nil: default).
	HTTPClient *http.Client
	// Now is the clock (nil: time.Now).
	Now func() time.Time
	// Rand is the sealing randomness (nil: crypto/rand).
	Rand io.Reader
	// Stdin feeds --*-file -.
	Stdin io.Reader
	// Version is reported in the User-Agent.
	Version string
}

// Result is what a successful (or skipped) run did.
type Result struct {
	Refreshed bool
	Rotated   bool
	ExpiresAt time.Time
	Skipped   string // why the refresh was skipped, if it was
	Written   []string
}

// Main parses the inputs, runs, and reports the outcome (annotations,
// outputs, summary). It returns nil, a *Failure, or inputs.ErrHelp.
func Main(ctx context.Context, args []string, d Deps) error {
	rt := d.RT
	cfg, err := inputs.Parse(args, &inputs.Source{Input: rt.Input, Getenv: rt.Getenv, Stdin: d.Stdin}, usageWriter{rt})
	if errors.Is(err, inputs.ErrHelp) {
		return err
	}
	if err != nil {
		f := &Failure{Class: ClassBadInput, What: "invalid input, nothing was sent anywhere", Chain: ChainUntouched, Action: "fix the input named above in the workflow's with: block", Err: err}
		report(rt, f)
		return f
	}
	// The runner masks secrets it passes, but not outside Actions, and not
	// a value's encoded forms.
	rt.Mask(cfg.RefreshToken, cfg.GitHubToken)
	_, err = Run(ctx, cfg, d)
	if err != nil {
		var f *Failure
		if !errors.As(err, &f) {
			f = &Failure{Class: ClassInternal, What: "unexpected error", Chain: ChainUnknown, Action: "open an issue with this log", Err: err}
		}
		report(rt, f)
		return f
	}
	return nil
}

// usageWriter sends --help text to the log.
type usageWriter struct{ rt *actions.Runtime }

func (u usageWriter) Write(p []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		u.rt.Infof("%s", line)
	}
	return len(p), nil
}

// report prints a failure as one ::error:: annotation plus detail lines, and
// adds it to the step summary.
func report(rt *actions.Runtime, f *Failure) {
	rt.Errorf(f.Class.String(), "%s. Chain %s. What to do: %s. (exit %d)", f.Error(), f.Chain, f.Action, f.Class.ExitCode())
	_ = rt.AddSummary(fmt.Sprintf("\n### ❌ %s (exit %d)\n\n%s\n\n- **Token chain:** %s\n- **What to do:** %s\n", f.Class, f.Class.ExitCode(), mdEscape(f.Error()), f.Chain, f.Action))
}

type runner struct {
	cfg    *inputs.Config
	d      Deps
	rt     *actions.Runtime
	now    func() time.Time
	gh     *ghsecrets.Client
	target ghsecrets.Target
	timing map[string]time.Duration
	start  time.Time
}

// Run executes one run with a validated config.
func Run(ctx context.Context, cfg *inputs.Config, d Deps) (*Result, error) {
	now := d.Now
	if now == nil {
		now = time.Now
	}
	r := &runner{cfg: cfg, d: d, rt: d.RT, now: now, timing: map[string]time.Duration{}, start: now()}
	gh, err := ghsecrets.New(ghsecrets.Options{
		APIURL:     cfg.APIURL,
		Token:      cfg.GitHubToken,
		HTTPClient: d.HTTPClient,
		Timeout:    cfg.GitHubTimeout,
		Rand:       d.Rand,
		Now:        now,
		UserAgent:  "wizard-oauth-refresh/" + d.Version,
		OnRetry: func(attempt, status int, err error, wait time.Duration) {
			d.RT.Warningf("GitHub retry", "GitHub attempt %d failed (%s); retrying in %s", attempt, retry.Describe(status, err), wait.Round(time.Millisecond))
		},
	})
	if err != nil {
		return nil, &Failure{Class: ClassBadInput, What: "invalid GitHub API URL", Chain: ChainUntouched, Action: "check GITHUB_API_URL", Err: err}
	}
	r.gh = gh
	r.target = ghsecrets.Target{Owner: cfg.Owner, Repo: cfg.Repo, Environment: cfg.Environment, Org: cfg.Organization, Visibility: cfg.Visibility}
	if cfg.Organization != "" {
		r.target.Owner, r.target.Repo = "", ""
	}
	return r.run(ctx)
}

func (r *runner) run(ctx context.Context) (*Result, error) {
	cfg := r.cfg
	r.rt.Infof("Target: %s; token endpoint: %s (zone %s, client %s)", r.target, cfg.TokenURL, cfg.Zone.Name, cfg.ClientID)

	pre, err := r.preflight(ctx)
	if err != nil {
		return nil, err
	}

	res := &Result{}
	if reason, skip := r.fresh(); skip {
		res.Skipped = reason
		res.ExpiresAt = cfg.ExpiresAt
	} else if reason, skip := r.stale(pre); skip {
		res.Skipped = reason
	}
	if cfg.DryRun {
		plan := "would refresh the token at " + cfg.TokenURL
		if res.Skipped != "" {
			plan = "would skip the refresh: " + res.Skipped
		}
		r.rt.Noticef("Dry run", "Dry run: inputs valid and GitHub access to %s confirmed (key %s); %s, then write %s. Nothing was sent to Hydra and nothing was written.", r.target, pre.key.ID, plan, strings.Join(r.secretNames(), ", "))
		r.outputs("", res)
		r.summary(res, nil, "dry run: nothing refreshed or written")
		return res, nil
	}
	if res.Skipped != "" {
		r.rt.Noticef("Refresh skipped", "Refresh skipped: %s. Hydra was not called; nothing was written.", res.Skipped)
		r.outputs("", res)
		r.summary(res, nil, "skipped: "+res.Skipped)
		return res, nil
	}

	tok, err := r.refresh(ctx, pre)
	if err != nil {
		return nil, err
	}
	// Mask before anything else is printed.
	r.rt.Mask(tok.AccessToken, tok.RefreshToken, tok.IDToken)
	res.Refreshed = true
	res.Rotated = tok.Rotated()
	res.ExpiresAt = r.expiry(tok)

	// The chain is spent once Hydra has answered: the writes must happen
	// even if the job is being cancelled, within their own deadline.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*cfg.GitHubTimeout)
	defer cancel()
	results, err := r.write(wctx, pre, tok, res)
	r.outputs(tok.AccessToken, res)
	r.summary(res, results, "")
	return res, err
}

// preflight is one round trip: the public key (which must succeed), and
// the metadata the guards need (best effort).
type preflight struct {
	key       ghsecrets.PublicKey
	rtMeta    *ghsecrets.SecretMeta // the refresh-token secret (nil: not found or unknown)
	metaErr   error
	runStart  time.Time
	runErr    error
	orgMeta   map[string]*ghsecrets.SecretMeta
	orgErr    error // organization secrets must be read: their access is kept
	orgMetaMu sync.Mutex
}

func (r *runner) preflight(ctx context.Context) (*preflight, error) {
	start := r.now()
	defer func() { r.timing["preflight"] = r.now().Sub(start) }()
	p := &preflight{orgMeta: map[string]*ghsecrets.SecretMeta{}}
	var keyErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		p.key, keyErr = r.gh.PublicKey(ctx, r.target)
	}()
	if r.cfg.Organization == "" {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.rtMeta, p.metaErr = r.gh.Secret(ctx, r.target, r.cfg.RefreshTokenSecret)
		}()
	} else {
		// Organization secrets: read each one's visibility, so a rotation
		// keeps it (never widens or resets who can read the secret).
		for _, name := range r.secretNames() {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := r.gh.Secret(ctx, r.target, name)
				if err == nil && m != nil && m.Visibility == "selected" {
					m.SelectedRepositoryIDs, err = r.gh.SelectedRepositoryIDs(ctx, r.cfg.Organization, name)
				}
				p.orgMetaMu.Lock()
				defer p.orgMetaMu.Unlock()
				p.orgMeta[name] = m
				if err != nil {
					p.orgErr = errors.Join(p.orgErr, err)
				}
				if name == r.cfg.RefreshTokenSecret {
					p.rtMeta, p.metaErr = m, err
				}
			}()
		}
	}
	if r.cfg.RunID > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.runStart, p.runErr = r.gh.RunStartedAt(ctx, r.cfg.Owner, r.cfg.Repo, r.cfg.RunID)
		}()
	}
	wg.Wait()
	if keyErr != nil {
		return nil, githubFailure(keyErr, r.target, true)
	}
	r.rt.Infof("GitHub preflight: %s is writable with this token (key %s) in %s", r.target, p.key.ID, r.now().Sub(start).Round(time.Millisecond))
	if r.cfg.Organization != "" {
		if p.orgErr != nil {
			return nil, githubFailure(p.orgErr, r.target, true)
		}
		if err := r.resolveSelected(ctx, p); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// resolveSelected turns selected-repositories into ids, only when an
// organization secret with visibility selected is about to be created.
func (r *runner) resolveSelected(ctx context.Context, p *preflight) error {
	creating := false
	for _, m := range p.orgMeta {
		if m == nil {
			creating = true
		}
	}
	if !creating || r.cfg.Visibility != "selected" {
		return nil
	}
	ids := make([]int64, len(r.cfg.SelectedRepositories))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, name := range r.cfg.SelectedRepositories {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i], errs[i] = r.gh.RepoID(ctx, r.cfg.Organization, name)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return githubFailure(err, r.target, true)
	}
	r.target.SelectedRepositoryIDs = ids
	return nil
}

// fresh reports whether skip-if-fresh applies.
func (r *runner) fresh() (string, bool) {
	cfg := r.cfg
	if cfg.MinTTL == 0 {
		return "", false
	}
	if cfg.ExpiresAt.IsZero() {
		r.rt.Infof("min-ttl is set but expires-at is empty: refreshing")
		return "", false
	}
	left := cfg.ExpiresAt.Sub(r.now())
	if left > cfg.MinTTL {
		return fmt.Sprintf("the stored access token is valid until %s (%s left, more than min-ttl %s)", cfg.ExpiresAt.Format(time.RFC3339), left.Round(time.Second), cfg.MinTTL), true
	}
	r.rt.Infof("Stored access token has %s left (min-ttl %s): refreshing", left.Round(time.Second), cfg.MinTTL)
	return "", false
}

// stale reports whether the refresh-token secret changed after this run
// started: the value this run holds may already have been used.
func (r *runner) stale(p *preflight) (string, bool) {
	if r.cfg.RunID == 0 {
		return "", false
	}
	switch {
	case p.runErr != nil:
		r.rt.Noticef("Stale-secret guard off", "Stale-secret guard off: this token cannot read workflow run %d (%v); give it Actions: read to turn the guard on.", r.cfg.RunID, p.runErr)
		return "", false
	case p.metaErr != nil:
		r.rt.Noticef("Stale-secret guard off", "Stale-secret guard off: cannot read secret %s's metadata (%v).", r.cfg.RefreshTokenSecret, p.metaErr)
		return "", false
	case p.rtMeta == nil || p.runStart.IsZero():
		return "", false
	}
	// GitHub's timestamps have whole seconds: a secret written in the
	// second the run started may have been written after it, so "not
	// before" counts as stale (a needless skip costs one hour; reuse costs
	// the chain).
	if !p.rtMeta.UpdatedAt.Before(p.runStart) {
		return fmt.Sprintf("secret %s was updated at %s, not before this run started at %s: another run has rotated the refresh token this run holds, and presenting it again would be reuse, which revokes the whole chain", r.cfg.RefreshTokenSecret, p.rtMeta.UpdatedAt.UTC().Format(time.RFC3339), p.runStart.UTC().Format(time.RFC3339)), true
	}
	return "", false
}

func (r *runner) refresh(ctx context.Context, p *preflight) (*oauth.Token, error) {
	start := r.now()
	defer func() { r.timing["refresh"] = r.now().Sub(start) }()
	c := &oauth.Client{
		TokenURL:   r.cfg.TokenURL,
		ClientID:   r.cfg.ClientID,
		HTTPClient: r.d.HTTPClient,
		Timeout:    r.cfg.HydraTimeout,
		Now:        r.now,
		OnRetry: func(attempt, status int, err error, wait time.Duration) {
			r.rt.Warningf("Token endpoint retry", "Token endpoint attempt %d failed (%s); retrying in %s", attempt, retry.Describe(status, err), wait.Round(time.Millisecond))
		},
		BeforeRetry: func(ctx context.Context) error { return r.superseded(ctx, p) },
	}
	tok, err := c.Refresh(ctx, r.cfg.RefreshToken)
	if err != nil {
		return nil, hydraFailure(err)
	}
	r.rt.Infof("Token endpoint answered in %s: new access token%s", r.now().Sub(start).Round(time.Millisecond), map[bool]string{true: " and a rotated refresh token", false: "; no new refresh token (the stored one stays valid)"}[tok.Rotated()])
	return tok, nil
}

// expiry is the stored expiry: the access token's, or the id token's when
// it is stored and earlier. Without expires_in it is now, so the next run
// refreshes instead of trusting an unknown lifetime.
func (r *runner) expiry(tok *oauth.Token) time.Time {
	exp := tok.Expiry
	if exp.IsZero() {
		r.rt.Warningf("No expires_in", "The token endpoint gave no usable expires_in; storing the current time as the expiry so the next run refreshes.")
		exp = r.now().UTC().Truncate(time.Second)
	}
	if r.cfg.IDTokenSecret != "" && tok.IDToken != "" && !tok.IDTokenExpiry.IsZero() && tok.IDTokenExpiry.Before(exp) {
		exp = tok.IDTokenExpiry
	}
	return exp
}

func (r *runner) secretNames() []string {
	names := []string{r.cfg.RefreshTokenSecret, r.cfg.AccessTokenSecret, r.cfg.ExpiresAtSecret}
	if r.cfg.IDTokenSecret != "" {
		names = append(names, r.cfg.IDTokenSecret)
	}
	return names
}

// SupersededError means another run stored a new refresh token while this
// run's exchange was failing: presenting the token again could be reuse.
type SupersededError struct {
	Secret      string
	Before, Now time.Time
}

func (e *SupersededError) Error() string {
	return fmt.Sprintf("secret %s was updated at %s (it was %s at the preflight): another run rotated the refresh token meanwhile", e.Secret, e.Now.UTC().Format(time.RFC3339), e.Before.UTC().Format(time.RFC3339))
}

// superseded runs before each retry of the token exchange. A failed first
// attempt can mean that another run holding the same token won a race at
// Hydra (real Hydra v2.3.0 answers the loser 500 when two refreshes
// collide); retrying would then present a used token, which is reuse and
// revokes the chain the other run just stored. So before a retry the
// refresh-token secret is read again: if it changed since the preflight,
// the run stops. If it cannot be read, the retry goes ahead.
func (r *runner) superseded(ctx context.Context, p *preflight) error {
	if p.metaErr != nil {
		return nil
	}
	m, err := r.gh.Secret(ctx, r.target, r.cfg.RefreshTokenSecret)
	if err != nil {
		r.rt.Debugf("Could not re-read secret %s before the retry (%v); retrying anyway", r.cfg.RefreshTokenSecret, err)
		return nil
	}
	if m == nil || (p.rtMeta != nil && !m.UpdatedAt.After(p.rtMeta.UpdatedAt)) {
		return nil
	}
	e := &SupersededError{Secret: r.cfg.RefreshTokenSecret, Now: m.UpdatedAt}
	if p.rtMeta != nil {
		e.Before = p.rtMeta.UpdatedAt
	}
	return e
}

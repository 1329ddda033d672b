package run

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/actions"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
)

// RestoreCommand is how a user restores a recovery record.
const RestoreCommand = "go run github.com/amplitude/wizard-oauth-refresh/cmd/bootstrap@latest restore"

// write seals and writes every value concurrently, then judges the outcome.
func (r *runner) write(ctx context.Context, p *preflight, tok *oauth.Token, res *Result) ([]ghsecrets.Result, error) {
	start := r.now()
	defer func() { r.timing["write"] = r.now().Sub(start) }()

	var values []ghsecrets.Value
	if tok.Rotated() {
		values = append(values, ghsecrets.Value{Name: r.cfg.RefreshTokenSecret, Value: tok.RefreshToken})
	}
	values = append(values,
		ghsecrets.Value{Name: r.cfg.AccessTokenSecret, Value: tok.AccessToken},
		ghsecrets.Value{Name: r.cfg.ExpiresAtSecret, Value: res.ExpiresAt.UTC().Format(time.RFC3339)},
	)
	if r.cfg.IDTokenSecret != "" && tok.IDToken != "" {
		values = append(values, ghsecrets.Value{Name: r.cfg.IDTokenSecret, Value: tok.IDToken})
	}
	for i := range values {
		if m := p.orgMeta[values[i].Name]; m != nil {
			values[i].Visibility, values[i].SelectedRepositoryIDs = m.Visibility, m.SelectedRepositoryIDs
			if r.cfg.Visibility != "" && m.Visibility != r.cfg.Visibility {
				r.rt.Warningf("Visibility kept", "Organization secret %s keeps its visibility %q (input asks %q): a rotation never changes who can read a secret; change it in the organization's settings.", m.Name, m.Visibility, r.cfg.Visibility)
			}
		}
	}

	results := r.gh.WriteAll(ctx, r.target, p.key, values)
	var failed []ghsecrets.Result
	var rtFailed bool
	for _, w := range results {
		if w.Err != nil {
			failed = append(failed, w)
			if w.Name == r.cfg.RefreshTokenSecret {
				rtFailed = true
			}
			continue
		}
		res.Written = append(res.Written, w.Name)
		note := ""
		if w.Refetched {
			note = " (after fetching the rotated public key again)"
		}
		r.rt.Infof("Wrote secret %s%s", w.Name, note)
	}
	if len(failed) == 0 {
		r.rt.Noticef("Token refreshed", "Token refreshed; %s written to %s; expires at %s.", strings.Join(res.Written, ", "), r.target, res.ExpiresAt.Format(time.RFC3339))
		return results, nil
	}

	var errs []string
	for _, w := range failed {
		errs = append(errs, w.Err.Error())
	}
	joined := fmt.Errorf("%s", strings.Join(errs, "; "))
	if rtFailed {
		// Put the refresh token first: it is the one that matters.
		sealed := make([]ghsecrets.Sealed, 0, len(failed))
		keyID := ""
		for _, w := range failed {
			if w.Name == r.cfg.RefreshTokenSecret {
				sealed = append([]ghsecrets.Sealed{w.Sealed}, sealed...)
				keyID = w.KeyID
			}
		}
		for _, w := range failed {
			if w.Name != r.cfg.RefreshTokenSecret && w.KeyID == keyID {
				sealed = append(sealed, w.Sealed)
			}
		}
		rec := ghsecrets.NewRecord(r.target, keyID, r.now(), sealed).Encode()
		r.rt.Errorf("Recovery record", "Hydra rotated the refresh token but GitHub did not store it. The new token is below, sealed for %s's key %s (only GitHub can open it). Restore it before the next scheduled run, from a checkout with a GitHub token that can write secrets (GH_TOKEN):  %s %s", r.target, keyID, RestoreCommand, rec)
		r.rt.Infof("RECOVERY RECORD: %s", rec)
		_ = r.rt.AddSummary(fmt.Sprintf("\n### 🛟 Recovery record\n\nThe rotated refresh token could not be stored. Restore it before the next run (it is sealed for key `%s`; only GitHub can open it):\n\n```sh\n%s '%s'\n```\n", keyID, RestoreCommand, rec))
		return results, &Failure{
			Class:  ClassNotStored,
			What:   "Hydra rotated the refresh token but writing it to GitHub failed",
			Chain:  ChainAtRisk,
			Action: "restore the recovery record with the command printed above before the next scheduled run (the old stored token is now used; presenting it again would revoke the chain); if you cannot, re-bootstrap",
			Err:    joined,
		}
	}
	names := make([]string, len(failed))
	for i, w := range failed {
		names[i] = w.Name
	}
	chainNote := "the new refresh token was stored"
	if !tok.Rotated() {
		chainNote = "Hydra did not rotate the refresh token, so the stored one stays valid"
	}
	return results, &Failure{
		Class:  ClassPartialWrite,
		What:   fmt.Sprintf("%s; but %s could not be written", chainNote, strings.Join(names, ", ")),
		Chain:  ChainAlive,
		Action: "nothing urgent: the next run writes them again; if it keeps failing, check GitHub's status and the token's Secrets: write permission",
		Err:    joined,
	}
}

// outputs writes the step outputs; access-token is masked already.
func (r *runner) outputs(accessToken string, res *Result) {
	exp := ""
	if !res.ExpiresAt.IsZero() {
		exp = res.ExpiresAt.UTC().Format(time.RFC3339)
	}
	for _, o := range [][2]string{
		{"access-token", accessToken},
		{"expires-at", exp},
		{"rotated", fmt.Sprint(res.Rotated)},
		{"refreshed", fmt.Sprint(res.Refreshed)},
	} {
		if err := r.rt.SetOutput(o[0], o[1]); err != nil && !errors.Is(err, actions.ErrNoFile) {
			r.rt.Warningf("Output", "%v", err)
		}
	}
}

// summary appends the run's summary (never a secret value).
func (r *runner) summary(res *Result, results []ghsecrets.Result, status string) {
	var b strings.Builder
	b.WriteString("## Wizard OAuth refresh\n\n| | |\n|---|---|\n")
	row := func(k, v string) { fmt.Fprintf(&b, "| %s | %s |\n", k, mdEscape(v)) }
	row("Zone", r.cfg.Zone.Name)
	row("Target", r.target.String())
	row("Token endpoint", r.cfg.TokenURL)
	if status != "" {
		row("Status", status)
	}
	row("Refreshed", fmt.Sprint(res.Refreshed))
	row("Rotated", fmt.Sprint(res.Rotated))
	if !res.ExpiresAt.IsZero() {
		row("Expires at", res.ExpiresAt.UTC().Format(time.RFC3339))
	}
	for _, k := range []string{"preflight", "refresh", "write"} {
		if d, ok := r.timing[k]; ok {
			row("Time: "+k, d.Round(time.Millisecond).String())
		}
	}
	row("Time: total", r.now().Sub(r.start).Round(time.Millisecond).String())
	if len(results) > 0 {
		b.WriteString("\n| Secret | Result | Attempts |\n|---|---|---|\n")
		for _, w := range results {
			status := "✅ written"
			if w.Err != nil {
				status = "❌ " + w.Err.Error()
			}
			fmt.Fprintf(&b, "| `%s` | %s | %d |\n", w.Name, mdEscape(status), w.Attempts)
		}
	}
	_ = r.rt.AddSummary(b.String())
}

func mdEscape(s string) string {
	return strings.NewReplacer("|", "\\|", "\n", " ", "<", "&lt;", ">", "&gt;").Replace(s)
}

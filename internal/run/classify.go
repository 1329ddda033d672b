package run

import (
	"context"
	"errors"
	"fmt"

	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
)

// rebootstrap is the advice when the chain is dead.
const rebootstrap = "re-bootstrap: run `go run github.com/amplitude/wizard-oauth-refresh/cmd/bootstrap@latest --login` from a checkout of this repository (it mints a new chain that only CI uses), then re-run this workflow"

// githubFailure classifies a GitHub error. beforeHydra is true when it
// happened before the token endpoint was called (the chain is untouched).
func githubFailure(err error, t ghsecrets.Target, beforeHydra bool) *Failure {
	chain := ChainUntouched
	if !beforeHydra {
		chain = ChainUnknown
	}
	f := &Failure{Chain: chain, Err: err}
	switch ghsecrets.KindOf(err) {
	case ghsecrets.KindUnauthorized:
		f.Class = ClassGitHubAuth
		f.What = "GitHub rejected the github-token (401 Bad credentials)"
		f.Action = "mint a new fine-grained PAT (or check the GitHub App installation) with Secrets: read and write on " + t.String() + ", and update the WIZARD_SECRET_REFRESH_PAT secret; the refresh token was not spent"
	case ghsecrets.KindForbidden:
		f.Class = ClassGitHubPermission
		f.What = "the github-token may not manage Actions secrets of " + t.String() + " (403)"
		f.Action = "grant the token Secrets: read and write on this repository (organization secrets need the organization's Secrets permission; the default GITHUB_TOKEN can never write secrets)"
	case ghsecrets.KindMoved:
		f.Class = ClassGitHubNotFound
		f.What = t.String() + " answered with a redirect: the repository was renamed or transferred"
		f.Action = "set the repository input to the repository's new owner/name (redirects are not followed, so the token never goes elsewhere)"
	case ghsecrets.KindNotFound:
		f.Class = ClassGitHubNotFound
		f.What = t.String() + " was not found, or the github-token cannot see it (404)"
		f.Action = "check the repository, environment and organization inputs, and that the fine-grained PAT's repository access includes this repository"
	case ghsecrets.KindRateLimited:
		f.Class = ClassGitHubRateLimited
		f.What = "GitHub's rate limit outlasted the deadline"
		f.Action = "nothing if it happens once: the next scheduled run retries; otherwise use a token that is not shared with other heavy automation"
	case ghsecrets.KindBadKey:
		f.Class = ClassGitHubBadKey
		f.What = "GitHub's public key for " + t.String() + " is unusable"
		f.Action = "check GITHUB_API_URL points at GitHub's REST API (not a proxy), then retry"
	default:
		f.Class = ClassGitHubUnavailable
		f.What = "GitHub could not be reached or kept failing"
		f.Action = "nothing if it happens once: the next scheduled run retries; check https://www.githubstatus.com otherwise"
		if errors.Is(err, context.Canceled) {
			f.Class, f.What, f.Action = ClassInternal, "the run was cancelled", "re-run the workflow"
		}
	}
	return f
}

// hydraFailure classifies a token endpoint error.
func hydraFailure(err error) *Failure {
	attempts := oauth.Attempts(err)
	retried := ""
	if attempts > 1 {
		retried = fmt.Sprintf("this was attempt %d: an earlier attempt may have reached Hydra and consumed the token before its answer was lost", attempts)
	}
	var oe *oauth.Error
	var ue *oauth.UnavailableError
	var re *oauth.ResponseError
	var sup *SupersededError
	switch {
	case errors.As(err, &sup):
		return &Failure{Class: ClassConcurrentRefresh, What: "the token exchange failed and, before retrying, this run found that another run had stored a new refresh token; it stopped instead of presenting the old one again (that would be reuse, which revokes the whole chain)", Chain: ChainAlive, Action: "nothing for this run; keep the workflow's concurrency group so two runs never refresh the same token at once, and do not run a copy of the workflow in forks that share the secret", Err: err}
	case errors.As(err, &ue):
		// Untouched only when no attempt got through (DNS, refused); an
		// answer, a reset or a timeout after sending may have rotated.
		chain, note := ChainUntouched, ""
		if ue.Status != 0 || ue.MaybeSent {
			chain, note = ChainUnknown, retried
		}
		return &Failure{Class: ClassHydraUnavailable, What: "the token endpoint was unavailable (transient)", Note: note, Chain: chain, Action: "nothing if it happens once: the next scheduled run retries with the same stored token; if it fails with invalid_grant afterwards, re-bootstrap", Err: err}
	case errors.As(err, &oe) && oe.Code == "invalid_grant":
		return &Failure{Class: ClassRevoked, What: "Hydra refused the refresh token (invalid_grant): it was revoked, expired or already used, and Hydra revokes the whole chain when a used token is presented again", Note: retried, Chain: ChainDead, Action: rebootstrap, Err: err}
	case errors.As(err, &oe) && (oe.Code == "invalid_client" || oe.Code == "unauthorized_client"):
		return &Failure{Class: ClassInvalidClient, What: "Hydra rejected the OAuth client (" + oe.Code + ")", Chain: ChainUntouched, Action: "check the zone input (us or eu) and any client-id / token-url override: the client must be the one that issued the refresh token", Err: err}
	case errors.As(err, &oe) && oe.Code == "invalid_request":
		return &Failure{Class: ClassConcurrentRefresh, What: "Hydra refused the request (invalid_request); with a valid form this means the same refresh token is being used concurrently", Note: retried, Chain: ChainUnknown, Action: "make sure only one workflow refreshes this chain (keep the workflow's concurrency group, and do not copy the workflow into forks that share the secret); if the next run fails with invalid_grant, re-bootstrap", Err: err}
	case errors.As(err, &oe):
		return &Failure{Class: ClassHydraBadResponse, What: "Hydra answered an unexpected OAuth error (" + oe.Code + ")", Note: retried, Chain: ChainUnknown, Action: "retry once; if it persists, check the token-url and zone, then re-bootstrap", Err: err}
	case errors.As(err, &re):
		chain := ChainUnknown
		if re.Status >= 300 && re.Status < 400 {
			chain = ChainUntouched
		}
		return &Failure{Class: ClassHydraBadResponse, What: "the token endpoint answered something that is not a token", Note: retried, Chain: chain, Action: "check token-url (it must be Hydra's /oauth2/token, not a login page or proxy); if the next run fails with invalid_grant, the answer had consumed the token: re-bootstrap", Err: err}
	case errors.Is(err, context.Canceled):
		return &Failure{Class: ClassInternal, What: "the run was cancelled during the token exchange", Chain: ChainUnknown, Action: "re-run the workflow; if it fails with invalid_grant, re-bootstrap", Err: err}
	}
	return &Failure{Class: ClassInternal, What: "the token exchange failed unexpectedly", Note: retried, Chain: ChainUnknown, Action: "open an issue with this log", Err: err}
}

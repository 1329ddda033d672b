package bootstrap

import (
	"context"
	"errors"
	"fmt"

	"github.com/amplitude/wizard-oauth-refresh/internal/bootstrap/login"
	"github.com/amplitude/wizard-oauth-refresh/internal/bootstrap/session"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
)

// Code is a process exit code. Each failure class has its own (the README
// documents them); the GitHub ones match the action's.
type Code int

// Exit codes.
const (
	CodeOK              Code = 0
	CodeInternal        Code = 1  // unexpected error, or interrupted
	CodeBadInput        Code = 2  // a flag, the repository, a name or the GitHub token is missing or malformed
	CodeNotConfirmed    Code = 3  // the confirmation was declined (or stdin ended): nothing written
	CodeNoSession       Code = 4  // no usable wizard session: missing, unreadable, malformed, no refresh token, refresh window over
	CodeLoginFailed     Code = 5  // --login: the browser side failed (denied, timed out, no free port, bad callback)
	CodeTokenExchange   Code = 6  // --login: the token endpoint refused or failed the code exchange
	CodeGitHubAuth      Code = 20 // 401: the GitHub token is invalid or expired
	CodeGitHubPerm      Code = 21 // 403: the GitHub token lacks a permission
	CodeGitHubNotFound  Code = 22 // 404: repository or environment not found, or not visible to the token
	CodeGitHubRateLimit Code = 23 // rate limited beyond the deadline
	CodeGitHubDown      Code = 24 // GitHub 5xx or unreachable
	CodeGitHubBadKey    Code = 25 // GitHub's public key is unusable
	CodeKeyChanged      Code = 26 // restore: the key changed since the record was sealed; re-bootstrap
	CodeStaleRecord     Code = 27 // restore: the secret was updated after the record was made; refused without --force
	CodeNotStored       Code = 30 // the refresh token was not stored: nothing else written, nothing handed off
	CodePartial         Code = 31 // the refresh token is stored, another secret or the variable is not
	CodeHandOffFailed   Code = 32 // pushed, but the local session file still holds the refresh token
	CodeSessionChanged  Code = 33 // the wizard refreshed the local session meanwhile: the pushed token is already used
)

// Error is a failed bootstrap: what happened and what to do.
type Error struct {
	Code   Code
	What   string
	Action string
	Err    error
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.What
	}
	return e.What + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// ExitCode maps an error to the process exit code.
func ExitCode(err error) int {
	if err == nil || errors.Is(err, ErrHelp) {
		return int(CodeOK)
	}
	var e *Error
	if errors.As(err, &e) {
		return int(e.Code)
	}
	return int(CodeInternal)
}

func badInput(format string, args ...any) *Error {
	return &Error{Code: CodeBadInput, What: fmt.Sprintf(format, args...), Action: "see --help"}
}

// githubError classifies a GitHub failure. what says what was being done.
func githubError(err error, t ghsecrets.Target, what string) *Error {
	e := &Error{Err: err, What: what}
	switch ghsecrets.KindOf(err) {
	case ghsecrets.KindUnauthorized:
		e.Code = CodeGitHubAuth
		e.Action = "GitHub rejected the token (401): set GH_TOKEN to a valid fine-grained PAT (or `export GH_TOKEN=$(gh auth token)`)"
	case ghsecrets.KindForbidden:
		e.Code = CodeGitHubPerm
		e.Action = "the token may not do this on " + t.String() + " (403): give it Secrets and Variables: read and write (Environments: read and write for an environment); the default GITHUB_TOKEN of a workflow cannot write secrets"
	case ghsecrets.KindNotFound:
		e.Code = CodeGitHubNotFound
		e.Action = "check --repo and --environment, and that the token's repository access includes " + t.String() + " (404)"
	case ghsecrets.KindRateLimited:
		e.Code = CodeGitHubRateLimit
		e.Action = "wait for the rate limit to reset, then run again"
	case ghsecrets.KindBadKey:
		e.Code = CodeGitHubBadKey
		e.Action = "check GITHUB_API_URL points at GitHub's REST API (https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server)"
	default:
		e.Code = CodeGitHubDown
		e.Action = "GitHub could not be reached or kept failing: check your connection and https://www.githubstatus.com, then run again"
		if errors.Is(err, context.Canceled) {
			e.Code, e.Action = CodeInternal, "interrupted: run again"
		}
	}
	return e
}

// sessionError explains a session file problem.
func sessionError(err error) *Error {
	e := &Error{Code: CodeNoSession, Err: err, What: "no usable wizard session"}
	relogin := "sign in again with `npx @amplitude/wizard login` and re-run, or better, run with --login: it mints a chain that only CI uses"
	switch session.KindOf(err) {
	case session.KindNoFile, session.KindNoEntry, session.KindNoRefreshToken, session.KindExpired:
		e.Action = relogin
	case session.KindAmbiguous:
		e.Code, e.Action = CodeBadInput, "pass --zone us or --zone eu"
	case session.KindUnreadable:
		e.Action = "check the file's permissions, or point --session-file at the right file"
	case session.KindMalformed:
		e.What = "the wizard session file is malformed"
		e.Action = "fix or remove the file, then " + relogin
	default:
		e.Action = relogin
	}
	return e
}

// loginError classifies a failed --login.
func loginError(err error) *Error {
	var ee *login.ExchangeError
	var de *login.DeniedError
	switch {
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeInternal, What: "interrupted during the login", Action: "run again", Err: err}
	case errors.As(err, &ee):
		return exchangeError(ee.Err)
	case errors.As(err, &de):
		return &Error{Code: CodeLoginFailed, What: "the login was refused", Action: "sign in and approve the access in the browser, then run again", Err: err}
	case errors.Is(err, login.ErrTimeout):
		return &Error{Code: CodeLoginFailed, What: "the browser did not come back", Action: "open the printed URL in a browser on this machine (the callback listens on 127.0.0.1 only), or raise --login-timeout; if the browser showed an OAuth error page instead, check --zone and any --client-id / --hydra-url override", Err: err}
	case errors.Is(err, login.ErrNoFreePort):
		return &Error{Code: CodeLoginFailed, What: "cannot listen for the login callback", Action: "free one of the ports (another wizard login may be running), then run again", Err: err}
	case errors.Is(err, login.ErrNoCode):
		return &Error{Code: CodeLoginFailed, What: "the login came back without an authorization code", Action: "run again; if it repeats, check --auth-url", Err: err}
	}
	return &Error{Code: CodeLoginFailed, What: "the login failed", Action: "run again", Err: err}
}

// exchangeError classifies a failed code exchange.
func exchangeError(err error) *Error {
	e := &Error{Code: CodeTokenExchange, What: "the token endpoint did not issue tokens for the login", Err: err, Action: "run again; a code is single-use and expires within minutes"}
	var oe *oauth.Error
	var ue *oauth.UnavailableError
	var re *oauth.ResponseError
	switch {
	case errors.As(err, &oe) && (oe.Code == "invalid_client" || oe.Code == "unauthorized_client"):
		e.Action = "check --zone (us or eu) and any --client-id / --hydra-url override: the client must be the one the authorization server knows"
	case errors.As(err, &oe):
		e.Action = "run again (an authorization code is single-use and expires within minutes); if it repeats, check --token-url and --client-id"
	case errors.As(err, &ue):
		e.Action = "the token endpoint was unavailable: check your connection, then run again"
	case errors.As(err, &re):
		e.Action = "check --token-url: it must be Hydra's /oauth2/token, not a login page or a proxy"
	case errors.Is(err, context.Canceled):
		e.Code, e.Action = CodeInternal, "interrupted: run again"
	}
	return e
}

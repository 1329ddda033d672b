package run

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/oauth"
	"github.com/amplitude/wizard-oauth-refresh/internal/retry"
)

func TestHydraFailure(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		err       error
		wantClass Class
		wantChain Chain
		wantText  string
	}{
		{"invalid_grant", &oauth.AttemptsError{Attempts: 1, Err: &oauth.Error{Status: 400, Code: "invalid_grant"}}, ClassRevoked, ChainDead, "re-bootstrap"},
		{"invalid_grant after a retry", &oauth.AttemptsError{Attempts: 3, Err: &oauth.Error{Status: 400, Code: "invalid_grant"}}, ClassRevoked, ChainDead, "earlier attempt may have reached Hydra"},
		{"invalid_client", &oauth.AttemptsError{Attempts: 1, Err: &oauth.Error{Status: 401, Code: "invalid_client"}}, ClassInvalidClient, ChainUntouched, "zone"},
		{"unauthorized_client", &oauth.Error{Status: 400, Code: "unauthorized_client"}, ClassInvalidClient, ChainUntouched, "client"},
		{"invalid_request", &oauth.Error{Status: 400, Code: "invalid_request"}, ClassConcurrentRefresh, ChainUnknown, "concurrency group"},
		{"other oauth error", &oauth.Error{Status: 400, Code: "invalid_scope"}, ClassHydraBadResponse, ChainUnknown, "invalid_scope"},
		{"unreachable", &oauth.UnavailableError{Attempts: 1, Err: errors.New("connection refused")}, ClassHydraUnavailable, ChainUntouched, "next scheduled run"},
		{"5xx until deadline", &oauth.UnavailableError{Attempts: 4, Status: 503, Err: &oauth.Error{Status: 503, Code: "server_error"}}, ClassHydraUnavailable, ChainUnknown, "attempt 4"},
		{"html page", &oauth.AttemptsError{Attempts: 1, Err: &oauth.ResponseError{Status: 200, Reason: "malformed JSON"}}, ClassHydraBadResponse, ChainUnknown, "token-url"},
		{"redirect", &oauth.AttemptsError{Attempts: 1, Err: &oauth.ResponseError{Status: 302, Reason: "redirect"}}, ClassHydraBadResponse, ChainUntouched, "token-url"},
		{"cancelled", context.Canceled, ClassInternal, ChainUnknown, "cancelled"},
		{"superseded before a retry", &oauth.AttemptsError{Attempts: 1, Err: &retry.StoppedError{Err: &SupersededError{Secret: "WIZARD_REFRESH_TOKEN"}}}, ClassConcurrentRefresh, ChainAlive, "concurrency group"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := hydraFailure(tc.err)
			if f.Class != tc.wantClass || f.Chain != tc.wantChain {
				t.Fatalf("got %v / %q, want %v / %q", f.Class, f.Chain, tc.wantClass, tc.wantChain)
			}
			if text := f.Error() + " " + f.Action; !strings.Contains(text, tc.wantText) {
				t.Fatalf("%q lacks %q", text, tc.wantText)
			}
			if got, want := ExitCode(fmt.Errorf("wrapped: %w", f)), int(tc.wantClass); got != want {
				t.Fatalf("exit code = %d, want %d", got, want)
			}
		})
	}
}

func TestGitHubFailure(t *testing.T) {
	t.Parallel()
	target := ghsecrets.Target{Owner: "o", Repo: "r"}
	cases := []struct {
		kind ghsecrets.ErrorKind
		want Class
	}{
		{ghsecrets.KindUnauthorized, ClassGitHubAuth},
		{ghsecrets.KindForbidden, ClassGitHubPermission},
		{ghsecrets.KindNotFound, ClassGitHubNotFound},
		{ghsecrets.KindRateLimited, ClassGitHubRateLimited},
		{ghsecrets.KindBadKey, ClassGitHubBadKey},
		{ghsecrets.KindUnavailable, ClassGitHubUnavailable},
	}
	if f := githubFailure(&ghsecrets.Error{Op: "fetch", Kind: ghsecrets.KindMoved}, target, true); f.Class != ClassGitHubNotFound || !strings.Contains(f.Action, "new owner/name") {
		t.Errorf("moved: got %v, %q", f.Class, f.Action)
	}
	seen := map[int]bool{}
	for _, tc := range cases {
		f := githubFailure(&ghsecrets.Error{Op: "fetch", Kind: tc.kind}, target, true)
		if f.Class != tc.want || f.Chain != ChainUntouched {
			t.Errorf("kind %v: got %v / %q, want %v / untouched", tc.kind, f.Class, f.Chain, tc.want)
		}
		if seen[f.Class.ExitCode()] {
			t.Errorf("exit code %d used twice", f.Class.ExitCode())
		}
		seen[f.Class.ExitCode()] = true
	}
}

func TestExitCodeOfPlainErrors(t *testing.T) {
	t.Parallel()
	if got := ExitCode(nil); got != 0 {
		t.Errorf("ExitCode(nil) = %d", got)
	}
	if got := ExitCode(errors.New("x")); got != 1 {
		t.Errorf("ExitCode(plain) = %d", got)
	}
}

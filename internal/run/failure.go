package run

import (
	"errors"
	"fmt"
)

// Class is a kind of failure. Each has its own exit code and its own
// advice.
type Class int

// The failure classes and their exit codes (documented in the README).
const (
	ClassInternal          Class = 1  // unexpected error, or the run was cancelled
	ClassBadInput          Class = 2  // an input is missing or malformed
	ClassRevoked           Class = 10 // invalid_grant: refresh token revoked, expired or already used
	ClassInvalidClient     Class = 11 // invalid_client / unauthorized_client
	ClassHydraUnavailable  Class = 12 // token endpoint unreachable or 429/5xx until the deadline
	ClassHydraBadResponse  Class = 13 // an answer that is neither a token nor a known OAuth error
	ClassConcurrentRefresh Class = 14 // invalid_request: the token is being refreshed by someone else
	ClassGitHubAuth        Class = 20 // 401: the GitHub token is invalid or expired
	ClassGitHubPermission  Class = 21 // 403: the GitHub token lacks Secrets: write
	ClassGitHubNotFound    Class = 22 // 404: repository, environment or organization not found
	ClassGitHubRateLimited Class = 23 // rate limited beyond the deadline
	ClassGitHubUnavailable Class = 24 // GitHub 5xx / unreachable before anything was spent
	ClassGitHubBadKey      Class = 25 // GitHub's public key is unusable
	ClassNotStored         Class = 30 // the rotated refresh token could not be stored: recovery record printed
	ClassPartialWrite      Class = 31 // refresh token safe, but another secret was not written
)

var classNames = map[Class]string{
	ClassInternal:          "internal error",
	ClassBadInput:          "bad input",
	ClassRevoked:           "refresh token revoked or already used",
	ClassInvalidClient:     "OAuth client rejected",
	ClassHydraUnavailable:  "token endpoint unavailable",
	ClassHydraBadResponse:  "unusable token endpoint answer",
	ClassConcurrentRefresh: "concurrent refresh",
	ClassGitHubAuth:        "GitHub credentials rejected",
	ClassGitHubPermission:  "GitHub permission missing",
	ClassGitHubNotFound:    "GitHub target not found",
	ClassGitHubRateLimited: "GitHub rate limit",
	ClassGitHubUnavailable: "GitHub unavailable",
	ClassGitHubBadKey:      "GitHub public key unusable",
	ClassNotStored:         "new refresh token not stored",
	ClassPartialWrite:      "secrets partially written",
}

// String is the class's short name, used as the annotation title.
func (c Class) String() string {
	if n, ok := classNames[c]; ok {
		return n
	}
	return fmt.Sprintf("class %d", int(c))
}

// ExitCode is the process exit code of the class.
func (c Class) ExitCode() int { return int(c) }

// Chain says what a failed run left of the refresh-token chain.
type Chain string

// What a run left of the chain.
const (
	ChainUntouched Chain = "untouched: the stored refresh token was not presented to Hydra"
	ChainAlive     Chain = "alive: the stored refresh token is the newest one"
	ChainUnknown   Chain = "unknown: an attempt may have reached Hydra and consumed the stored refresh token"
	ChainDead      Chain = "dead: Hydra refused the stored refresh token"
	ChainAtRisk    Chain = "at risk: the new refresh token exists only in the recovery record below"
)

// Failure is a failed run: what happened, what it left of the chain, and
// what to do.
type Failure struct {
	Class  Class
	What   string // what happened, one sentence
	Chain  Chain
	Action string // what the user should do
	Err    error  // the underlying error (already redacted of secrets by the printer)
	// Note adds context, e.g. that a failing attempt was a retry.
	Note string
}

func (f *Failure) Error() string {
	msg := f.What
	if f.Err != nil {
		msg += ": " + f.Err.Error()
	}
	if f.Note != "" {
		msg += " (" + f.Note + ")"
	}
	return msg
}

func (f *Failure) Unwrap() error { return f.Err }

// ExitCode maps an error to the process exit code: 0 for nil, the class's
// code for a *Failure, 1 otherwise.
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var f *Failure
	if errors.As(err, &f) {
		return f.Class.ExitCode()
	}
	return int(ClassInternal)
}

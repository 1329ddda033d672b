package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/amplitude/wizard-oauth-refresh/internal/retry"
)

// Client talks to one token endpoint as one public client.
type Client struct {
	// TokenURL is the full token endpoint, e.g.
	// https://auth.amplitude.com/oauth2/token.
	TokenURL string
	// ClientID is sent in the form body (public client, no secret: the
	// auth style is "in params", never auto-detected).
	ClientID string
	// HTTPClient sends each attempt; nil means a client with sane
	// timeouts. Its redirect policy is replaced: redirects are refused.
	HTTPClient *http.Client
	// Timeout is the total deadline of one exchange, retries included.
	Timeout time.Duration
	// AttemptTimeout bounds one attempt.
	AttemptTimeout time.Duration
	// MaxAttempts, WaitMin, WaitMax and MaxRetryAfter shape retries of
	// transient failures (connection errors, 429, 5xx).
	MaxAttempts      int
	WaitMin, WaitMax time.Duration
	MaxRetryAfter    time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRetry is told about each retry (for logging).
	OnRetry func(attempt, status int, err error, wait time.Duration)
	// BeforeRetry runs right before a retry is sent; an error stops the
	// exchange without presenting the token again (the error is returned,
	// wrapped in *retry.StoppedError inside an *AttemptsError).
	BeforeRetry func(ctx context.Context) error
}

// Defaults for an hourly job: a Hydra blip gets a minute to pass; a longer
// outage is left to the next scheduled run.
const (
	DefaultTimeout        = 60 * time.Second
	DefaultAttemptTimeout = 20 * time.Second
	DefaultMaxAttempts    = 5
	DefaultWaitMin        = 500 * time.Millisecond
	DefaultWaitMax        = 8 * time.Second
	DefaultMaxRetryAfter  = 15 * time.Second
)

// UnavailableError means the token endpoint could not be reached or kept
// failing transiently (429, 5xx) until the deadline or the attempt budget.
type UnavailableError struct {
	Attempts int
	// Status is the last HTTP status (0 when no answer arrived).
	Status int
	// Err is the last transport error, if any.
	Err error
	// Why says why retrying stopped.
	Why string
	// MaybeSent is false when no attempt reached the server (every one
	// failed to resolve or connect): the refresh token was not presented.
	MaybeSent bool
}

func (e *UnavailableError) Error() string {
	var last string
	switch {
	case e.Err != nil:
		last = e.Err.Error()
	case e.Status != 0:
		last = fmt.Sprintf("HTTP %d %s", e.Status, http.StatusText(e.Status))
	default:
		last = "no answer"
	}
	msg := fmt.Sprintf("token endpoint unavailable after %d attempt(s): %s", e.Attempts, last)
	if e.Why != "" {
		msg += " (" + e.Why + ")"
	}
	return msg
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// AttemptsError wraps a final error with the number of attempts made, so a
// caller can tell that an earlier attempt may have consumed the token.
type AttemptsError struct {
	Attempts int
	Err      error
}

func (e *AttemptsError) Error() string { return e.Err.Error() }
func (e *AttemptsError) Unwrap() error { return e.Err }

// Attempts returns how many attempts produced err (1 when unknown).
func Attempts(err error) int {
	var ae *AttemptsError
	if errors.As(err, &ae) {
		return ae.Attempts
	}
	var ue *UnavailableError
	if errors.As(err, &ue) {
		return ue.Attempts
	}
	return 1
}

// Refresh exchanges a refresh token (grant_type=refresh_token).
func (c *Client) Refresh(ctx context.Context, refreshToken string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"refresh_token"},
		"refresh_token": {refreshToken},
		"client_id":     {c.ClientID},
	}
	return c.exchange(ctx, form)
}

// ExchangeCode exchanges an authorization code with its PKCE verifier
// (grant_type=authorization_code).
func (c *Client) ExchangeCode(ctx context.Context, code, verifier, redirectURI string) (*Token, error) {
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {code},
		"code_verifier": {verifier},
		"redirect_uri":  {redirectURI},
		"client_id":     {c.ClientID},
	}
	return c.exchange(ctx, form)
}

func (c *Client) exchange(ctx context.Context, form url.Values) (*Token, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	timeout := retry.Or(c.Timeout, DefaultTimeout)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ctx, trace := retry.WithTrace(ctx)

	base := &http.Client{Timeout: retry.Or(c.AttemptTimeout, DefaultAttemptTimeout)}
	if c.HTTPClient != nil {
		cp := *c.HTTPClient
		base = &cp
		if base.Timeout == 0 {
			base.Timeout = retry.Or(c.AttemptTimeout, DefaultAttemptTimeout)
		}
	}
	base.CheckRedirect = retry.NoRedirect

	rc := retry.NewClient(base, retry.Policy{
		MaxAttempts:   retry.Or(c.MaxAttempts, DefaultMaxAttempts),
		WaitMin:       retry.Or(c.WaitMin, DefaultWaitMin),
		WaitMax:       retry.Or(c.WaitMax, DefaultWaitMax),
		MaxServerWait: retry.Or(c.MaxRetryAfter, DefaultMaxRetryAfter),
		Transient:     transientStatus,
		Now:           now,
		OnRetry:       c.OnRetry,
		BeforeRetry:   c.BeforeRetry,
	})

	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, c.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("failed to build token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")

	sent := now()
	resp, err := rc.Do(req)
	attempts := max(trace.Attempts(), 1)
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		var stopped *retry.StoppedError
		if errors.As(err, &stopped) {
			return nil, &AttemptsError{Attempts: attempts, Err: stopped}
		}
		return nil, &UnavailableError{Attempts: attempts, Status: trace.LastStatus(), Err: retry.RedactURLError(err), Why: trace.GaveUp(), MaybeSent: trace.MaybeSent()}
	}
	defer resp.Body.Close()

	body, truncated, err := readBody(resp.Body)
	if err != nil {
		// The answer was cut mid-body: the exchange may have happened.
		return nil, &UnavailableError{Attempts: attempts, Status: resp.StatusCode, Err: fmt.Errorf("failed to read token response: %w", err), MaybeSent: true}
	}
	tok, err := ParseResponse(resp.StatusCode, resp.Header, body, truncated, sent)
	if err != nil {
		if transientStatus(resp) {
			// Still 429/5xx when retrying stopped (server_error and
			// temporarily_unavailable bodies included).
			return nil, &UnavailableError{Attempts: attempts, Status: resp.StatusCode, Err: err, Why: trace.GaveUp(), MaybeSent: true}
		}
		return nil, &AttemptsError{Attempts: attempts, Err: err}
	}
	return tok, nil
}

// transientStatus: 429 and 5xx (but 501, which will not change) are retried;
// OAuth 4xx errors (invalid_grant, invalid_client, invalid_request) never
// are.
func transientStatus(resp *http.Response) bool {
	return resp.StatusCode == http.StatusTooManyRequests ||
		(resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented)
}

// Package ghsecrets is the GitHub side of a run: it fetches the Actions
// public key of a repository, environment or organization once, seals values
// with it (libsodium sealed boxes) and writes them as Actions secrets through
// the REST API, concurrently, with retries on 5xx and rate limits.
//
// Requests go through github.com/google/go-github/v62 for its types and
// error decoding, over a transport that retries (go-retryablehttp, explicit
// policy), bounds response bodies, refuses redirects and sends the token only
// to the configured API host.
package ghsecrets

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/google/go-github/v62/github"
	"github.com/hashicorp/go-retryablehttp"

	"github.com/amplitude/wizard-oauth-refresh/internal/retry"
)

// DefaultAPIURL is used when GITHUB_API_URL is not set.
const DefaultAPIURL = "https://api.github.com"

// MaxBodyBytes bounds every GitHub response body read.
const MaxBodyBytes = 1 << 20

// Defaults: GitHub writes are retried for up to a minute; a rate limit that
// resets later than MaxRateLimitWait is reported instead of waited out.
const (
	DefaultTimeout          = 60 * time.Second
	DefaultAttemptTimeout   = 20 * time.Second
	DefaultMaxAttempts      = 5
	DefaultWaitMin          = 500 * time.Millisecond
	DefaultWaitMax          = 8 * time.Second
	DefaultMaxRateLimitWait = 30 * time.Second
)

// Options configures a Client.
type Options struct {
	// APIURL is the REST API root (GITHUB_API_URL); empty means
	// DefaultAPIURL. GitHub Enterprise Server uses https://HOST/api/v3.
	APIURL string
	// Token is a fine-grained PAT or an installation token with
	// Secrets: write.
	Token string
	// HTTPClient sends each attempt; nil means a fresh client. Its
	// redirect policy and transport are wrapped, not replaced.
	HTTPClient *http.Client
	// Timeout bounds each call (retries included).
	Timeout        time.Duration
	AttemptTimeout time.Duration
	// MaxAttempts, WaitMin, WaitMax and MaxRateLimitWait shape retries.
	MaxAttempts      int
	WaitMin, WaitMax time.Duration
	MaxRateLimitWait time.Duration
	// Rand is the randomness for sealing; nil means crypto/rand.
	Rand io.Reader
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRetry is told about each retry (for logging).
	OnRetry func(attempt, status int, err error, wait time.Duration)
	// UserAgent is sent with every request.
	UserAgent string
}

// Client writes Actions secrets.
type Client struct {
	gh      *github.Client
	opts    Options
	timeout time.Duration
}

// New returns a Client. It fails only on a malformed API URL.
func New(opts Options) (*Client, error) {
	api := opts.APIURL
	if api == "" {
		api = DefaultAPIURL
	}
	base, err := url.Parse(strings.TrimRight(api, "/") + "/")
	if err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http") {
		return nil, fmt.Errorf("failed to parse GitHub API URL %q: want an absolute http(s) URL", api)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	inner := &http.Client{Timeout: retry.Or(opts.AttemptTimeout, DefaultAttemptTimeout)}
	if opts.HTTPClient != nil {
		cp := *opts.HTTPClient
		inner = &cp
		if inner.Timeout == 0 {
			inner.Timeout = retry.Or(opts.AttemptTimeout, DefaultAttemptTimeout)
		}
	}
	inner.CheckRedirect = retry.NoRedirect
	rc := retry.NewClient(inner, retry.Policy{
		MaxAttempts:   retry.Or(opts.MaxAttempts, DefaultMaxAttempts),
		WaitMin:       retry.Or(opts.WaitMin, DefaultWaitMin),
		WaitMax:       retry.Or(opts.WaitMax, DefaultWaitMax),
		MaxServerWait: retry.Or(opts.MaxRateLimitWait, DefaultMaxRateLimitWait),
		Transient:     transientResponse,
		ServerWait:    rateLimitWait,
		Now:           opts.Now,
		OnRetry:       opts.OnRetry,
	})
	outer := &http.Client{
		CheckRedirect: retry.NoRedirect,
		Transport: &authTransport{
			host:  base.Host,
			token: opts.Token,
			next:  &limitTransport{next: &retryablehttp.RoundTripper{Client: rc}},
		},
	}
	gh := github.NewClient(outer)
	gh.BaseURL = base
	if opts.UserAgent != "" {
		gh.UserAgent = opts.UserAgent
	}
	return &Client{gh: gh, opts: opts, timeout: retry.Or(opts.Timeout, DefaultTimeout)}, nil
}

// authTransport adds the token to requests for the API host only, so a
// credential never reaches another host.
type authTransport struct {
	host  string
	token string
	next  http.RoundTripper
}

func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host {
		return nil, fmt.Errorf("refusing to send GitHub credentials to %q (API host is %q)", req.URL.Host, t.host)
	}
	req = req.Clone(req.Context())
	req.Header.Set("Authorization", "Bearer "+t.token)
	return t.next.RoundTrip(req)
}

// limitTransport bounds response bodies: go-github decodes them whole.
type limitTransport struct{ next http.RoundTripper }

func (t *limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if resp != nil && resp.Body != nil {
		resp.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(resp.Body, MaxBodyBytes), resp.Body}
	}
	return resp, err
}

// transientResponse: 5xx, 429, and a 403 that is a rate limit (secondary,
// with retry-after; primary, with x-ratelimit-remaining: 0).
func transientResponse(resp *http.Response) bool {
	switch {
	case resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
		return true
	case resp.StatusCode == http.StatusTooManyRequests:
		return true
	case resp.StatusCode == http.StatusForbidden:
		return isRateLimit(resp)
	}
	return false
}

func isRateLimit(resp *http.Response) bool {
	return resp.Header.Get("Retry-After") != "" || resp.Header.Get("X-Ratelimit-Remaining") == "0"
}

// rateLimitWait is the wait GitHub asks for: retry-after, else the primary
// limit's reset time when none remain.
func rateLimitWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if d, ok := retry.RetryAfter(resp, now); ok {
		return d, true
	}
	if resp.Header.Get("X-Ratelimit-Remaining") == "0" {
		var reset int64
		if _, err := fmt.Sscan(resp.Header.Get("X-Ratelimit-Reset"), &reset); err == nil && reset > 0 {
			return max(time.Unix(reset, 0).Sub(now), 0) + time.Second, true
		}
		return time.Minute, true
	}
	return 0, false
}

// call runs fn under the client's per-call deadline and turns its failure
// into an *Error.
func (c *Client) call(ctx context.Context, op string, fn func(ctx context.Context) (*github.Response, error)) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ctx, trace := retry.WithTrace(ctx)
	resp, err := fn(ctx)
	if err == nil {
		return nil
	}
	return newError(op, resp, err, trace, c.opts.Now())
}

// ErrorKind classifies a GitHub failure for the caller to branch on.
type ErrorKind int

// The kinds of GitHub failure.
const (
	KindOther        ErrorKind = iota
	KindUnauthorized           // 401: the token is invalid or expired
	KindForbidden              // 403: the token lacks a permission
	KindNotFound               // 404: no such repo/environment/org, or not visible to the token
	KindRateLimited            // a rate limit that outlasted the deadline
	KindUnavailable            // 5xx or no answer, after retries
	KindInvalid                // 422: GitHub refused the request's content
	KindBadKey                 // the public key is unusable
	KindMoved                  // 3xx: the repository was renamed or transferred
)

// Error is a failed GitHub call.
type Error struct {
	Op       string // e.g. "fetch public key", "write secret WIZARD_REFRESH_TOKEN"
	Kind     ErrorKind
	Status   int
	Message  string // GitHub's message, if any
	Attempts int
	// ResetIn is how long a rate limit still had to run (KindRateLimited).
	ResetIn time.Duration
	Err     error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "failed to %s: ", e.Op)
	switch {
	case e.Status != 0 && e.Message != "":
		fmt.Fprintf(&b, "HTTP %d: %s", e.Status, e.Message)
	case e.Status != 0:
		fmt.Fprintf(&b, "HTTP %d %s", e.Status, http.StatusText(e.Status))
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("unknown error")
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	if e.Kind == KindRateLimited && e.ResetIn > 0 {
		fmt.Fprintf(&b, " (rate limit resets in %s)", e.ResetIn.Round(time.Second))
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the kind of a GitHub failure (KindOther for other errors).
func KindOf(err error) ErrorKind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return KindOther
}

func newError(op string, resp *github.Response, err error, trace *retry.Trace, now time.Time) *Error {
	e := &Error{Op: op, Attempts: max(trace.Attempts(), 1), Err: err}
	var hr *http.Response
	if resp != nil {
		hr = resp.Response
	}
	var er *github.ErrorResponse
	var rl *github.RateLimitError
	var ab *github.AbuseRateLimitError
	switch {
	case errors.As(err, &rl):
		e.Message, hr = rl.Message, rl.Response
	case errors.As(err, &ab):
		e.Message, hr = ab.Message, ab.Response
	case errors.As(err, &er):
		e.Message, hr = er.Message, er.Response
	}
	if hr != nil {
		e.Status = hr.StatusCode
	}
	switch {
	case hr == nil:
		e.Kind = KindUnavailable
		e.Err = retry.RedactURLError(err)
	case hr.StatusCode == http.StatusUnauthorized:
		e.Kind = KindUnauthorized
	case hr.StatusCode == http.StatusTooManyRequests, hr.StatusCode == http.StatusForbidden && isRateLimit(hr):
		e.Kind = KindRateLimited
		if d, ok := rateLimitWait(hr, now); ok {
			e.ResetIn = d
		}
	case hr.StatusCode == http.StatusForbidden:
		e.Kind = KindForbidden
	case hr.StatusCode == http.StatusNotFound:
		e.Kind = KindNotFound
	case hr.StatusCode == http.StatusUnprocessableEntity:
		e.Kind = KindInvalid
	case hr.StatusCode >= 500:
		e.Kind = KindUnavailable
	case hr.StatusCode >= 300 && hr.StatusCode < 400:
		e.Kind = KindMoved
		e.Message = fmt.Sprintf("redirect to %q refused (was the repository renamed or transferred?)", hr.Header.Get("Location"))
	}
	return e
}

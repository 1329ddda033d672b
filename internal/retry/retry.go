// Package retry builds the retrying HTTP clients both sides of a run use.
//
// It wraps github.com/hashicorp/go-retryablehttp with an explicit policy
// instead of the library's defaults, which retry every method (a refresh
// token POST included) on any error and honor an unbounded Retry-After:
//
//   - the caller says which responses are transient (Policy.Transient);
//   - waits grow exponentially between WaitMin and WaitMax and honor a
//     server's Retry-After (or GitHub's x-ratelimit-reset) only up to
//     MaxServerWait;
//   - a retry whose wait would end after the context's deadline is not
//     attempted: the last response is returned to the caller instead of a
//     bare "context deadline exceeded", so the caller can say what the
//     server last answered;
//   - every attempt is counted in a Trace carried by the request's context,
//     so the caller can tell whether a failing attempt was a retry.
package retry

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Policy configures a retrying client.
type Policy struct {
	// MaxAttempts bounds the attempts of one request (first try included).
	MaxAttempts int
	// WaitMin and WaitMax bound the exponential backoff between attempts.
	WaitMin, WaitMax time.Duration
	// MaxServerWait caps a wait that the server asked for (Retry-After,
	// x-ratelimit-reset). A server asking for longer than this is not
	// retried: its response is returned as it is.
	MaxServerWait time.Duration
	// Transient reports whether a response is worth another attempt.
	Transient func(*http.Response) bool
	// ServerWait returns the wait the server asked for, if any. Nil means
	// RetryAfter.
	ServerWait func(resp *http.Response, now time.Time) (time.Duration, bool)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// OnRetry is told about each retry before its wait (for logging; it must
	// not print request or response bodies).
	OnRetry func(attempt int, status int, err error, wait time.Duration)
	// BeforeRetry runs after the wait, right before a retry is sent. An
	// error stops retrying: the request is not sent again, and the error is
	// returned (wrapping it in *StoppedError).
	BeforeRetry func(ctx context.Context) error
}

// StoppedError is returned when Policy.BeforeRetry refused a retry.
type StoppedError struct {
	Err error
}

func (e *StoppedError) Error() string { return "retry stopped: " + e.Err.Error() }
func (e *StoppedError) Unwrap() error { return e.Err }

// Trace records what happened to one logical request across its attempts.
type Trace struct {
	mu         sync.Mutex
	attempts   int
	lastStatus int
	gaveUp     string
	sent       bool
}

// MaybeSent reports whether any attempt may have reached the server: it
// got an answer, or failed after the connection was made (a reset, a
// timeout). False means every attempt failed to connect (DNS, refused).
func (t *Trace) MaybeSent() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sent
}

// NeverSent reports whether a transport error happened before the request
// could reach the server: a DNS failure or a failed dial.
func NeverSent(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// Attempts is the number of attempts made.
func (t *Trace) Attempts() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.attempts
}

// LastStatus is the status of the last response (0 when none arrived).
func (t *Trace) LastStatus() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.lastStatus
}

// GaveUp says why retrying stopped early, if it did ("" otherwise).
func (t *Trace) GaveUp() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.gaveUp
}

type traceKey struct{}

// WithTrace returns a context that records attempts into a new Trace.
func WithTrace(ctx context.Context) (context.Context, *Trace) {
	t := &Trace{}
	return context.WithValue(ctx, traceKey{}, t), t
}

func traceFrom(ctx context.Context) *Trace {
	if t, ok := ctx.Value(traceKey{}).(*Trace); ok {
		return t
	}
	return &Trace{} // a throwaway trace keeps the code below simple
}

// NewClient returns a retrying client sending through base. base's
// CheckRedirect and Timeout (per attempt) are kept as they are.
func NewClient(base *http.Client, p Policy) *retryablehttp.Client {
	if p.Now == nil {
		p.Now = time.Now
	}
	if p.ServerWait == nil {
		p.ServerWait = RetryAfter
	}
	if p.MaxAttempts < 1 {
		p.MaxAttempts = 1
	}
	c := &retryablehttp.Client{
		HTTPClient:   base,
		Logger:       nil,
		RetryMax:     p.MaxAttempts - 1,
		RetryWaitMin: p.WaitMin,
		RetryWaitMax: p.WaitMax,
		// Every outcome, retried or not, goes back to the caller unchanged:
		// the library's default handler drops the last response and body.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	c.RequestLogHook = func(_ retryablehttp.Logger, req *http.Request, i int) {
		t := traceFrom(req.Context())
		t.mu.Lock()
		t.attempts = i + 1
		t.mu.Unlock()
	}
	c.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		t := traceFrom(ctx)
		t.mu.Lock()
		attempt := t.attempts
		if resp != nil {
			t.lastStatus = resp.StatusCode
		}
		if resp != nil || (err != nil && !NeverSent(err)) {
			t.sent = true
		}
		t.mu.Unlock()

		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if !p.retryable(resp, err) {
			return false, nil
		}
		wait, ok := p.wait(attempt, resp)
		if !ok {
			t.setGaveUp("the server asked to wait longer than the cap")
			return false, nil
		}
		if deadline, has := ctx.Deadline(); has && p.Now().Add(wait).After(deadline) {
			t.setGaveUp("the next attempt would start after the deadline")
			return false, nil
		}
		if attempt >= p.MaxAttempts {
			t.setGaveUp("out of attempts")
			return false, nil
		}
		if p.OnRetry != nil {
			status := 0
			if resp != nil {
				status = resp.StatusCode
			}
			p.OnRetry(attempt, status, err, wait)
		}
		return true, nil
	}
	if p.BeforeRetry != nil {
		c.PrepareRetry = func(req *http.Request) error {
			if err := p.BeforeRetry(req.Context()); err != nil {
				traceFrom(req.Context()).setGaveUp("a check before the retry stopped it")
				return &StoppedError{Err: err}
			}
			return nil
		}
	}
	c.Backoff = func(_, _ time.Duration, i int, resp *http.Response) time.Duration {
		wait, _ := p.wait(i+1, resp)
		return wait
	}
	return c
}

func (t *Trace) setGaveUp(why string) {
	t.mu.Lock()
	t.gaveUp = why
	t.mu.Unlock()
}

// retryable reports whether an outcome is worth another attempt.
func (p Policy) retryable(resp *http.Response, err error) bool {
	if err != nil {
		return transientError(err)
	}
	return p.Transient != nil && p.Transient(resp)
}

// wait is the pause before the attempt after attempt n (n >= 1). ok is false
// when the server asked for a wait longer than MaxServerWait.
func (p Policy) wait(n int, resp *http.Response) (time.Duration, bool) {
	if resp != nil {
		if d, asked := p.ServerWait(resp, p.Now()); asked {
			if d > p.MaxServerWait {
				return d, false
			}
			return max(d, p.WaitMin), true
		}
	}
	d := p.WaitMin
	for i := 1; i < n && d < p.WaitMax; i++ {
		d *= 2
	}
	return min(d, p.WaitMax), true
}

// transientError reports whether a transport error may go away on its own.
// Redirects refused by policy, bad URLs and certificate errors will not.
func transientError(err error) bool {
	var certErr *x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalidErr x509.CertificateInvalidError
	if errors.As(err, &certErr) || errors.As(err, &hostErr) || errors.As(err, &invalidErr) {
		return false
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	msg := err.Error()
	for _, permanent := range []string{"unsupported protocol scheme", "invalid header", "stopped after"} {
		if strings.Contains(msg, permanent) {
			return false
		}
	}
	return true
}

// NoRedirect is an http.Client CheckRedirect that never follows a redirect:
// the 3xx answer itself is returned, for the caller to treat as a failure. A
// token POST must not be replayed elsewhere, and credentials must not follow
// a redirect to another host.
func NoRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// RetryAfter parses a Retry-After header in seconds or as an HTTP date.
func RetryAfter(resp *http.Response, now time.Time) (time.Duration, bool) {
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// RedactURLError drops the query string and user info from a *url.Error's
// URL, so nothing from a URL reaches a message.
func RedactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			u.User = nil
			return &url.Error{Op: ue.Op, URL: u.String(), Err: ue.Err}
		}
	}
	return err
}

// Or returns v when it is positive, else def.
func Or[T time.Duration | int](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Describe names a failed attempt for a retry log line: the transport error,
// or the HTTP status.
func Describe(status int, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("HTTP %d", status)
}

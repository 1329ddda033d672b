package githubemu

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Fault changes how the emulator answers matching requests. Faults are tried
// in the order they were injected; the first one that matches and has firings
// left shapes the answer.
//
// To fail the PUT of WIZARD_REFRESH_TOKEN twice with 502 and then succeed:
//
//	e.Inject(githubemu.ServerError(githubemu.RoutePutRepoSecret, 502).
//		ForName("WIZARD_REFRESH_TOKEN").FirstN(2))
type Fault struct {
	// Route is a Route constant, or AnyRoute ("*") for every route.
	Route string
	// Name, if set, restricts the fault to the secret or variable of that
	// name (case-insensitive).
	Name string
	// Times is how many matching requests the fault fires for; 0 means always.
	Times int
	// Status is the status to answer. 0 answers normally (useful with Delay).
	Status int
	// Headers are set on the answer, over the usual ones.
	Headers map[string]string
	// Body is the answer body. If empty and Status is 400 or more, a
	// GitHub-shaped error body is used. "{request_id}" is replaced by the
	// request's x-github-request-id.
	Body string
	// Delay is waited before answering.
	Delay time.Duration
	// DropConnection closes the connection after reading the request, without
	// answering. Note that net/http clients transparently retry idempotent
	// requests (GET) once when a reused connection drops.
	DropConnection bool
	// Commit processes the request normally (state changes are kept) before
	// the fault replaces the answer: "the write happened, the answer was lost".
	Commit bool
}

// FaultID identifies an injected fault.
type FaultID int

type faultState struct {
	Fault
	hits int
}

// ForName returns a copy of f restricted to the secret or variable name.
func (f Fault) ForName(name string) Fault { f.Name = name; return f }

// FirstN returns a copy of f that fires for the first n matching requests only.
func (f Fault) FirstN(n int) Fault { f.Times = n; return f }

// Inject adds fault f and returns its id.
func (e *Emulator) Inject(f Fault) FaultID {
	defer e.lock()()
	e.faults = append(e.faults, &faultState{Fault: f})
	return FaultID(len(e.faults) - 1)
}

// Hits reports how many requests fault id has fired for.
func (e *Emulator) Hits(id FaultID) int {
	defer e.lock()()
	if int(id) < 0 || int(id) >= len(e.faults) || e.faults[id] == nil {
		return 0
	}
	return e.faults[id].hits
}

// ClearFaults removes every injected fault. Ids of removed faults report 0 hits.
func (e *Emulator) ClearFaults() {
	defer e.lock()()
	for i := range e.faults {
		e.faults[i] = nil
	}
}

// matchFault finds the fault to fire for c and counts the firing. Callers
// hold e.mu.
func (e *Emulator) matchFault(c *call) *Fault {
	for _, f := range e.faults {
		if f == nil || (f.Route != AnyRoute && f.Route != c.route) ||
			(f.Name != "" && !strings.EqualFold(f.Name, c.name)) ||
			(f.Times > 0 && f.hits >= f.Times) {
			continue
		}
		f.hits++
		cp := f.Fault
		return &cp
	}
	return nil
}

func (f *Fault) response(requestID string) response {
	h := http.Header{}
	for k, v := range f.Headers {
		h.Set(k, v)
	}
	body := []byte(strings.ReplaceAll(f.Body, "{request_id}", requestID))
	if f.Body == "" {
		body = nil
		if f.Status >= 400 {
			body = errorBody(f.Status, http.StatusText(f.Status), docsRest, nil)
		}
	}
	return response{status: f.Status, header: h, body: body}
}

// SecondaryRateLimitDocs is the documentation_url of GitHub's secondary rate
// limit errors. go-github (CheckResponse in v62) recognises a secondary limit
// by a 403 whose documentation_url ends in "secondary-rate-limits".
const SecondaryRateLimitDocs = "https://docs.github.com/free-pro-team@latest/rest/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits"

// PrimaryRateLimitDocs is the documentation_url of a primary rate limit error.
const PrimaryRateLimitDocs = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"

// SecondaryRateLimit is a 403 secondary rate limit with a retry-after header
// (whole seconds, rounded up). GitHub documents "403 or 429 … and an error
// message that indicates that you exceeded a secondary rate limit", with
// retry-after when present (docs.github.com/rest/using-the-rest-api/
// rate-limits-for-the-rest-api#exceeding-the-rate-limit). The message is the
// one reported from live API answers (octokit/octokit.net#2466,
// KnpLabs/php-github-api#1070). Set Status to 429 for the other variant.
func SecondaryRateLimit(route string, retryAfter time.Duration) Fault {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	return Fault{
		Route:   route,
		Status:  http.StatusForbidden,
		Headers: map[string]string{"Retry-After": strconv.Itoa(secs)},
		Body: string(errorBody(http.StatusForbidden, "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "+
			"If you reach out to GitHub Support for help, please include the request ID {request_id}.", SecondaryRateLimitDocs, nil)),
	}
}

// PrimaryRateLimit is a 403 primary rate limit: x-ratelimit-remaining 0 and
// x-ratelimit-reset at reset (epoch seconds), as documented in "Exceeding the
// rate limit". The message is GitHub's "API rate limit exceeded for user ID …".
func PrimaryRateLimit(route string, reset time.Time) Fault {
	return Fault{Route: route, Status: http.StatusForbidden, Headers: rateState{limit: DefaultRateLimit, used: DefaultRateLimit, reset: reset}.headers(),
		Body: string(primaryLimitBody())}
}

func primaryLimitBody() []byte {
	return errorBody(http.StatusForbidden, "API rate limit exceeded for user ID 1.", PrimaryRateLimitDocs, nil)
}

// ServerError answers status (500, 502, 503, 504, …) with a JSON error body.
func ServerError(route string, status int) Fault {
	return Fault{Route: route, Status: status}
}

// BadCredentials answers 401 Bad credentials, as for a revoked token.
func BadCredentials(route string) Fault {
	return Fault{Route: route, Status: http.StatusUnauthorized, Body: string(badCredentials())}
}

// badCredentials is the 401 body observed from GitHub for a bad token
// ({"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}).
func badCredentials() []byte {
	return errorBody(http.StatusUnauthorized, "Bad credentials", docsRest, nil)
}

// Slow answers normally after delay d.
func Slow(route string, d time.Duration) Fault { return Fault{Route: route, Delay: d} }

// Drop closes the connection of matching requests without answering.
func Drop(route string) Fault { return Fault{Route: route, DropConnection: true} }

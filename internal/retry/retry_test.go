package retry

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

func TestWait(t *testing.T) {
	t.Parallel()
	p := Policy{WaitMin: 100 * time.Millisecond, WaitMax: time.Second, MaxServerWait: 10 * time.Second, ServerWait: RetryAfter, Now: time.Now}
	hdr := func(v string) *http.Response { return &http.Response{Header: http.Header{"Retry-After": {v}}} }
	cases := []struct {
		name   string
		n      int
		resp   *http.Response
		want   time.Duration
		wantOK bool
	}{
		{"first", 1, nil, 100 * time.Millisecond, true},
		{"doubles", 3, nil, 400 * time.Millisecond, true},
		{"capped", 10, nil, time.Second, true},
		{"retry-after honored", 1, hdr("5"), 5 * time.Second, true},
		{"retry-after zero uses the minimum", 1, hdr("0"), 100 * time.Millisecond, true},
		{"retry-after over the cap", 1, hdr("3600"), time.Hour, false},
		{"garbage retry-after ignored", 2, hdr("soon"), 200 * time.Millisecond, true},
	}
	for _, tc := range cases {
		got, ok := p.wait(tc.n, tc.resp)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: wait = %s, %v; want %s, %v", tc.name, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestGivesUpBeforeTheDeadline(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	c := NewClient(&http.Client{}, Policy{MaxAttempts: 10, WaitMin: time.Millisecond, WaitMax: time.Millisecond, MaxServerWait: time.Minute,
		Transient: func(r *http.Response) bool { return r.StatusCode >= 500 }})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	ctx, trace := WithTrace(ctx)
	req, _ := retryablehttp.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	start := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("err = %v, want the last response", err)
	}
	resp.Body.Close()
	// The server asks for 2s and only 1s is left: no second attempt, and
	// the last response comes back instead of a bare deadline error.
	if got, want := n.Load(), int32(1); got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
	if got, want := resp.StatusCode, 503; got != want {
		t.Errorf("status = %d, want %d", got, want)
	}
	if trace.GaveUp() == "" || trace.Attempts() != 1 || trace.LastStatus() != 503 {
		t.Errorf("trace = %q %d %d", trace.GaveUp(), trace.Attempts(), trace.LastStatus())
	}
	if time.Since(start) > 900*time.Millisecond {
		t.Logf("note: gave up after %s", time.Since(start))
	}
}

func TestNoRedirect(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	resp, err := (&http.Client{CheckRedirect: NoRedirect}).Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got, want := resp.StatusCode, http.StatusFound; got != want {
		t.Fatalf("status = %d, want %d (redirect followed?)", got, want)
	}
}

func TestBeforeRetryStops(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	stop := errors.New("someone else rotated")
	var checks atomic.Int32
	c := NewClient(&http.Client{}, Policy{MaxAttempts: 5, WaitMin: time.Millisecond, WaitMax: time.Millisecond,
		Transient: func(r *http.Response) bool { return r.StatusCode >= 500 },
		BeforeRetry: func(context.Context) error {
			if checks.Add(1) == 2 {
				return stop
			}
			return nil
		}})
	req, _ := retryablehttp.NewRequest(http.MethodPost, srv.URL, strings.NewReader("x"))
	resp, err := c.Do(req)
	if resp != nil {
		resp.Body.Close()
	}
	var stopped *StoppedError
	if !errors.As(err, &stopped) || !errors.Is(err, stop) {
		t.Fatalf("err = %v, want a StoppedError wrapping the check's error", err)
	}
	// First attempt, one allowed retry, then the check refuses the third.
	if got, want := n.Load(), int32(2); got != want {
		t.Fatalf("requests = %d, want %d", got, want)
	}
}

package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// script answers the n-th request with answers[n] (the last one repeats).
type answer struct {
	status int
	header map[string]string
	body   string
	delay  time.Duration
}

func scripted(t *testing.T, answers ...answer) (*httptest.Server, *atomic.Int32, chan url.Values) {
	t.Helper()
	var n atomic.Int32
	forms := make(chan url.Values, 32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := int(n.Add(1)) - 1
		if err := r.ParseForm(); err != nil {
			t.Errorf("parse form: %v", err)
		}
		if got, want := r.Header.Get("Content-Type"), "application/x-www-form-urlencoded"; got != want {
			t.Errorf("content type = %q, want %q", got, want)
		}
		forms <- r.PostForm
		a := answers[min(i, len(answers)-1)]
		if a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				return
			}
		}
		for k, v := range a.header {
			w.Header().Set(k, v)
		}
		if w.Header().Get("Content-Type") == "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n, forms
}

func fastClient(url string) *Client {
	return &Client{TokenURL: url, ClientID: "client-1", Timeout: 5 * time.Second, WaitMin: time.Millisecond, WaitMax: 5 * time.Millisecond, MaxRetryAfter: 50 * time.Millisecond, MaxAttempts: 4}
}

const okBody = `{"access_token":"at2","refresh_token":"rt2","expires_in":3600,"token_type":"bearer"}`

func TestRefreshSendsTheForm(t *testing.T) {
	t.Parallel()
	srv, n, forms := scripted(t, answer{status: 200, body: okBody})
	tok, err := fastClient(srv.URL).Refresh(context.Background(), "rt1")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.RefreshToken, "rt2"; got != want {
		t.Errorf("refresh token = %q, want %q", got, want)
	}
	if got, want := n.Load(), int32(1); got != want {
		t.Errorf("requests = %d, want %d", got, want)
	}
	form := <-forms
	want := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"rt1"}, "client_id": {"client-1"}}
	if got := form.Encode(); got != want.Encode() {
		t.Errorf("form = %s, want %s", got, want.Encode())
	}
}

func TestRefreshRetries(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		answers   []answer
		wantReqs  int32
		wantErr   any // nil, **Error, **UnavailableError, **ResponseError
		wantCode  string
		wantTries int
	}{
		{name: "503 then ok", answers: []answer{{status: 503, body: `{}`}, {status: 200, body: okBody}}, wantReqs: 2},
		{name: "502 html then ok", answers: []answer{{status: 502, header: map[string]string{"Content-Type": "text/html"}, body: "<html>"}, {status: 200, body: okBody}}, wantReqs: 2},
		{name: "429 retry-after then ok", answers: []answer{{status: 429, header: map[string]string{"Retry-After": "0"}}, {status: 200, body: okBody}}, wantReqs: 2},
		{name: "500 forever", answers: []answer{{status: 500, body: `{"error":"server_error"}`}}, wantReqs: 4, wantErr: new(*UnavailableError), wantTries: 4},
		{name: "invalid_grant not retried", answers: []answer{{status: 400, body: `{"error":"invalid_grant"}`}}, wantReqs: 1, wantErr: new(*Error), wantCode: "invalid_grant", wantTries: 1},
		{name: "invalid_request not retried", answers: []answer{{status: 400, body: `{"error":"invalid_request"}`}}, wantReqs: 1, wantErr: new(*Error), wantCode: "invalid_request", wantTries: 1},
		{name: "invalid_client not retried", answers: []answer{{status: 401, body: `{"error":"invalid_client"}`}}, wantReqs: 1, wantErr: new(*Error), wantCode: "invalid_client", wantTries: 1},
		{name: "503 then invalid_grant counts attempts", answers: []answer{{status: 503}, {status: 400, body: `{"error":"invalid_grant"}`}}, wantReqs: 2, wantErr: new(*Error), wantCode: "invalid_grant", wantTries: 2},
		{name: "retry-after over cap not waited", answers: []answer{{status: 503, header: map[string]string{"Retry-After": "3600"}}}, wantReqs: 1, wantErr: new(*UnavailableError), wantTries: 1},
		{name: "redirect not followed", answers: []answer{{status: 302, header: map[string]string{"Location": "/elsewhere"}}}, wantReqs: 1, wantErr: new(*ResponseError), wantTries: 1},
		{name: "501 not retried", answers: []answer{{status: 501}}, wantReqs: 1, wantErr: new(*ResponseError), wantTries: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, n, _ := scripted(t, tc.answers...)
			_, err := fastClient(srv.URL).Refresh(context.Background(), "rt1")
			if got := n.Load(); got != tc.wantReqs {
				t.Errorf("requests = %d, want %d", got, tc.wantReqs)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			switch target := tc.wantErr.(type) {
			case **Error:
				if !errors.As(err, target) {
					t.Fatalf("err = %T %v, want *Error", err, err)
				}
				if got := (*target).Code; got != tc.wantCode {
					t.Errorf("code = %q, want %q", got, tc.wantCode)
				}
			case **UnavailableError:
				if !errors.As(err, target) {
					t.Fatalf("err = %T %v, want *UnavailableError", err, err)
				}
			case **ResponseError:
				if !errors.As(err, target) {
					t.Fatalf("err = %T %v, want *ResponseError", err, err)
				}
			}
			if got := Attempts(err); got != tc.wantTries {
				t.Errorf("attempts = %d, want %d", got, tc.wantTries)
			}
		})
	}
}

func TestRefreshDeadline(t *testing.T) {
	t.Parallel()
	// The server is slower than the whole deadline.
	srv, _, _ := scripted(t, answer{status: 200, body: okBody, delay: 2 * time.Second})
	c := fastClient(srv.URL)
	c.Timeout = 200 * time.Millisecond
	_, err := c.Refresh(context.Background(), "rt1")
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %T %v, want *UnavailableError", err, err)
	}
}

func TestRefreshConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = fastClient("http://"+addr+"/oauth2/token").Refresh(context.Background(), "rt1")
	var ue *UnavailableError
	if !errors.As(err, &ue) {
		t.Fatalf("err = %T %v, want *UnavailableError", err, err)
	}
	if got, want := ue.Attempts, 4; got != want {
		t.Errorf("attempts = %d, want %d", got, want)
	}
	if strings.Contains(err.Error(), "rt1") {
		t.Errorf("error mentions the token: %v", err)
	}
}

func TestRefreshOversizeBody(t *testing.T) {
	t.Parallel()
	big := fmt.Sprintf(`{"access_token":"%s"}`, strings.Repeat("a", MaxBodyBytes))
	srv, _, _ := scripted(t, answer{status: 200, body: big})
	_, err := fastClient(srv.URL).Refresh(context.Background(), "rt1")
	var re *ResponseError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "larger than") {
		t.Fatalf("err = %v, want oversize ResponseError", err)
	}
}

func TestExchangeCodeForm(t *testing.T) {
	t.Parallel()
	srv, _, forms := scripted(t, answer{status: 200, body: okBody})
	if _, err := fastClient(srv.URL).ExchangeCode(context.Background(), "code-1", "verifier-1", "http://localhost:13222/callback"); err != nil {
		t.Fatal(err)
	}
	want := url.Values{"grant_type": {"authorization_code"}, "code": {"code-1"}, "code_verifier": {"verifier-1"}, "redirect_uri": {"http://localhost:13222/callback"}, "client_id": {"client-1"}}
	if got := (<-forms).Encode(); got != want.Encode() {
		t.Errorf("form = %s, want %s", got, want.Encode())
	}
}

package oauth

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseResponse(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	jsonHdr := http.Header{"Content-Type": {"application/json;charset=UTF-8"}}
	htmlHdr := http.Header{"Content-Type": {"text/html"}}
	idToken := "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(`{"exp":1767326645}`)) + ".sig"

	cases := []struct {
		name      string
		status    int
		header    http.Header
		body      string
		truncated bool
		want      *Token
		wantErr   string // substring; "" means success
		wantCode  string // for *Error
	}{
		{
			name: "rotated", status: 200, header: jsonHdr,
			body: `{"access_token":"at","refresh_token":"rt","expires_in":3599,"token_type":"bearer","scope":"openid offline"}`,
			want: &Token{AccessToken: "at", RefreshToken: "rt", TokenType: "bearer", Scope: "openid offline", ExpiresIn: 3599 * time.Second, Expiry: now.Add(3599 * time.Second)},
		},
		{
			name: "expires_in as string", status: 200, header: jsonHdr,
			body: `{"access_token":"at","refresh_token":"rt","expires_in":"3600","token_type":"Bearer"}`,
			want: &Token{AccessToken: "at", RefreshToken: "rt", TokenType: "Bearer", ExpiresIn: time.Hour, Expiry: now.Add(time.Hour)},
		},
		{
			name: "no expires_in", status: 200, header: jsonHdr,
			body: `{"access_token":"at","refresh_token":"rt","token_type":"bearer"}`,
			want: &Token{AccessToken: "at", RefreshToken: "rt", TokenType: "bearer"},
		},
		{
			name: "not rotated", status: 200, header: jsonHdr,
			body: `{"access_token":"at","expires_in":60,"token_type":"bearer"}`,
			want: &Token{AccessToken: "at", TokenType: "bearer", ExpiresIn: time.Minute, Expiry: now.Add(time.Minute)},
		},
		{
			name: "id token expiry", status: 200, header: jsonHdr,
			body: `{"access_token":"at","refresh_token":"rt","expires_in":3600,"id_token":"` + idToken + `"}`,
			want: &Token{AccessToken: "at", RefreshToken: "rt", IDToken: idToken, ExpiresIn: time.Hour, Expiry: now.Add(time.Hour), IDTokenExpiry: time.Unix(1767326645, 0).UTC()},
		},
		{name: "200 with error field", status: 200, header: jsonHdr, body: `{"error":"invalid_grant","error_description":"nope"}`, wantErr: "invalid_grant", wantCode: "invalid_grant"},
		{name: "200 with error and token", status: 200, header: jsonHdr, body: `{"access_token":"at","error":"server_error"}`, wantErr: "server_error", wantCode: "server_error"},
		{name: "error field not a string", status: 200, header: jsonHdr, body: `{"access_token":"at","error":{"x":1}}`, wantErr: "unknown_error", wantCode: "unknown_error"},
		{name: "invalid_grant", status: 400, header: jsonHdr, body: `{"error":"invalid_grant","error_description":"The refresh token was already used.","error_hint":"reuse"}`, wantErr: "already used", wantCode: "invalid_grant"},
		{name: "invalid_client", status: 401, header: jsonHdr, body: `{"error":"invalid_client"}`, wantErr: "401 invalid_client", wantCode: "invalid_client"},
		{name: "html page", status: 502, header: htmlHdr, body: `<html><body>Bad gateway</body></html>`, wantErr: "HTML page"},
		{name: "5xx without oauth error", status: 503, header: jsonHdr, body: `{}`, wantErr: "HTTP 503 without an OAuth error"},
		{name: "malformed json", status: 200, header: jsonHdr, body: `{"access_token":`, wantErr: "malformed JSON"},
		{name: "missing access_token", status: 200, header: jsonHdr, body: `{"refresh_token":"rt"}`, wantErr: "no access_token"},
		{name: "wrong token_type", status: 200, header: jsonHdr, body: `{"access_token":"at","token_type":"mac"}`, wantErr: "not bearer"},
		// A useless expires_in reads as unknown: the answer (and a rotated
		// refresh token in it) is kept.
		{name: "bad expires_in", status: 200, header: jsonHdr, body: `{"access_token":"at","refresh_token":"rt","expires_in":"soon"}`, want: &Token{AccessToken: "at", RefreshToken: "rt"}},
		{name: "negative expires_in", status: 200, header: jsonHdr, body: `{"access_token":"at","expires_in":-5}`, want: &Token{AccessToken: "at"}},
		{name: "expires_in an object", status: 200, header: jsonHdr, body: `{"access_token":"at","expires_in":{"s":1}}`, want: &Token{AccessToken: "at"}},
		{name: "oversize body", status: 200, header: jsonHdr, body: `{"access_token":"at"}`, truncated: true, wantErr: "larger than"},
		{name: "redirect", status: 302, header: http.Header{"Location": {"https://login.example/"}}, wantErr: "redirect"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseResponse(tc.status, tc.header, []byte(tc.body), tc.truncated, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				var oe *Error
				if gotCode := ""; errors.As(err, &oe) {
					gotCode = oe.Code
					if gotCode != tc.wantCode {
						t.Fatalf("code = %q, want %q", gotCode, tc.wantCode)
					}
				} else if tc.wantCode != "" {
					t.Fatalf("err %T is not *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if *got != *tc.want {
				t.Fatalf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestParseResponseNeverQuotesBodyInJSONError(t *testing.T) {
	t.Parallel()
	// A malformed body that contains a secret must not end up in the error
	// text (the snippet field is separate and only printed redacted).
	body := `{"access_token":"SECRET-VALUE-123", oops}`
	_, err := ParseResponse(200, http.Header{"Content-Type": {"application/json"}}, []byte(body), false, time.Now())
	if err == nil {
		t.Fatal("want error")
	}
	if strings.Contains(err.Error(), "SECRET-VALUE-123") {
		t.Fatalf("error quotes the body: %v", err)
	}
}

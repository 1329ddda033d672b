package oauth

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzParseResponse feeds the token response parser arbitrary answers.
// Properties:
//   - a token comes back only from a 2xx, untruncated answer whose body is a
//     JSON object with a non-empty string access_token, equal to the
//     token's, and no error member; its refresh and id tokens are the
//     body's;
//   - a redirect or a truncated body is always an error;
//   - an error is exactly one of *Error, *ResponseError;
//   - an expiry, when set, is after the time the request was sent;
//   - an error message never carries a token from the body, unless the
//     server itself put it in its error text.
func FuzzParseResponse(f *testing.F) {
	seeds := []struct {
		status    int
		ctype     string
		body      string
		truncated bool
	}{
		{200, "application/json", `{"access_token":"ory_at_abc","refresh_token":"ory_rt_def","expires_in":3599,"scope":"openid offline_access","token_type":"bearer"}`, false},
		{200, "application/json;charset=UTF-8", `{"access_token":"at","expires_in":"3600","token_type":"Bearer"}`, false},
		{200, "application/json", `{"access_token":"at","expires_in":"soon"}`, false},
		{200, "application/json", `{"access_token":"at","id_token":"eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjE3NjczMjY2NDV9.c2ln"}`, false},
		{400, "application/json", `{"error":"invalid_grant","error_description":"The refresh token was already used.","error_hint":"reuse"}`, false},
		{401, "application/json", `{"error":"invalid_client"}`, false},
		{200, "application/json", `{"access_token":"ory_at_secret_value","error":"server_error"}`, false},
		{200, "application/json", `{"error":{"code":1}}`, false},
		{502, "text/html", `<html><body>Bad gateway</body></html>`, false},
		{503, "application/json", `{}`, false},
		{200, "application/json", `{"access_token":`, false},
		{200, "application/json", `{"access_token":"at","token_type":"mac"}`, false},
		{200, "application/json", `{"access_token":"at"}`, true},
		{302, "", ``, false},
		{200, "application/json", `{"access_token":"","refresh_token":"ory_rt_only"}`, false},
		{200, "application/json", `[1,2,3]`, false},
		{200, "application/json", `null`, false},
		{204, "", ``, false},
		{200, "application/json", `{"ACCESS_TOKEN":"at-upper","access_token":null,"Error":null}`, false},
		{200, "application/json", `{"access_token":"a","access_token":"b","error":"x","error":""}`, false},
	}
	for _, s := range seeds {
		f.Add(s.status, s.ctype, []byte(s.body), s.truncated)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, ctype string, body []byte, truncated bool) {
		h := http.Header{}
		if ctype != "" {
			h.Set("Content-Type", ctype)
		}
		if status >= 300 && status < 400 {
			h.Set("Location", "https://login.example/")
		}
		tok, err := ParseResponse(status, h, body, truncated, now)

		members, isObject := objectMembers(body)
		// str is what encoding/json puts in a string field named k: the
		// last member whose name matches k case-insensitively, a null
		// leaving the field as it was.
		str := func(k string) string {
			v := ""
			for _, mb := range members {
				if strings.EqualFold(mb.key, k) && string(mb.raw) != "null" {
					_ = json.Unmarshal(mb.raw, &v)
				}
			}
			return v
		}
		// hasError: the last "error" member is neither absent, null nor "".
		hasError := func() bool {
			last := ""
			for _, mb := range members {
				if strings.EqualFold(mb.key, "error") {
					last = string(mb.raw)
				}
			}
			return last != "" && last != "null" && last != `""`
		}

		if err == nil {
			if tok == nil {
				t.Fatal("nil token and nil error")
			}
			if status < 200 || status > 299 || truncated {
				t.Fatalf("token from status %d (truncated %v)", status, truncated)
			}
			if !isObject {
				t.Fatalf("token from a body that is not a JSON object: %q", body)
			}
			if tok.AccessToken == "" || str("access_token") != tok.AccessToken {
				t.Fatalf("access token %q, body has %q", tok.AccessToken, str("access_token"))
			}
			if hasError() {
				t.Fatalf("token from a body with an error member: %q", body)
			}
			if tok.RefreshToken != str("refresh_token") || tok.IDToken != str("id_token") {
				t.Fatalf("refresh/id token differ from the body")
			}
			if !tok.Expiry.IsZero() && (!tok.Expiry.After(now.Add(-time.Second)) || tok.ExpiresIn <= 0) {
				t.Fatalf("expiry %v (expires_in %v) not after %v", tok.Expiry, tok.ExpiresIn, now)
			}
			return
		}
		if tok != nil {
			t.Fatal("token and error")
		}
		var oe *Error
		var re *ResponseError
		if errors.As(err, &oe) == errors.As(err, &re) {
			t.Fatalf("error %T is not exactly one of *Error, *ResponseError", err)
		}
		if !isObject {
			return
		}
		serverText := str("error") + " " + str("error_description") + " " + str("error_hint") + " " + str("error_uri")
		msg := err.Error()
		for _, k := range []string{"access_token", "refresh_token", "id_token"} {
			if v := str(k); len(v) >= 8 && strings.Contains(msg, v) && !strings.Contains(serverText, v) {
				t.Fatalf("error %q carries the body's %s", msg, k)
			}
		}
	})
}

type member struct {
	key string
	raw json.RawMessage
}

// objectMembers lists a JSON object's members in order (duplicates kept),
// reporting whether body is exactly one JSON object.
func objectMembers(body []byte) ([]member, bool) {
	if !json.Valid(body) {
		return nil, false
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		out = append(out, member{key, raw})
	}
	return out, true
}

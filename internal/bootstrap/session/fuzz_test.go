package session

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzParse feeds the session-file parser arbitrary files. Properties:
//   - a file that parses is exactly one JSON object with unique keys, and
//     its entries are its User-<id> / User[<zone>]-<id> members, in order,
//     with a lower-case zone;
//   - no error message and no entry description ever carries a token
//     (any string of 8 or more characters stored under an OAuth*Token
//     member anywhere in the file);
//   - Select on a parsed file never panics, and what it picks is one of
//     the file's entries with a refresh token.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`{"User-123":{"User":{"id":"123","email":"a@example.com","zone":"us"},"OAuthAccessToken":"ory_at_0123456789","OAuthIdToken":"eyJ.eyJ.sig","OAuthRefreshToken":"ory_rt_0123456789","OAuthExpiresAt":"2026-01-02T15:04:05.000Z"}}`,
		`{"User[eu]-7":{"OAuthRefreshToken":"ory_rt_eu_0123456789","OAuthExpiresAt":"2026-01-02T15:04:05Z"},"User-pending":{"User":{"id":"pending"},"OAuthRefreshToken":"ory_rt_pending_0123"}}`,
		`{"User[EU]-1":{"OAuthRefreshToken":null},"other":{"x":1},"User-":{}}`,
		`{"User-1":{"OAuthRefreshToken":12345678901}}`,
		`{"User-1":"ory_rt_not_an_object_0123"}`,
		`{"User-1":{"OAuthRefreshToken":"a"},"User-1":{"OAuthRefreshToken":"b"}}`,
		`{"User-1":{"oauthrefreshtoken":"ory_rt_case_0123456789"}}`,
		`{"User-1":{"User":{"id":["ory_rt_in_an_array_0123"]}}}`,
		`{} {}`, `[]`, `null`, ``, `{`, `{"User-1":{}}trailing`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		tokens, names := tokenValues(data)
		// noToken: s carries no token, except one that is also part of a
		// name a message may quote (a member name, an email, a user id).
		noToken := func(what, s string, quotable ...string) {
			t.Helper()
			q := strings.Join(append(quotable, names...), "\x00")
			for _, tok := range tokens {
				if strings.Contains(s, tok) && !strings.Contains(q, tok) {
					t.Fatalf("%s %q carries a token", what, s)
				}
			}
		}
		file, err := Parse("oauth-session.json", data)
		if err != nil {
			if file != nil {
				t.Fatal("file and error")
			}
			noToken("error", err.Error())
			return
		}
		keys, ok := topKeys(data)
		if !ok {
			t.Fatalf("parsed %q, which is not one JSON object with unique keys", data)
		}
		var want []string
		for _, k := range keys {
			if isUserKey(k) {
				want = append(want, k)
			}
		}
		var got []string
		for _, e := range file.Entries {
			got = append(got, e.Key)
			if e.Zone == "" || e.Zone != strings.ToLower(e.Zone) || e.UserID == "" {
				t.Fatalf("entry %q: zone %q, user %q", e.Key, e.Zone, e.UserID)
			}
			noToken("description", e.Describe(), e.Email, e.UserID, e.Zone)
		}
		if strings.Join(got, "\x00") != strings.Join(want, "\x00") {
			t.Fatalf("entries %q, want the user members %q", got, want)
		}
		var quotable []string
		for _, e := range file.Entries {
			quotable = append(quotable, e.Email, e.UserID, e.Zone)
		}
		for _, zone := range []string{"", "us", "eu"} {
			e, err := file.Select(zone, now)
			if err != nil {
				noToken("error", err.Error(), quotable...)
				continue
			}
			if e == nil || e.RefreshToken == "" {
				t.Fatalf("Select(%q) picked %+v", zone, e)
			}
			found := false
			for i := range file.Entries {
				found = found || file.Entries[i].Key == e.Key
			}
			if !found {
				t.Fatalf("Select(%q) picked %q, not an entry", zone, e.Key)
			}
		}
	})
}

// isUserKey: "User-<id>", or "User[<zone>]-<id>" with the zone ending at
// the first "]-"; zone and id not empty.
func isUserKey(k string) bool {
	if id, ok := strings.CutPrefix(k, "User-"); ok {
		return id != ""
	}
	rest, ok := strings.CutPrefix(k, "User[")
	i := strings.Index(rest, "]-")
	return ok && i > 0 && len(rest) > i+2
}

// topKeys returns the keys of data if it is exactly one JSON object with
// unique keys.
func topKeys(data []byte) ([]string, bool) {
	if !json.Valid(data) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var keys []string
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		k, _ := tok.(string)
		if seen[k] {
			return nil, false
		}
		seen[k] = true
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
	}
	return keys, true
}

// tokenValues collects every string of 8 or more characters held, at any
// depth, under a member whose name looks like an OAuth token field, and
// every member name.
func tokenValues(data []byte) (tokens, names []string) {
	var out []string
	var walk func(v any, underToken bool)
	walk = func(v any, underToken bool) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				names = append(names, k)
				lk := strings.ToLower(k)
				walk(x, underToken || strings.HasPrefix(lk, "oauth") && strings.HasSuffix(lk, "token"))
			}
		case []any:
			for _, x := range v {
				walk(x, underToken)
			}
		case string:
			if underToken && len(v) >= 8 {
				out = append(out, v)
			}
		}
	}
	// Scan the document and every top-level member on its own, so a
	// document that is not valid as a whole still yields its tokens.
	var doc any
	if json.Unmarshal(data, &doc) == nil {
		walk(doc, false)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err == nil && tok == json.Delim('{') {
		for dec.More() {
			k, err := dec.Token()
			if err != nil {
				break
			}
			if k, ok := k.(string); ok {
				names = append(names, k)
			}
			var v any
			if dec.Decode(&v) != nil {
				break
			}
			walk(v, false)
		}
	}
	return out, names
}

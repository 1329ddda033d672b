package session

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
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

// FuzzHandOff hands off every entry of arbitrary files that Parse accepts.
// Properties, for each entry with a refresh token:
//   - HandOff either removes it or, refusing the file, leaves it untouched
//     with a KindMalformed error;
//   - after a hand-off, Parse reads the file with that entry's refresh token
//     gone and every other field of every entry unchanged;
//   - Forget of that token on the original file removes it from exactly the
//     entries that Parse read it from, and changes nothing else.
func FuzzHandOff(f *testing.F) {
	for _, s := range []string{
		`{"User-123":{"User":{"id":"123"},"OAuthAccessToken":"at","OAuthRefreshToken":"ory_rt_0123456789","OAuthExpiresAt":"2026-01-02T15:04:05.000Z"}}`,
		`{"User-1":{"oauthrefreshtoken":"rt-1"},"User[eu]-1":{"OAUTHREFRESHTOKEN":"rt-1","x":[1,{"a":null}]}}`,
		"{\"User-1\": {\n  \"oauthRefreshToken\": \"rt-old\",\n  \"OAuthRefreshToken\": \"rt-new\",\n  \"a\": 1\n}, \"b\": 2}",
		`{"User-1":{"OAuthRefreshToken":"rt-1","oauthRefreshToken":null},"User-2":{"OAuthRefreshToken":"rt-1","oauthRefreshToken":""}}`,
		`{"User-1":{"OAuthRefre\u017fhToken":"rt-1","OAuthRefreshTo\u212aen":"rt-2"}}`,
		`{"User-1":{"OAuthRefresh\u0054oken":"rt-1","OAuthRefreshToken":"rt-1"}}`,
		`{"User-1":{"OAuthRefreshToken":"a","OAuthRefreshToken":"b"}}`,
		`{"User-1":{ }, "User-2":{"OAuthRefreshToken":"rt-\u00e9\ud83d\ude00"} }`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before, err := Parse("x", data)
		if err != nil {
			return
		}
		for _, e := range before.Entries {
			if e.RefreshToken == "" {
				continue
			}
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			removed, err := HandOff(path, e.Key, e.RefreshToken)
			want := map[string]bool{e.Key: true}
			checkRemoved(t, "HandOff", data, path, err, removed, want)

			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			keys, err := Forget(path, e.RefreshToken)
			want = map[string]bool{}
			for _, o := range before.Entries {
				want[o.Key] = want[o.Key] || o.RefreshToken == e.RefreshToken
			}
			var got []string
			for _, o := range before.Entries {
				if want[o.Key] {
					got = append(got, o.Key)
				}
			}
			if err == nil && strings.Join(keys, "\x00") != strings.Join(got, "\x00") {
				t.Fatalf("Forget changed %q, want %q", keys, got)
			}
			checkRemoved(t, "Forget", data, path, err, len(keys) > 0, want)
		}
	})
}

// checkRemoved checks the file at path against the original data after an
// edit that should have removed the refresh token of the entries in want.
func checkRemoved(t *testing.T, what string, data []byte, path string, err error, removed bool, want map[string]bool) {
	t.Helper()
	after, rerr := os.ReadFile(path)
	if rerr != nil {
		t.Fatal(rerr)
	}
	if err != nil {
		if KindOf(err) != KindMalformed || !bytes.Equal(after, data) {
			t.Fatalf("%s: %v (kind %d), file changed: %v", what, err, KindOf(err), !bytes.Equal(after, data))
		}
		return
	}
	if !removed {
		t.Fatalf("%s: nothing removed", what)
	}
	b, _ := Parse("x", data)
	a, err := Parse("x", after)
	if err != nil {
		t.Fatalf("%s: the result does not parse: %v", what, err)
	}
	if len(a.Entries) != len(b.Entries) {
		t.Fatalf("%s: %d entries, want %d", what, len(a.Entries), len(b.Entries))
	}
	for i, x := range b.Entries {
		if want[x.Key] {
			x.RefreshToken = ""
		}
		if a.Entries[i] != x {
			t.Fatalf("%s: entry %d is %+v, want %+v", what, i, a.Entries[i], x)
		}
	}
	if len(after) >= len(data) {
		t.Fatalf("%s: the file did not shrink", what)
	}
}

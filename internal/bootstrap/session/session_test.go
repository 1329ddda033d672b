package session

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixtures is testdata/session at the module root: one directory per case,
// with cache/oauth-session.json and home/.ampli.json as the case needs.
var fixtures = filepath.Join("..", "..", "..", "testdata", "session")

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func paths(dir string) Paths {
	return Paths{Canonical: filepath.Join(dir, "cache", FileName), Legacy: filepath.Join(dir, "home", LegacyFileName)}
}

var kindNames = map[Kind]string{
	KindNoFile: "no-file", KindUnreadable: "unreadable", KindMalformed: "malformed", KindNoEntry: "no-entry",
	KindAmbiguous: "ambiguous", KindNoRefreshToken: "no-refresh-token", KindExpired: "expired", KindChanged: "changed",
}

// selectCase runs Find, Load and Select like the CLI and renders the
// outcome for a golden file.
func selectCase(dir, zone string) (string, *Entry, string) {
	var b strings.Builder
	path, legacy, err := Find(paths(dir))
	var e *Entry
	if err == nil {
		rel, _ := filepath.Rel(dir, path)
		fmt.Fprintf(&b, "file: %s\nlegacy: %v\n", filepath.ToSlash(rel), legacy)
		var f *File
		if f, err = Load(path); err == nil {
			e, err = f.Select(zone, now)
		}
	}
	if err != nil {
		msg := strings.ReplaceAll(err.Error(), dir+string(filepath.Separator), "")
		fmt.Fprintf(&b, "error: %s\nmessage: %s\n", kindNames[KindOf(err)], filepath.ToSlash(msg))
		return b.String(), nil, path
	}
	fmt.Fprintf(&b, "key: %s\nzone: %s\nuser: %s\nemail: %s\npending: %v\n", e.Key, e.Zone, e.UserID, e.Email, e.Pending())
	fmt.Fprintf(&b, "access token: %s\nid token: %s\nrefresh token: %s\n", e.AccessToken, e.IDToken, e.RefreshToken)
	fmt.Fprintf(&b, "expires at: %s (stored %q)\nrefresh until: %s\ndescribe: %s\n", e.ExpiresAt.Format(time.RFC3339Nano), e.ExpiresAtRaw, e.RefreshUntil().Format(time.RFC3339), e.Describe())
	return b.String(), e, path
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join(fixtures, "golden", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func TestSelectFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dir, zone string
	}{
		{"us", "us", ""},
		{"us-zone-us", "us", "us"},
		{"us-zone-eu", "us", "eu"},
		{"eu", "eu", ""},
		{"both-zones", "both-zones", ""},
		{"both-zones-eu", "both-zones", "EU"},
		{"legacy-only", "legacy-only", ""},
		{"canonical-cleared", "canonical-cleared", ""},
		{"pending", "pending", ""},
		{"pending-only", "pending-only", ""},
		{"malformed", "malformed", ""},
		{"missing-refresh", "missing-refresh", ""},
		{"expired", "expired", ""},
		{"wrong-type", "wrong-type", ""},
		{"not-object", "not-object", ""},
		{"first-member", "first-member", ""},
		{"mirrored", "mirrored", ""},
		{"case-variant", "case-variant", ""},
		{"case-variants", "case-variants", ""},
		{"none", "does-not-exist", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, _ := selectCase(filepath.Join(fixtures, tt.dir), tt.zone)
			golden(t, tt.name+".golden", got)
			for _, secret := range []string{"12345678901234567890", "ory_rt_truncated"} {
				if strings.Contains(got, secret) {
					t.Errorf("the outcome quotes a stored value %q:\n%s", secret, got)
				}
			}
		})
	}
}

// copyDir copies a fixture into a fresh temporary directory.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o700)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// withoutToken decodes data and removes from the entries keys every member
// named OAuthRefreshToken in any case that holds a non-empty string.
func withoutToken(t *testing.T, data []byte, keys ...string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		entry := m[k].(map[string]any)
		for name, v := range entry {
			if s, ok := v.(string); ok && s != "" && strings.EqualFold(name, refreshMember) {
				delete(entry, name)
			}
		}
	}
	return m
}

func TestHandOffFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, dir, zone string
		// mirrorKeys are the entries of the other file that held the token.
		mirrorKeys []string
	}{
		{name: "us", dir: "us"},
		{name: "eu", dir: "eu"},
		{name: "both-zones-eu", dir: "both-zones", zone: "eu"},
		{name: "legacy-only", dir: "legacy-only"},
		{name: "pending", dir: "pending"},
		{name: "first-member", dir: "first-member"},
		{name: "mirrored", dir: "mirrored", mirrorKeys: []string{"User-1001"}},
		// "oauthRefreshToken" (read by Parse like encoding/json, case-insensitively),
		// mirrored as "OAUTHREFRESHTOKEN".
		{name: "case-variant", dir: "case-variant", mirrorKeys: []string{"User-2002"}},
		// Several spellings: the last one was pushed, every one holding a token goes.
		{name: "case-variants", dir: "case-variants"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := copyDir(t, filepath.Join(fixtures, tt.dir))
			_, e, path := selectCase(dir, tt.zone)
			if e == nil {
				t.Fatal("no entry selected")
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			removed, err := HandOff(path, e.Key, e.RefreshToken)
			if err != nil || !removed {
				t.Fatalf("HandOff = %v, %v; want true, nil", removed, err)
			}
			after, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name+".handoff.golden", string(after))

			// Every other key intact, the token gone.
			if got, want := withoutToken(t, after), withoutToken(t, before, e.Key); !reflect.DeepEqual(got, want) {
				t.Errorf("after the hand-off:\n%v\nwant\n%v", got, want)
			}
			if bytes.Contains(after, []byte(e.RefreshToken)) {
				t.Error("the refresh token is still in the file")
			}
			// No spelling of the member holds a token any more.
			var entries map[string]any
			if err := json.Unmarshal(after, &entries); err != nil {
				t.Fatal(err)
			}
			for name, v := range entries[e.Key].(map[string]any) {
				if s, ok := v.(string); ok && s != "" && strings.EqualFold(name, refreshMember) {
					t.Errorf("entry %s still holds a refresh token under %q", e.Key, name)
				}
			}
			if runtime.GOOS != "windows" {
				st, err := os.Stat(path)
				if err != nil {
					t.Fatal(err)
				}
				if got, want := st.Mode().Perm(), FileMode; got != want {
					t.Errorf("mode = %v, want %v", got, want)
				}
			}
			// No temporary file is left behind.
			names, _ := os.ReadDir(filepath.Dir(path))
			for _, n := range names {
				if strings.HasSuffix(n.Name(), ".tmp") {
					t.Errorf("left %s behind", n.Name())
				}
			}
			// The wizard's other copy.
			other := paths(dir).Legacy
			if path == other {
				other = paths(dir).Canonical
			}
			keys, err := Forget(other, e.RefreshToken)
			if err != nil {
				t.Fatalf("Forget: %v", err)
			}
			if !reflect.DeepEqual(keys, tt.mirrorKeys) {
				t.Errorf("Forget removed %v, want %v", keys, tt.mirrorKeys)
			}
			if len(tt.mirrorKeys) > 0 {
				b, _ := os.ReadFile(other)
				golden(t, tt.name+".mirror.golden", string(b))
			}
			// A second hand-off has nothing left to do.
			if removed, err := HandOff(path, e.Key, e.RefreshToken); err != nil || removed {
				t.Errorf("second HandOff = %v, %v; want false, nil", removed, err)
			}
		})
	}
}

func TestHandOffRefusesAChangedSession(t *testing.T) {
	t.Parallel()
	dir := copyDir(t, filepath.Join(fixtures, "us"))
	path := paths(dir).Canonical
	before, _ := os.ReadFile(path)
	_, err := HandOff(path, "User-1001", "ory_rt_the-one-we-pushed")
	if got, want := KindOf(err), KindChanged; got != want {
		t.Fatalf("HandOff error kind = %v (%v), want %v", got, err, want)
	}
	if strings.Contains(err.Error(), "ory_rt_") {
		t.Errorf("the error quotes a token: %v", err)
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(before, after) {
		t.Error("the file was changed")
	}
}

func TestHandOffEdgeCases(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, key string
		want          string // "" means unchanged
		wantErr       Kind
	}{
		{"only member", `{"User-1": {"OAuthRefreshToken": "rt-000000001"}}`, "User-1", `{"User-1": {}}`, 0},
		{"last member", "{\"User-1\": {\"a\": 1,\n  \"OAuthRefreshToken\": \"rt-000000001\"\n}}", "User-1", "{\"User-1\": {\"a\": 1\n}}", 0},
		{"middle member", `{"User-1":{"a":1,"OAuthRefreshToken":"rt-000000001","b":2}}`, "User-1", `{"User-1":{"a":1,"b":2}}`, 0},
		{"escaped key", `{"User-1":{"a":"x\"y","OAuthRefreshToken":"rt-000000001"}}`, "User-1", `{"User-1":{"a":"x\"y"}}`, 0},
		{"no such entry", `{"User-2":{"OAuthRefreshToken":"rt-000000001"}}`, "User-1", "", 0},
		{"null token", `{"User-1":{"OAuthRefreshToken":null}}`, "User-1", "", 0},
		{"duplicate keys", `{"User-1":{},"User-1":{}}`, "User-1", "", KindMalformed},
		// encoding/json reads the member case-insensitively, the last one winning.
		{"lower case", `{"User-1":{"oauthRefreshToken":"rt-000000001","a":1}}`, "User-1", `{"User-1":{"a":1}}`, 0},
		{"upper case, last member", "{\"User-1\": {\"a\": 1,\n  \"OAUTHREFRESHTOKEN\": \"rt-000000001\"\n}}", "User-1", "{\"User-1\": {\"a\": 1\n}}", 0},
		{"long s folds to s", `{"User-1":{"OAuthRefreſhToken":"rt-000000001"}}`, "User-1", `{"User-1":{}}`, 0},
		{"Kelvin sign folds to k", `{"User-1":{"a":1,"OAuthRefreshToKen":"rt-000000001"}}`, "User-1", `{"User-1":{"a":1}}`, 0},
		{"escaped member name", `{"User-1":{"OAuthRefresh\u0074oken":"rt-000000001","a":1}}`, "User-1", `{"User-1":{"a":1}}`, 0},
		{"two spellings, same token", `{"User-1":{"OAuthRefreshToken":"rt-000000001","a":1,"oauthrefreshtoken":"rt-000000001"}}`, "User-1", `{"User-1":{"a":1}}`, 0},
		{"two spellings, the last pushed", `{"User-1":{"OAuthRefreshToken":"rt-older","oauthRefreshToken":"rt-000000001","a":1}}`, "User-1", `{"User-1":{"a":1}}`, 0},
		{"leading spellings", "{\"User-1\": {\n  \"oauthRefreshToken\": \"rt-000000001\",\n  \"OAuthRefreshToken\": \"rt-000000001\",\n  \"a\": 1\n}}", "User-1", "{\"User-1\": {\n  \"a\": 1\n}}", 0},
		{"all spellings", `{"User-1":{ "oauthRefreshToken":"rt-older", "OAuthRefreshToken":"rt-000000001" }}`, "User-1", `{"User-1":{}}`, 0},
		{"empty and null spellings stay", `{"User-1":{"OAUTHREFRESHTOKEN":"","x":1,"oauthRefreshToken":null,"OAuthRefreshToken":"rt-000000001"}}`, "User-1", `{"User-1":{"OAUTHREFRESHTOKEN":"","x":1,"oauthRefreshToken":null}}`, 0},
		{"another token last", `{"User-1":{"oauthRefreshToken":"rt-000000001","OAuthRefreshToken":"rt-other"}}`, "User-1", "", KindChanged},
		{"a later null hides the token", `{"User-1":{"OAuthRefreshToken":"rt-000000001","oauthRefreshToken":null}}`, "User-1", "", 0},
		{"a later empty string hides the token", `{"User-1":{"OAuthRefreshToken":"rt-000000001","oauthrefreshtoken":""}}`, "User-1", "", 0},
		{"spelling that is not a match", `{"User-1":{"OAuthRefreshTokens":"rt-000000001","OAuth_RefreshToken":"rt-000000001"}}`, "User-1", "", 0},
		{"spelling that is not a string", `{"User-1":{"oauthRefreshToken":1,"OAuthRefreshToken":"rt-000000001"}}`, "User-1", "", KindMalformed},
		{"trailing data", `{"User-1":{}} {}`, "User-1", "", KindMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), FileName)
			if err := os.WriteFile(path, []byte(tt.in), 0o600); err != nil {
				t.Fatal(err)
			}
			removed, err := HandOff(path, tt.key, "rt-000000001")
			if got := KindOf(err); got != tt.wantErr {
				t.Fatalf("HandOff error = %v, want kind %v", err, tt.wantErr)
			}
			got, _ := os.ReadFile(path)
			want := tt.want
			if want == "" {
				want = tt.in
			}
			if string(got) != want {
				t.Errorf("file = %q, want %q", got, want)
			}
			if removed != (tt.want != "") {
				t.Errorf("removed = %v", removed)
			}
		})
	}
}

// TestRefreshMemberMatchesParse pins isRefreshMember to how Parse (through
// encoding/json) matches member names to the OAuthRefreshToken field.
func TestRefreshMemberMatchesParse(t *testing.T) {
	t.Parallel()
	for _, name := range []string{
		"OAuthRefreshToken", "oauthrefreshtoken", "OAUTHREFRESHTOKEN", "oAuThReFrEsHtOkEn",
		"OAuthRefre\u017fhToken", "OAuthRefreshTo\u212aen", "OAuthRefresh\u0054oken",
		"OAuthRefreshTokens", "OAuthRefreshToke", "OAuth_RefreshToken", " OAuthRefreshToken",
		"\uff2fAuthRefreshToken", "OAuthIdToken", "",
	} {
		data := []byte(`{"User-1":{"` + name + `":"rt-000000001"}}`)
		var key map[string]map[string]string
		if err := json.Unmarshal(data, &key); err != nil {
			t.Fatal(err)
		}
		for k := range key["User-1"] {
			f, err := Parse("x", data)
			if err != nil {
				t.Fatal(err)
			}
			if parsed := f.Entries[0].RefreshToken != ""; parsed != isRefreshMember(k) {
				t.Errorf("member %q: Parse reads it as the refresh token: %v, isRefreshMember: %v", k, parsed, !parsed)
			}
		}
	}
}

func TestHandOffWritesThroughSymlink(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("symlinks need privileges on Windows")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "dotfiles", FileName)
	os.MkdirAll(filepath.Dir(real), 0o700)
	os.WriteFile(real, []byte(`{"User-1":{"OAuthRefreshToken":"rt-000000001","x":1}}`), 0o600)
	link := filepath.Join(dir, FileName)
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if _, err := HandOff(link, "User-1", "rt-000000001"); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Lstat(link); err != nil || st.Mode()&fs.ModeSymlink == 0 {
		t.Fatalf("the symlink was replaced: %v %v", st, err)
	}
	got, _ := os.ReadFile(real)
	if want := `{"User-1":{"x":1}}`; string(got) != want {
		t.Errorf("file = %s, want %s", got, want)
	}
}

func TestForgetCaseVariants(t *testing.T) {
	t.Parallel()
	in := `{"User-1":{"oauthRefreshToken":"rt-000000001","a":1},"User[eu]-1":{"OAuthRefreshToken":"rt-other"},"User-2":{"OAUTHREFRESHTOKEN":"rt-older","b":2,"OAuthRefreshToken":"rt-000000001"},"User-3":{"OAuthRefreshToken":"rt-000000001","oauthrefreshtoken":"rt-other"}}`
	want := `{"User-1":{"a":1},"User[eu]-1":{"OAuthRefreshToken":"rt-other"},"User-2":{"b":2},"User-3":{"OAuthRefreshToken":"rt-000000001","oauthrefreshtoken":"rt-other"}}`
	path := filepath.Join(t.TempDir(), LegacyFileName)
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := Forget(path, "rt-000000001")
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"User-1", "User-2"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("Forget removed %v, want %v", keys, want)
	}
	if got, _ := os.ReadFile(path); string(got) != want {
		t.Errorf("file = %s\nwant   %s", got, want)
	}
}

func TestForgetMissingFile(t *testing.T) {
	t.Parallel()
	keys, err := Forget(filepath.Join(t.TempDir(), "nope.json"), "rt")
	if err != nil || keys != nil {
		t.Errorf("Forget = %v, %v; want nil, nil", keys, err)
	}
}

func TestLocate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		env  map[string]string
		want Paths
		err  bool
	}{
		{"home", map[string]string{"HOME": "/h"}, Paths{Canonical: filepath.Join("/h", ".amplitude", "wizard", FileName), Legacy: filepath.Join("/h", LegacyFileName)}, false},
		{"cache dir", map[string]string{"HOME": "/h", CacheDirEnv: "/c"}, Paths{Canonical: filepath.Join("/c", FileName), Legacy: filepath.Join("/h", LegacyFileName)}, false},
		{"cache dir only", map[string]string{CacheDirEnv: "/c"}, Paths{Canonical: filepath.Join("/c", FileName)}, false},
		{"nothing", map[string]string{}, Paths{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Locate(func(k string) string { return tt.env[k] })
			if (err != nil) != tt.err {
				t.Fatalf("err = %v", err)
			}
			if got != tt.want {
				t.Errorf("Locate = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key, zone, id string
		ok            bool
	}{
		{"User-123", "us", "123", true},
		{"User[eu]-abc-def", "eu", "abc-def", true},
		{"User[EU]-1", "eu", "1", true},
		{"User-", "", "", false},
		{"User[eu]", "", "", false},
		{"UserPreferences", "", "", false},
		{"user-1", "", "", false},
	}
	for _, tt := range tests {
		zone, id, ok := parseKey(tt.key)
		if zone != tt.zone || id != tt.id || ok != tt.ok {
			t.Errorf("parseKey(%q) = %q, %q, %v; want %q, %q, %v", tt.key, zone, id, ok, tt.zone, tt.id, tt.ok)
		}
	}
}

func TestUnreadableFile(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" || os.Getuid() == 0 {
		t.Skip("needs a non-root Unix user")
	}
	path := filepath.Join(t.TempDir(), FileName)
	os.WriteFile(path, []byte(`{}`), 0o000)
	if _, err := Load(path); KindOf(err) != KindUnreadable {
		t.Errorf("Load error = %v, want unreadable", err)
	}
}

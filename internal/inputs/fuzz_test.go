package inputs

import (
	"net"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// FuzzParseTime: an accepted time is UTC and survives a round trip through
// its RFC 3339 form.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2026-01-02T15:04:05Z", "2026-01-02T15:04:05.000Z", "2026-01-02T15:04:05+02:00",
		"2026-01-02T15:04:05.123456789-07:00", "2026-01-02T15:04Z", "2026-01-02T15:04+01:00",
		"2026-01-02T15:04:05+0200", " 2026-01-02T15:04:05Z\n", "2026-01-02T15:04:05", "2026-01-02",
		"next tuesday", "", "9999-12-31T23:59:59Z", "0000-01-01T00:00:00Z", "2026-02-30T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := ParseTime(s)
		if err != nil {
			if !tm.IsZero() {
				t.Fatalf("error with a time: %v", tm)
			}
			return
		}
		if tm.Location() != time.UTC {
			t.Fatalf("%q: location %v, want UTC", s, tm.Location())
		}
		again, err := ParseTime(tm.Format(time.RFC3339Nano))
		if err != nil || !again.Equal(tm) {
			t.Fatalf("%q -> %v -> %v, %v", s, tm, again, err)
		}
	})
}

// FuzzParseDuration: an accepted duration is within [1s, 168h] and survives
// a round trip through its String form.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"20m", "1h30m", "168h", "168h0m0.000000001s", "0s", "-5m", "1ns", " 45s ", "twenty", "", "1e3s", "9223372036s", ".5h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("error with a duration: %v", d)
			}
			return
		}
		if d < time.Second || d > 7*24*time.Hour {
			t.Fatalf("%q -> %v, outside [1s, 168h]", s, d)
		}
		if again, err := ParseDuration(d.String()); err != nil || again != d {
			t.Fatalf("%q -> %v -> %v, %v", s, d, again, err)
		}
	})
}

// FuzzCheckURL: an accepted URL is absolute, https or http to a loopback
// host (checked here independently), without credentials, query or
// fragment, and the host a client would dial is the one checked.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://auth.amplitude.com/oauth2/token", "https://auth.eu.amplitude.com/oauth2/token",
		"http://127.0.0.1:4444/oauth2/token", "http://[::1]:8080/", "http://localhost/", "http://LOCALHOST:1/",
		"http://127.1.2.3/", "http://auth.example.com/oauth2/token", "http://127.0.0.1.nip.io/",
		"http://localhost.example.com/", "http://0x7f.0.0.1/", "http://2130706433/", "http://[::ffff:127.0.0.1]/",
		"http://[::ffff:8.8.8.8]/", "http://0.0.0.0/", "https://user:pass@auth.example.com/", "https://auth.example.com/?a=b",
		"https://auth.example.com/#x", "ftp://auth.example.com/", "//auth.example.com/", "https:///path", "HTTP://127.0.0.1/",
		"http://127.0.0.1@evil.example/", "http://evil.example\\@127.0.0.1/", "http://127.0.0.1%2f@evil/", "https://api.github.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		if err := CheckURL(raw); err != nil {
			return
		}
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			t.Fatalf("accepted %q, which is not an absolute URL (%v)", raw, err)
		}
		// (A bare trailing "?" is an empty query: harmless, and allowed.)
		if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			t.Fatalf("accepted %q with credentials, a query or a fragment", raw)
		}
		switch u.Scheme {
		case "https":
		case "http":
			host := u.Hostname()
			ip := net.ParseIP(host)
			if !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("accepted http to the non-loopback host %q: %q", host, raw)
			}
		default:
			t.Fatalf("accepted scheme %q: %q", u.Scheme, raw)
		}
		// What the HTTP client will dial is what was checked.
		if r, err := url.Parse(u.String()); err != nil || r.Host != u.Host || r.Scheme != u.Scheme {
			t.Fatalf("%q does not re-parse to the same host: %v %v", raw, r, err)
		}
	})
}

var secretNameRule = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// FuzzCheckSecretName: an accepted name follows GitHub's rules (letters,
// digits, underscores; not starting with a digit or GITHUB_), and every
// name that follows them is accepted.
func FuzzCheckSecretName(f *testing.F) {
	for _, s := range []string{"WIZARD_OAUTH_TOKEN", "wizard_refresh_token", "_X", "1ABC", "GITHUB_TOKEN", "github_x", "GITHUB", "A-B", "A B", "", "É", "ǅ", "A\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		ok := secretNameRule.MatchString(name) && !strings.HasPrefix(strings.ToUpper(name), "GITHUB_")
		if err := CheckSecretName(name); (err == nil) != ok {
			t.Fatalf("CheckSecretName(%q) = %v, want accepted %v", name, err, ok)
		}
	})
}

// FuzzSplitRepo: an accepted owner/name has a valid owner login and
// repository name, and joining them gives back the trimmed input.
func FuzzSplitRepo(f *testing.F) {
	for _, s := range []string{"amplitude/wizard", " amplitude/wizard\n", "a/b.c-d_e", "amplitude", "amplitude/", "/wizard", "a/b/c", "a/..", "a/.", "-a/b", "a-/b", "a/b c", "amplitude/wizard\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		owner, name, err := SplitRepo(s)
		if err != nil {
			if owner != "" || name != "" {
				t.Fatalf("error with a result: %q %q", owner, name)
			}
			return
		}
		if owner+"/"+name != strings.TrimSpace(s) {
			t.Fatalf("%q -> %q / %q", s, owner, name)
		}
		if strings.ContainsAny(owner+name, "/\\ \t\r\n\x00") || name == "." || name == ".." || len(owner) > 39 || len(name) > 100 {
			t.Fatalf("%q accepted as %q / %q", s, owner, name)
		}
		if strings.HasPrefix(owner, "-") {
			t.Fatalf("owner %q starts with a hyphen", owner)
		}
	})
}

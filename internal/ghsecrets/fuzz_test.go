package ghsecrets

import (
	"encoding/base64"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// sealedB64 is a sealed box's size (48 bytes of overhead plus a value).
var sealedB64 = base64.StdEncoding.EncodeToString(make([]byte, 48+8))

func sampleRecord() *Record {
	return NewRecord(Target{Owner: "amplitude", Repo: "wizard"}, "3380204578043523366", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), []Sealed{
		{Name: "WIZARD_REFRESH_TOKEN", EncryptedValue: sealedB64},
		{Name: "WIZARD_OAUTH_TOKEN", EncryptedValue: sealedB64},
	})
}

// FuzzParseRecord: whatever the text, a record that parses is valid (a
// version 1 record with a key id, one target, and secrets that are sealed
// boxes under GitHub's names), and encoding it again gives a record that
// parses to the same.
func FuzzParseRecord(f *testing.F) {
	rec := sampleRecord().Encode()
	org := NewRecord(Target{Org: "amplitude"}, "k1", time.Unix(0, 0), []Sealed{{Name: "X", EncryptedValue: sealedB64, Visibility: "selected", SelectedRepositoryIDs: []int64{1, 2}}}).Encode()
	for _, s := range []string{
		rec,
		"RECOVERY RECORD: " + rec + "\n",
		"```sh\ngo run …/cmd/bootstrap@latest restore '" + rec + "'\n```",
		org,
		rec + " " + org,
		RecoveryPrefix,
		RecoveryPrefix + "e30",                // {}
		RecoveryPrefix + "eyJ2IjoyfQ",         // {"v":2}
		RecoveryPrefix + "eyJ2IjoxLCJ4IjoxfQ", // unknown field
		RecoveryPrefix + "eyJ2IjoxLCJrZXlfaWQiOiJrIn0", // no secrets
		"wizard-recovery-v2.e30",
		"",
	} {
		f.Add(s, []byte(nil))
	}
	for _, p := range []string{
		`{"v":1,"owner":"amplitude","repo":"wizard","key_id":"k","created":"2026-01-02T03:04:05Z","secrets":[{"name":"WIZARD_REFRESH_TOKEN","encrypted_value":"` + sealedB64 + `"}]}`,
		`{"v":1,"org":"amplitude","key_id":"k","created":"2026-01-02T03:04:05+05:30","secrets":[{"name":"X","encrypted_value":"` + sealedB64 + `","visibility":"selected","selected_repository_ids":[1]}]}`,
		`{"v":1,"org":"amplitude","owner":"amplitude","key_id":"k","secrets":[{"name":"X","encrypted_value":"` + sealedB64 + `"}]}`,
		`{"v":1,"owner":"a","repo":"b","key_id":"k","secrets":[{"name":"X","encrypted_value":"c2hvcnQ="}]}`,
		`{"v":1,"owner":"a","repo":"b","key_id":"k","secrets":[{"name":"X","encrypted_value":"` + sealedB64 + `"}]} trailing`,
	} {
		f.Add("", []byte(p))
	}
	nameRule := regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	check := func(t *testing.T, s string) {
		t.Helper()
		r, err := ParseRecord(s)
		if err != nil {
			if r != nil {
				t.Fatal("record and error")
			}
			if !strings.HasPrefix(err.Error(), "failed to parse recovery record") {
				t.Fatalf("error %q", err)
			}
			return
		}
		if !strings.Contains(s, RecoveryPrefix) {
			t.Fatalf("parsed a record from text without %s", RecoveryPrefix)
		}
		if r.Version != 1 || r.KeyID == "" || len(r.Secrets) == 0 {
			t.Fatalf("invalid record parsed: %+v", r)
		}
		tg := r.Target()
		if tg.Org == "" && (tg.Owner == "" || tg.Repo == "") || tg.Org != "" && (tg.Owner != "" || tg.Environment != "") {
			t.Fatalf("record without exactly one target: %+v", tg)
		}
		for _, sec := range r.Secrets {
			raw, err := base64.StdEncoding.DecodeString(sec.EncryptedValue)
			if !nameRule.MatchString(sec.Name) || err != nil || len(raw) < 48 {
				t.Fatalf("secret %q with a bad name or not a sealed box", sec.Name)
			}
		}
		again, err := ParseRecord(r.Encode())
		if err != nil {
			t.Fatalf("re-encoded record does not parse: %v", err)
		}
		if !sameRecord(r, again) {
			t.Fatalf("round trip changed the record:\n%+v\n%+v", r, again)
		}
	}
	f.Fuzz(func(t *testing.T, text string, payload []byte) {
		// The text as found in a log, and a well-formed line carrying
		// payload as its JSON, so the fuzzer reaches the decoder.
		check(t, text)
		check(t, RecoveryPrefix+base64.RawURLEncoding.EncodeToString(payload))
	})
}

// FuzzRecordRoundTrip: a record built from any fields parses back to the
// same record exactly when it is valid, also from inside a log line or a
// quoted shell command.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add("amplitude", "wizard", "", "", "3380204578043523366", int64(1767323045), "WIZARD_REFRESH_TOKEN", []byte("0123456789abcdef0123456789abcdef0123456789abcdef-value"), "", int64(0))
	f.Add("", "", "", "amplitude", "k", int64(0), "X", []byte("0123456789abcdef0123456789abcdef0123456789abcdef"), "selected", int64(42))
	f.Add("amplitude", "wizard", "production", "", "k", int64(-1), "1BAD", []byte("short"), "", int64(0))
	f.Add("amplitude", "", "", "amplitude", "", int64(1), "", []byte{}, "all", int64(0))
	f.Fuzz(func(t *testing.T, owner, repo, env, org, keyID string, unix int64, name string, cipher []byte, visibility string, repoID int64) {
		for _, s := range []string{owner, repo, env, org, keyID, name, visibility} {
			if !utf8.ValidString(s) {
				t.Skip("JSON cannot carry invalid UTF-8; every field comes from validated inputs or GitHub")
			}
		}
		sec := Sealed{Name: name, EncryptedValue: base64.StdEncoding.EncodeToString(cipher), Visibility: visibility}
		if repoID != 0 {
			sec.SelectedRepositoryIDs = []int64{repoID}
		}
		// Times as GitHub and JSON carry them: seconds within years 1..9999.
		created := time.Unix(unix%253402300799, 0)
		if created.Year() < 1 {
			created = time.Unix(0, 0)
		}
		rec := NewRecord(Target{Owner: owner, Repo: repo, Environment: env, Org: org}, keyID, created, []Sealed{sec})
		valid := keyID != "" &&
			(org != "" || owner != "" && repo != "") &&
			(org == "" || owner == "" && env == "") &&
			regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(name) &&
			len(cipher) >= 48
		enc := rec.Encode()
		for _, text := range []string{enc, "RECOVERY RECORD: " + enc + "\n", "restore '" + enc + "'\n```"} {
			got, err := ParseRecord(text)
			if (err == nil) != valid {
				t.Fatalf("valid %v, parse error %v (record %+v)", valid, err, rec)
			}
			if err == nil && !sameRecord(rec, got) {
				t.Fatalf("round trip changed the record:\n%+v\n%+v", rec, got)
			}
		}
	})
}

func sameRecord(a, b *Record) bool {
	return a.Version == b.Version && a.Owner == b.Owner && a.Repo == b.Repo && a.Environment == b.Environment &&
		a.Org == b.Org && a.KeyID == b.KeyID && a.Created.Equal(b.Created) &&
		slices.EqualFunc(a.Secrets, b.Secrets, func(x, y Sealed) bool {
			return x.Name == y.Name && x.EncryptedValue == y.EncryptedValue && x.Visibility == y.Visibility &&
				slices.Equal(x.SelectedRepositoryIDs, y.SelectedRepositoryIDs)
		})
}

package bootstrap

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
)

// record seals values for scope's current key, as a failed run would have.
func (w *world) record(scope githubemu.Scope, t ghsecrets.Target, created time.Time, values ...[2]string) string {
	w.t.Helper()
	id, b64 := w.gh.PublicKey(scope)
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		w.t.Fatal(err)
	}
	k := ghsecrets.PublicKey{ID: id}
	copy(k.Key[:], raw)
	var sealed []ghsecrets.Sealed
	for _, v := range values {
		enc, err := ghsecrets.Seal(nil, k, v[1])
		if err != nil {
			w.t.Fatal(err)
		}
		sealed = append(sealed, ghsecrets.Sealed{Name: v[0], EncryptedValue: enc})
	}
	return ghsecrets.NewRecord(t, id, created, sealed).Encode()
}

func TestRestore(t *testing.T) {
	t.Parallel()
	const newRT, newAT = "ory_rt_rotated-in-ci", "ory_at_rotated-in-ci"
	repoT := ghsecrets.Target{Owner: "amplitude", Repo: "wizard"}
	envT := ghsecrets.Target{Owner: "amplitude", Repo: "wizard", Environment: "ci"}
	tests := []struct {
		name string
		env  bool
		// input builds the arguments and stdin from the record.
		input    func(rec string) ([]string, string)
		setup    func(w *world)
		wantCode Code
		wantSaid string
	}{
		{name: "argument", input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }},
		{name: "pasted log line in pieces", input: func(rec string) ([]string, string) {
			return []string{"2026-06-01T11:23:45.1Z", "RECOVERY", "RECORD:", rec, "--yes"}, ""
		}},
		{name: "stdin, then the confirmation", input: func(rec string) ([]string, string) {
			return nil, "Run failed\n##[info]RECOVERY RECORD: " + rec + "\ny\n"
		}},
		{name: "stdin with a dash", input: func(rec string) ([]string, string) { return []string{"-", "-y"}, rec + "\n" }},
		{name: "environment", env: true, input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }},
		{name: "declined", input: func(rec string) ([]string, string) { return []string{rec}, "n\n" }, wantCode: CodeNotConfirmed},
		{name: "dry run", input: func(rec string) ([]string, string) { return []string{"--dry-run", rec}, "" }, wantSaid: "Dry run"},
		{name: "key changed", setup: func(w *world) { w.gh.RotateKey(repoScope) },
			input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }, wantCode: CodeKeyChanged, wantSaid: "can no longer open the record"},
		{name: "secret newer than the record", setup: func(w *world) {
			w.gh.SetSecret(repoScope, "WIZARD_REFRESH_TOKEN", "ory_rt_newer", w.clock.Now().Add(2*time.Hour))
		}, input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }, wantCode: CodeStaleRecord, wantSaid: "newer value"},
		{name: "secret newer than the record, forced", setup: func(w *world) {
			w.gh.SetSecret(repoScope, "WIZARD_REFRESH_TOKEN", "ory_rt_newer", w.clock.Now().Add(2*time.Hour))
		}, input: func(rec string) ([]string, string) { return []string{"--yes", "--force", rec}, "" }, wantSaid: "restoring anyway"},
		{name: "secret older than the record", setup: func(w *world) {
			w.gh.SetSecret(repoScope, "WIZARD_REFRESH_TOKEN", "ory_rt_older", w.clock.Now().Add(-time.Hour))
		}, input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }},
		{name: "refresh token write fails", setup: func(w *world) {
			w.gh.Inject(githubemu.ServerError(githubemu.RoutePutRepoSecret, 502).ForName("WIZARD_REFRESH_TOKEN"))
		}, input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }, wantCode: CodeNotStored, wantSaid: "run the same restore again"},
		{name: "other write fails", setup: func(w *world) {
			w.gh.Inject(githubemu.ServerError(githubemu.RoutePutRepoSecret, 502).ForName("WIZARD_OAUTH_TOKEN"))
		}, input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }, wantCode: CodePartial},
		{name: "not a record", input: func(string) ([]string, string) { return []string{"--yes", "wizard-recovery-v1.bm90LWpzb24"}, "" }, wantCode: CodeBadInput, wantSaid: "not a recovery record"},
		{name: "no record on stdin", input: func(string) ([]string, string) { return []string{"--yes"}, "hello\n" }, wantCode: CodeBadInput, wantSaid: "no wizard-recovery-v1 record"},
		{name: "empty stdin", input: func(string) ([]string, string) { return []string{"--yes"}, "" }, wantCode: CodeBadInput, wantSaid: "standard input is empty"},
		{name: "no GitHub token", setup: func(w *world) { delete(w.env, "GH_TOKEN") },
			input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }, wantCode: CodeBadInput, wantSaid: "GH_TOKEN"},
		{name: "revoked GitHub token", setup: func(w *world) { w.gh.RemoveToken(testToken) },
			input: func(rec string) ([]string, string) { return []string{"--yes", rec}, "" }, wantCode: CodeGitHubAuth},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			scope, target := repoScope, repoT
			if tt.env {
				scope, target = githubemu.EnvScope(testRepo, "ci"), envT
			}
			rec := w.record(scope, target, w.clock.Now(), [2]string{"WIZARD_REFRESH_TOKEN", newRT}, [2]string{"WIZARD_OAUTH_TOKEN", newAT})
			w.clock.Set(w.clock.Now().Add(10 * time.Minute)) // the user notices a bit later
			if tt.setup != nil {
				tt.setup(w)
			}
			args, stdin := tt.input(rec)
			r := w.run(stdin, append([]string{"restore"}, args...)...)
			if r.code != int(tt.wantCode) {
				t.Fatalf("exit %d, want %d:\n%s", r.code, tt.wantCode, r.out())
			}
			if tt.wantSaid != "" && !strings.Contains(r.out(), tt.wantSaid) {
				t.Errorf("output lacks %q:\n%s", tt.wantSaid, r.out())
			}
			restored := w.secret(scope, "WIZARD_REFRESH_TOKEN") == newRT
			if wantRestored := tt.wantCode == 0 && tt.wantSaid != "Dry run" || tt.wantCode == CodePartial; restored != wantRestored {
				t.Errorf("refresh token restored = %v, want %v", restored, wantRestored)
			}
			if tt.wantCode == 0 && tt.wantSaid != "Dry run" {
				if got := w.secret(scope, "WIZARD_OAUTH_TOKEN"); got != newAT {
					t.Errorf("access token = %q, want %q", got, newAT)
				}
				// Restored as it was sealed: the record's key id.
				for _, req := range w.gh.Requests() {
					if req.Method == "PUT" && req.KeyID == "" {
						t.Errorf("PUT %s without a key id", req.Name)
					}
				}
			}
			if tt.wantCode == CodeKeyChanged || tt.wantCode == CodeStaleRecord || tt.wantCode == CodeNotConfirmed || tt.wantSaid == "Dry run" {
				if got := w.writes(); len(got) != 0 {
					t.Errorf("writes = %q, want none", got)
				}
			}
			noSecrets(t, r.out(), newRT, newAT, testToken)
		})
	}
}

package ghsecrets_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
)

const varRepo = "amplitude/wizard"

func newVarEnv(t *testing.T, perms githubemu.Permissions) (*githubemu.Emulator, *ghsecrets.Client) {
	t.Helper()
	emu := githubemu.New()
	emu.AddRepo(varRepo, 0)
	emu.AddEnvironment(varRepo, "ci")
	emu.AddToken("pat-1", perms)
	ts := httptest.NewServer(emu)
	t.Cleanup(ts.Close)
	c, err := ghsecrets.New(ghsecrets.Options{APIURL: ts.URL, Token: "pat-1", WaitMin: time.Millisecond, WaitMax: 2 * time.Millisecond, MaxAttempts: 3, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return emu, c
}

func routes(emu *githubemu.Emulator) string {
	var out []string
	for _, r := range emu.Requests() {
		out = append(out, r.Route)
	}
	return strings.Join(out, ", ")
}

func TestSetVariable(t *testing.T) {
	t.Parallel()
	repoT := ghsecrets.Target{Owner: "amplitude", Repo: "wizard"}
	envT := ghsecrets.Target{Owner: "amplitude", Repo: "wizard", Environment: "ci"}
	tests := []struct {
		name    string
		target  ghsecrets.Target
		scope   githubemu.Scope
		seed    bool // the variable exists
		exists  bool // what the caller believes
		fault   *githubemu.Fault
		created bool
		routes  string
	}{
		{name: "create", target: repoT, scope: githubemu.RepoScope(varRepo),
			created: true, routes: "POST repo-variable"},
		{name: "update", target: repoT, scope: githubemu.RepoScope(varRepo), seed: true, exists: true,
			routes: "PATCH repo-variable"},
		{name: "create finds it exists (409), then updates", target: repoT, scope: githubemu.RepoScope(varRepo), seed: true,
			routes: "POST repo-variable, PATCH repo-variable"},
		{name: "update finds it gone (404), then creates", target: repoT, scope: githubemu.RepoScope(varRepo), exists: true,
			created: true, routes: "PATCH repo-variable, POST repo-variable"},
		{name: "create whose answer was lost is retried, then updated", target: repoT, scope: githubemu.RepoScope(varRepo),
			fault:  ptr(withCommit(githubemu.ServerError(githubemu.RouteCreateRepoVariable, 502).FirstN(1))),
			routes: "POST repo-variable, POST repo-variable, PATCH repo-variable"},
		{name: "environment create", target: envT, scope: githubemu.EnvScope(varRepo, "ci"),
			created: true, routes: "POST env-variable"},
		{name: "environment update", target: envT, scope: githubemu.EnvScope(varRepo, "ci"), seed: true, exists: true,
			routes: "PATCH env-variable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, c := newVarEnv(t, githubemu.AllPermissions())
			if tt.seed {
				emu.SetVariable(tt.scope, "WIZARD_ZONE", "us")
			}
			if tt.fault != nil {
				emu.Inject(*tt.fault)
			}
			created, err := c.SetVariable(context.Background(), tt.target, "WIZARD_ZONE", "eu", tt.exists)
			if err != nil {
				t.Fatalf("SetVariable: %v", err)
			}
			if created != tt.created {
				t.Errorf("created = %v, want %v", created, tt.created)
			}
			if got, ok := emu.Variable(tt.scope, "WIZARD_ZONE"); !ok || got != "eu" {
				t.Errorf("variable = %q, %v; want eu", got, ok)
			}
			if got := routes(emu); got != tt.routes {
				t.Errorf("requests = %s, want %s", got, tt.routes)
			}
		})
	}
}

func withCommit(f githubemu.Fault) githubemu.Fault { f.Commit = true; return f }

func ptr[T any](v T) *T { return &v }

func TestVariable(t *testing.T) {
	t.Parallel()
	repoT := ghsecrets.Target{Owner: "amplitude", Repo: "wizard"}
	readOnlySecrets := githubemu.Permissions{Repos: map[string]githubemu.RepoPermissions{varRepo: {Metadata: true, SecretsWrite: true}}}
	tests := []struct {
		name     string
		perms    githubemu.Permissions
		target   ghsecrets.Target
		seed     bool
		want     *ghsecrets.Variable
		wantKind ghsecrets.ErrorKind
		wantErr  bool
	}{
		{name: "exists", perms: githubemu.AllPermissions(), target: repoT, seed: true, want: &ghsecrets.Variable{Name: "WIZARD_ZONE", Value: "us"}},
		{name: "missing", perms: githubemu.AllPermissions(), target: repoT},
		{name: "no variables permission", perms: readOnlySecrets, target: repoT, wantKind: ghsecrets.KindForbidden, wantErr: true},
		{name: "no such repository", perms: githubemu.AllPermissions(), target: ghsecrets.Target{Owner: "amplitude", Repo: "nope"}},
		{name: "organization", perms: githubemu.AllPermissions(), target: ghsecrets.Target{Org: "amplitude"}, wantKind: ghsecrets.KindOther, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu, c := newVarEnv(t, tt.perms)
			if tt.seed {
				emu.SetVariable(githubemu.RepoScope(varRepo), "WIZARD_ZONE", "us")
			}
			got, err := c.Variable(context.Background(), tt.target, "WIZARD_ZONE")
			if (err != nil) != tt.wantErr {
				t.Fatalf("Variable error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				if got := ghsecrets.KindOf(err); got != tt.wantKind {
					t.Errorf("kind = %v, want %v", got, tt.wantKind)
				}
				return
			}
			if (got == nil) != (tt.want == nil) {
				t.Fatalf("Variable = %+v, want %+v", got, tt.want)
			}
			if got != nil && (got.Name != tt.want.Name || got.Value != tt.want.Value || got.UpdatedAt.IsZero()) {
				t.Errorf("Variable = %+v, want %+v with an update time", got, tt.want)
			}
		})
	}
}

func TestSetVariableErrors(t *testing.T) {
	t.Parallel()
	repoT := ghsecrets.Target{Owner: "amplitude", Repo: "wizard"}
	noVarWrite := githubemu.Permissions{Repos: map[string]githubemu.RepoPermissions{varRepo: {Metadata: true, SecretsWrite: true, VariablesRead: true}}}
	_, c := newVarEnv(t, noVarWrite)
	_, err := c.SetVariable(context.Background(), repoT, "WIZARD_ZONE", "eu", false)
	var ge *ghsecrets.Error
	if !errors.As(err, &ge) || ge.Kind != ghsecrets.KindForbidden || ge.Status != http.StatusForbidden {
		t.Fatalf("SetVariable error = %v, want a 403", err)
	}
	if !strings.Contains(err.Error(), "create variable WIZARD_ZONE") {
		t.Errorf("error %q does not say what failed", err)
	}
	if _, err := c.SetVariable(context.Background(), ghsecrets.Target{Org: "amplitude"}, "WIZARD_ZONE", "eu", false); err == nil {
		t.Error("SetVariable accepted an organization target")
	}
}

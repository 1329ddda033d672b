// Package matrix is the fault matrix: every case runs the real action
// binary as a process against the emulators (with faults injected) and
// records the failure class and exit code, whether Hydra was called, whether
// the stored refresh token still works afterwards, and how many times a
// token value appeared in any output stream. The end-to-end tests run every
// case; cmd/faultmatrix prints the table.
package matrix

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
	"github.com/amplitude/wizard-oauth-refresh/internal/run"
)

// Case is one row of the matrix.
type Case struct {
	Name  string
	Group string // input, hydra, github, run
	Stack stack.Options
	// Setup injects faults and edits the inputs before the run.
	Setup func(s *stack.Stack, in map[string]string)
	// Env adds environment variables (e.g. GITHUB_RUN_ID).
	Env []string

	WantExit int
	// WantHydra: was the token endpoint called at all?
	WantHydra bool
	// WantAlive: does the stored refresh token work afterwards? (For a
	// recovery-record case: after the record is restored.)
	WantAlive bool
	// Unavoidable, set exactly when WantAlive is false, says in a few words
	// why no client could have kept the chain in this case (e.g. Hydra
	// committed the rotation and its answer was lost). A lost chain without
	// it counts as an avoidable loss in the tally.
	Unavoidable string
	// Check makes case-specific assertions.
	Check func(s *stack.Stack, o *stack.Outcome) error
}

// Row is the measured outcome of a case.
type Row struct {
	Case        *Case
	Exit        int
	Class       string
	HydraCalled bool
	ChainAlive  bool
	Leaks       []string
	Problems    []string
	Duration    time.Duration
	Outcome     *stack.Outcome
}

// Pass reports whether the row met every expectation.
func (r *Row) Pass() bool { return len(r.Problems) == 0 }

// fast shortens deadlines so transient cases finish in seconds, not minutes.
// They stay long enough that a loaded machine (race detector, cases in
// parallel) still finishes the recovering cases well inside them.
var fast = map[string]string{"hydra-timeout": "10s", "github-timeout": "10s"}

// Run runs one case with the binary at bin, in dir.
func Run(ctx context.Context, bin, dir string, c *Case) *Row {
	row := &Row{Case: c}
	s, err := stack.Start(c.Stack)
	if err != nil {
		row.Problems = append(row.Problems, err.Error())
		return row
	}
	defer s.Close()
	defer release(s)
	in := s.Inputs()
	for k, v := range fast {
		in[k] = v
	}
	if c.Setup != nil {
		c.Setup(s, in)
	}
	// A case's setup may use the token endpoint itself (another run
	// spending the token): only requests made during the run count.
	before := tokenRequestCount(s)
	o, err := s.Run(ctx, bin, dir, in, c.Env...)
	settle(s)
	if err != nil {
		row.Problems = append(row.Problems, err.Error())
		if o == nil {
			return row
		}
	}
	row.Outcome = o
	row.Exit = o.ExitCode
	row.Duration = o.Duration
	row.Class = "ok"
	if o.ExitCode != 0 {
		row.Class = run.Class(o.ExitCode).String()
	}
	// The emulator logs a request when its handler returns, which for an
	// abandoned request can be just after the binary exits: give it a moment.
	for deadline := time.Now().Add(2 * time.Second); c.WantHydra && tokenRequestCount(s) == before && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	row.HydraCalled = tokenRequestCount(s) > before

	// Case checks first: a recovery case restores the record there.
	if c.Check != nil {
		if err := c.Check(s, o); err != nil {
			row.Problems = append(row.Problems, err.Error())
		}
	}
	row.ChainAlive = alive(s, in)
	// The secret inputs count as secrets too (a case may pass its own), and
	// so does anything a case registered (a password in a URL, say).
	secrets := append(s.Secrets(), in["refresh-token"], in["github-token"])
	row.Leaks = Leaks(append(secrets, extraSecrets(s)...), o)
	if row.Exit != c.WantExit {
		row.Problems = append(row.Problems, fmt.Sprintf("exit %d, want %d", row.Exit, c.WantExit))
	}
	if row.HydraCalled != c.WantHydra {
		row.Problems = append(row.Problems, fmt.Sprintf("hydra called %v, want %v", row.HydraCalled, c.WantHydra))
	}
	if row.ChainAlive != c.WantAlive {
		row.Problems = append(row.Problems, fmt.Sprintf("chain alive %v, want %v", row.ChainAlive, c.WantAlive))
	}
	if len(row.Leaks) > 0 {
		row.Problems = append(row.Problems, fmt.Sprintf("%d leaks: %s", len(row.Leaks), strings.Join(row.Leaks, "; ")))
	}
	if c.WantExit != 0 && !strings.Contains(o.Stdout, "::error title=") {
		row.Problems = append(row.Problems, "no ::error:: annotation")
	}
	// The annotation must never call a lost chain safe.
	if !row.ChainAlive {
		for _, claim := range []string{"Chain untouched", "Chain alive"} {
			if strings.Contains(o.Stdout, claim) {
				row.Problems = append(row.Problems, fmt.Sprintf("the chain is lost but the annotation says %q", claim))
			}
		}
	}
	if (c.Unavoidable != "") == c.WantAlive {
		row.Problems = append(row.Problems, "a case that expects a lost chain must say why it is unavoidable (and only such a case)")
	}
	return row
}

func tokenRequestCount(s *stack.Stack) int {
	n := 0
	for _, r := range s.Hydra.Requests() {
		if r.Endpoint == hydraemu.PathToken {
			n++
		}
	}
	return n
}

// alive reports whether the refresh token stored in the run's target (as
// the inputs name it) works at the token endpoint.
func alive(s *stack.Stack, in map[string]string) bool {
	scope := githubemu.RepoScope(stack.Repo)
	if env := in["environment"]; env != "" {
		scope = githubemu.EnvScope(stack.Repo, env)
	}
	if org := in["organization"]; org != "" {
		scope = githubemu.OrgScope(org)
	}
	name := "WIZARD_REFRESH_TOKEN"
	if n := in["refresh-token-secret"]; n != "" {
		name = strings.ToUpper(n)
	}
	sec, ok := s.GitHub.Secret(scope, name)
	if !ok {
		// Nothing stored there: the repository secret is what CI has.
		sec, _ = s.GitHub.Secret(githubemu.RepoScope(stack.Repo), "WIZARD_REFRESH_TOKEN")
	}
	return s.Hydra.RefreshTokenUsable(sec.Value)
}

// Leaks scans every output stream for every secret: raw, base64 (all four
// alphabets), URL-encoded, and every 8-character substring of the raw
// value. ::add-mask:: lines are the runner's own channel and the masked
// access-token output is meant to hold the access token; both are left out.
func Leaks(secrets []string, o *stack.Outcome) []string {
	var stdout []string
	for _, line := range strings.Split(o.Stdout, "\n") {
		if !strings.HasPrefix(line, "::add-mask::") {
			stdout = append(stdout, line)
		}
	}
	outputs := withoutOutput(o.OutputFile, "access-token")
	streams := map[string]string{
		"stdout":  strings.Join(stdout, "\n"),
		"stderr":  o.Stderr,
		"summary": o.Summary,
		"outputs": outputs,
	}
	var leaks []string
	seen := map[string]bool{}
	for _, sec := range secrets {
		if sec == "" || seen[sec] {
			continue
		}
		seen[sec] = true
		forms := []string{
			base64.StdEncoding.EncodeToString([]byte(sec)),
			base64.RawStdEncoding.EncodeToString([]byte(sec)),
			base64.URLEncoding.EncodeToString([]byte(sec)),
			base64.RawURLEncoding.EncodeToString([]byte(sec)),
			url.QueryEscape(sec),
		}
		// Every 8-character substring. For a JWT (the id token) only its
		// signature is scanned that way: its header and payload are base64
		// of JSON, whose 8-character windows also occur in any other base64
		// JSON, such as a recovery record ("id":"1 encodes alike in both),
		// and they carry claims, not the credential.
		part := sec
		if h, rest, ok := strings.Cut(sec, "."); ok && strings.HasPrefix(h, "eyJ") {
			if _, sig, ok := strings.Cut(rest, "."); ok {
				part = sig
			}
		}
		for i := 0; i+8 <= len(part); i++ {
			forms = append(forms, part[i:i+8])
		}
		for name, text := range streams {
			for _, f := range forms {
				if strings.Contains(text, f) {
					leaks = append(leaks, fmt.Sprintf("%s contains %q… of a secret", name, f[:min(4, len(f))]))
					break
				}
			}
		}
	}
	return leaks
}

// withoutOutput drops one output (name=value, or a name<<DELIM heredoc)
// from a GITHUB_OUTPUT file, keeping every other line.
func withoutOutput(file, name string) string {
	var kept []string
	lines := strings.Split(file, "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.HasPrefix(line, name+"=") {
			continue
		}
		if delim, ok := strings.CutPrefix(line, name+"<<"); ok && delim != "" {
			for i++; i < len(lines) && lines[i] != delim; i++ {
			}
			continue
		}
		kept = append(kept, line)
	}
	return strings.Join(kept, "\n")
}

// Table renders rows as a Markdown table with a closing tally.
func Table(rows []*Row) string {
	var b strings.Builder
	b.WriteString("| # | Group | Case | Class | Exit | Hydra called | Chain alive | Leaks | Result |\n|---|---|---|---|---|---|---|---|---|\n")
	pass, leaks, lost, unavoidable := 0, 0, 0, 0
	for i, r := range rows {
		result := "pass"
		if r.Pass() {
			pass++
		} else {
			result = "FAIL: " + strings.Join(r.Problems, "; ")
		}
		leaks += len(r.Leaks)
		chain := yesNo(r.ChainAlive)
		switch {
		case r.ChainAlive:
		case r.Case.Unavoidable != "":
			unavoidable++
			chain = "no: unavoidable (" + r.Case.Unavoidable + ")"
		default:
			lost++
		}
		esc := strings.NewReplacer("|", "\\|", "\n", " ")
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %d | %s | %s | %d | %s |\n", i+1, r.Case.Group, esc.Replace(r.Case.Name), r.Class, r.Exit, yesNo(r.HydraCalled), esc.Replace(chain), len(r.Leaks), esc.Replace(result))
	}
	fmt.Fprintf(&b, "\n%d cases: %d passed, %d failed; %d leaks; %d avoidable chain losses (%d unavoidable, explained in their rows).\n", len(rows), pass, len(rows)-pass, leaks, lost, unavoidable)
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// TempDir is a scratch directory for one case.
func TempDir(parent, name string) (string, error) {
	return os.MkdirTemp(parent, strings.Map(func(r rune) rune {
		if r == ' ' || r == '/' {
			return '_'
		}
		return r
	}, name)+"-")
}

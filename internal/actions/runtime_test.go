package actions

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newRT(t *testing.T, env map[string]string) (*Runtime, *bytes.Buffer) {
	t.Helper()
	var out bytes.Buffer
	return New(func(k string) string { return env[k] }, &out), &out
}

func TestInputKeepsHyphen(t *testing.T) {
	t.Parallel()
	rt, _ := newRT(t, map[string]string{"INPUT_REFRESH-TOKEN": "  rt  ", "INPUT_REFRESH_TOKEN": "wrong"})
	if got, want := rt.Input("refresh-token"), "rt"; got != want {
		t.Fatalf("Input = %q, want %q", got, want)
	}
}

func TestMaskRedactsEveryForm(t *testing.T) {
	t.Parallel()
	rt, out := newRT(t, nil)
	secret := "ory_rt_abc+/=?&def.ghi"
	rt.Mask(secret)
	out.Reset()
	for _, form := range Forms(secret) {
		rt.Infof("value: %s", form)
		rt.Errorf("title "+form, "err %s", form)
	}
	got := out.String()
	for _, form := range Forms(secret) {
		if strings.Contains(got, form) {
			t.Errorf("log contains form %q:\n%s", form, got)
		}
	}
	if !strings.Contains(got, "value: ***") {
		t.Errorf("log lacks the redaction marker:\n%s", got)
	}
}

func TestMaskIssuesAddMask(t *testing.T) {
	t.Parallel()
	rt, out := newRT(t, nil)
	rt.Mask("tok-123", "", "tok-123")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if got, want := lines[0], "::add-mask::tok-123"; got != want {
		t.Fatalf("first line = %q, want %q", got, want)
	}
	if got, want := len(lines), len(Forms("tok-123")); got != want {
		t.Fatalf("add-mask lines = %d, want %d (one per form, none twice):\n%s", got, want, out)
	}
}

func TestSetOutputRandomDelimiter(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "output")
	rt, _ := newRT(t, map[string]string{"GITHUB_OUTPUT": path})
	// A value that tries to inject a second output with go-githubactions'
	// fixed delimiter.
	evil := "x\n_GitHubActionsFileCommandDelimeter_\ninjected<<EOF\nyes\nEOF"
	if err := rt.SetOutput("expires-at", evil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got := parseOutputs(t, string(b))
	if len(got) != 1 || got["expires-at"] != evil {
		t.Fatalf("outputs = %q, want only expires-at with the value intact", got)
	}
}

// parseOutputs reads a GITHUB_OUTPUT file the way the runner does.
func parseOutputs(t *testing.T, s string) map[string]string {
	t.Helper()
	out := map[string]string{}
	lines := strings.Split(s, "\n")
	for i := 0; i < len(lines); i++ {
		if lines[i] == "" {
			continue
		}
		name, delim, ok := strings.Cut(lines[i], "<<")
		if !ok {
			t.Fatalf("line %q is not a heredoc", lines[i])
		}
		var val []string
		for i++; i < len(lines) && lines[i] != delim; i++ {
			val = append(val, lines[i])
		}
		out[name] = strings.Join(val, "\n")
	}
	return out
}

func TestNoRunnerFilesNoPanic(t *testing.T) {
	t.Parallel()
	rt, out := newRT(t, nil)
	rt.Mask("secret-value")
	if err := rt.SetOutput("access-token", "secret-value"); !errors.Is(err, ErrNoFile) {
		t.Fatalf("SetOutput err = %v, want ErrNoFile", err)
	}
	if err := rt.AddSummary("hello secret-value"); !errors.Is(err, ErrNoFile) {
		t.Fatalf("AddSummary err = %v, want ErrNoFile", err)
	}
	if strings.Contains(strings.ReplaceAll(out.String(), "::add-mask::secret-value", ""), "secret-value") {
		t.Fatalf("secret printed:\n%s", out)
	}
}

func TestSummaryRedacted(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "summary")
	rt, _ := newRT(t, map[string]string{"GITHUB_STEP_SUMMARY": path})
	rt.Mask("s3cr3t-token")
	if err := rt.AddSummary("a s3cr3t-token b"); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if got, want := string(b), "a *** b"; got != want {
		t.Fatalf("summary = %q, want %q", got, want)
	}
}

func TestSetOutputRejectsBadName(t *testing.T) {
	t.Parallel()
	rt, _ := newRT(t, map[string]string{"GITHUB_OUTPUT": filepath.Join(t.TempDir(), "o")})
	if err := rt.SetOutput("a\nb", "v"); err == nil {
		t.Fatal("want error for a name with a newline")
	}
}

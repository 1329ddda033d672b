// Package actions is the one place that talks to the GitHub Actions runtime:
// it reads inputs and environment, registers masks, and writes log lines,
// annotations, outputs and the step summary.
//
// Everything goes through an injected getenv and writer (as in
// github.com/sethvargo/go-githubactions, which it builds on), so tests never
// touch the real environment. Three of that library's sharp edges are
// avoided here: outputs are written with a random heredoc delimiter (its
// fixed one lets a value inject further outputs), a missing GITHUB_OUTPUT or
// GITHUB_STEP_SUMMARY is not a panic, and every line but the ::add-mask::
// commands themselves passes through a redactor, so a masked value never
// reaches the log even where the runner does not mask (a local run, a
// value's encoded forms).
package actions

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/sethvargo/go-githubactions"
)

// Runtime is the Actions runtime of one process.
type Runtime struct {
	getenv func(string) string
	raw    io.Writer // ::add-mask:: only
	log    *redactor
	gha    *githubactions.Action // writes through the redactor
	mask   *githubactions.Action // writes ::add-mask:: raw
}

// New returns a Runtime reading the environment through getenv and writing
// workflow commands and log lines to w.
func New(getenv func(string) string, w io.Writer) *Runtime {
	red := &redactor{w: w}
	return &Runtime{
		getenv: getenv,
		raw:    w,
		log:    red,
		gha:    githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(red)),
		mask:   githubactions.New(githubactions.WithGetenv(getenv), githubactions.WithWriter(w)),
	}
}

// Getenv reads one environment variable.
func (r *Runtime) Getenv(key string) string { return r.getenv(key) }

// Input reads an action input the way the runner passes it to a container:
// INPUT_ + the name upper-cased, spaces as underscores, hyphens kept
// (INPUT_REFRESH-TOKEN). Surrounding whitespace is trimmed.
func (r *Runtime) Input(name string) string { return r.gha.GetInput(name) }

// InActions reports whether the process runs inside a workflow.
func (r *Runtime) InActions() bool { return r.getenv("GITHUB_ACTIONS") == "true" }

// Mask registers values as secrets: the runner hides them from the log, and
// this Runtime replaces them (and their base64 and URL-encoded forms) with
// *** in everything it writes.
func (r *Runtime) Mask(values ...string) {
	for _, v := range values {
		for _, form := range Forms(v) {
			if !r.log.add(form) {
				continue
			}
			for _, line := range strings.Split(form, "\n") {
				if strings.TrimSpace(line) != "" {
					r.mask.AddMask(line)
				}
			}
		}
	}
}

// Forms returns the forms of a secret worth masking: the value itself, its
// standard and URL-safe base64, and its URL (query) encoding.
func Forms(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	forms := []string{v,
		base64.StdEncoding.EncodeToString([]byte(v)),
		base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)),
		base64.RawURLEncoding.EncodeToString([]byte(v)),
		url.QueryEscape(v),
	}
	seen := map[string]bool{}
	out := forms[:0]
	for _, f := range forms {
		if !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}

// Redact replaces every masked value in s with ***.
func (r *Runtime) Redact(s string) string { return r.log.redact(s) }

// Infof writes a plain log line.
func (r *Runtime) Infof(format string, args ...any) { r.gha.Infof("%s", r.sprint(format, args)) }

// Debugf writes a debug line (shown when step debug logging is on).
func (r *Runtime) Debugf(format string, args ...any) { r.gha.Debugf("%s", r.sprint(format, args)) }

// Noticef writes a notice annotation with a title.
func (r *Runtime) Noticef(title, format string, args ...any) {
	r.annotate(title).Noticef("%s", r.sprint(format, args))
}

// Warningf writes a warning annotation with a title.
func (r *Runtime) Warningf(title, format string, args ...any) {
	r.annotate(title).Warningf("%s", r.sprint(format, args))
}

// Errorf writes an error annotation (::error::) with a title.
func (r *Runtime) Errorf(title, format string, args ...any) {
	r.annotate(title).Errorf("%s", r.sprint(format, args))
}

func (r *Runtime) annotate(title string) *githubactions.Action {
	if title == "" {
		return r.gha
	}
	return r.gha.WithFieldsMap(map[string]string{"title": r.Redact(title)})
}

// sprint formats a message and redacts it before the workflow-command
// encoding (which escapes % and newlines) can hide a secret's form from the
// writer's redactor.
func (r *Runtime) sprint(format string, args []any) string {
	return r.Redact(fmt.Sprintf(format, args...))
}

// Group starts a collapsible log group; EndGroup ends it.
func (r *Runtime) Group(title string) { r.gha.Group(title) }

// EndGroup ends the current log group.
func (r *Runtime) EndGroup() { r.gha.EndGroup() }

// ErrNoFile means the runner gave no file for outputs or the summary (a
// local run): nothing was written.
var ErrNoFile = errors.New("no runner file")

// SetOutput writes a step output to GITHUB_OUTPUT with a random delimiter.
// A secret output must have been masked first. Without GITHUB_OUTPUT the
// output is logged (redacted) and ErrNoFile returned.
func (r *Runtime) SetOutput(name, value string) error {
	if name == "" || strings.ContainsAny(name, "\r\n=<") {
		return fmt.Errorf("failed to set output: bad name %q", name)
	}
	path := r.getenv("GITHUB_OUTPUT")
	if path == "" {
		r.Infof("output %s=%s", name, value)
		return ErrNoFile
	}
	delim, err := delimiter(value)
	if err != nil {
		return err
	}
	entry := fmt.Sprintf("%s<<%s\n%s\n%s\n", name, delim, value, delim)
	if err := appendFile(path, entry); err != nil {
		return fmt.Errorf("failed to set output %s: %w", name, err)
	}
	return nil
}

// AddSummary appends Markdown to the step summary (redacted). Without
// GITHUB_STEP_SUMMARY it returns ErrNoFile and writes nothing.
func (r *Runtime) AddSummary(markdown string) error {
	path := r.getenv("GITHUB_STEP_SUMMARY")
	if path == "" {
		return ErrNoFile
	}
	if err := appendFile(path, r.Redact(markdown)); err != nil {
		return fmt.Errorf("failed to write step summary: %w", err)
	}
	return nil
}

// delimiter returns a random heredoc delimiter that value does not contain.
func delimiter(value string) (string, error) {
	for range 8 {
		b := make([]byte, 16)
		if _, err := rand.Read(b); err != nil {
			return "", fmt.Errorf("failed to make output delimiter: %w", err)
		}
		d := "ghadelimiter_" + hex.EncodeToString(b)
		if !strings.Contains(value, d) {
			return d, nil
		}
	}
	return "", errors.New("failed to make output delimiter: value contains every candidate")
}

func appendFile(path, s string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(s); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// redactor writes through to w with every registered secret replaced.
type redactor struct {
	w       io.Writer
	mu      sync.Mutex
	secrets []string
	rep     *strings.Replacer
}

// add registers a secret; it reports false when it was known already.
func (d *redactor) add(s string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, have := range d.secrets {
		if have == s {
			return false
		}
	}
	d.secrets = append(d.secrets, s)
	// Longest first, so a secret containing another is replaced whole.
	sorted := append([]string(nil), d.secrets...)
	sort.Slice(sorted, func(i, j int) bool { return len(sorted[i]) > len(sorted[j]) })
	pairs := make([]string, 0, 2*len(sorted))
	for _, s := range sorted {
		pairs = append(pairs, s, "***")
	}
	d.rep = strings.NewReplacer(pairs...)
	return true
}

func (d *redactor) redact(s string) string {
	d.mu.Lock()
	rep := d.rep
	d.mu.Unlock()
	if rep == nil {
		return s
	}
	return rep.Replace(s)
}

func (d *redactor) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := p
	if d.rep != nil {
		out = []byte(d.rep.Replace(string(p)))
	}
	if _, err := d.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

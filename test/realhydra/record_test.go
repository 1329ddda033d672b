//go:build realhydra

package realhydra

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// recorder collects observations for the final summary (and, if
// REALHYDRA_OBSERVATIONS_JSON names a file, writes them there as JSON).
type recorder struct {
	mu    sync.Mutex
	start time.Time
	Title string `json:"title"`
	// JSONSuffix, if set, is inserted before the extension of
	// REALHYDRA_OBSERVATIONS_JSON (several recorders in one run).
	JSONSuffix string   `json:"-"`
	Version    string   `json:"version"`
	Probes     []*probe `json:"probes"`
}

type probe struct {
	Name     string        `json:"name"`
	Duration time.Duration `json:"duration_ns"`
	Lines    []string      `json:"lines"`
	Failed   bool          `json:"failed"`
	Skipped  bool          `json:"skipped"`
	Ran      bool          `json:"ran"`
}

func newRecorder() *recorder {
	return &recorder{start: time.Now(), Title: "real Hydra behaviour summary"}
}

// run runs fn as subtest name and records its notes and timing.
func (r *recorder) run(t *testing.T, name string, fn func(t *testing.T, p *probe)) {
	t.Helper()
	p := &probe{Name: name}
	r.mu.Lock()
	r.Probes = append(r.Probes, p)
	r.mu.Unlock()
	start := time.Now()
	t.Run(name, func(t *testing.T) {
		p.Ran = true
		defer func() {
			p.Duration = time.Since(start)
			p.Failed = t.Failed()
			p.Skipped = t.Skipped()
		}()
		fn(t, p)
	})
}

// note logs and records one observation line.
func (p *probe) note(t *testing.T, format string, args ...any) {
	t.Helper()
	s := fmt.Sprintf(format, args...)
	p.Lines = append(p.Lines, s)
	t.Log(s)
}

func (r *recorder) summary(t *testing.T) {
	var b strings.Builder
	fmt.Fprintf(&b, "\n==================== %s ====================\n", r.Title)
	fmt.Fprintf(&b, "hydra version:\n  %s\n", strings.ReplaceAll(r.Version, "\n", "\n  "))
	for _, p := range r.Probes {
		status := "ok"
		if !p.Ran {
			fmt.Fprintf(&b, "\n--- %s [not run]\n", p.Name)
			continue
		}
		switch {
		case p.Failed:
			status = "FAILED"
		case p.Skipped:
			status = "SKIPPED"
		}
		fmt.Fprintf(&b, "\n--- %s [%s, %s]\n", p.Name, status, p.Duration.Round(time.Millisecond))
		for _, l := range p.Lines {
			fmt.Fprintf(&b, "  %s\n", strings.ReplaceAll(l, "\n", "\n    "))
		}
	}
	fmt.Fprintf(&b, "\ntotal: %s\n", time.Since(r.start).Round(time.Millisecond))
	fmt.Fprintf(&b, "%s\n", strings.Repeat("=", 42+len(r.Title)))
	t.Log(b.String())
	if path := os.Getenv("REALHYDRA_OBSERVATIONS_JSON"); path != "" {
		if r.JSONSuffix != "" {
			ext := filepath.Ext(path)
			path = strings.TrimSuffix(path, ext) + "-" + r.JSONSuffix + ext
		}
		data, err := json.MarshalIndent(r, "", "  ")
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		if err != nil {
			t.Errorf("write %s: %v", path, err)
		}
	}
}

// describe renders a response: status, the interesting headers and the body
// (token values shortened to prefix…suffix(len) so the shape stays visible).
func describe(r Response) string {
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %d (%s)", r.Status, r.Elapsed.Round(time.Microsecond))
	for _, h := range []string{"Content-Type", "Cache-Control", "Pragma", "Www-Authenticate", "Set-Cookie"} {
		if v := r.Header.Values(h); len(v) > 0 {
			fmt.Fprintf(&b, "\n%s: %s", h, strings.Join(v, ", "))
		}
	}
	fmt.Fprintf(&b, "\nbody: %s", redactBody(r.Body))
	return b.String()
}

func redactBody(body []byte) string {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return strings.TrimSpace(string(body))
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if s, ok := m[k].(string); ok {
			m[k] = short(s)
		}
	}
	out, _ := json.Marshal(m)
	return string(out)
}

func short(tok string) string {
	if len(tok) <= 16 {
		return tok
	}
	return fmt.Sprintf("%s…%s(len %d)", tok[:10], tok[len(tok)-4:], len(tok))
}

// shape lists the JSON keys with their JSON types.
func shape(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+":"+jsonType(m[k]))
	}
	return strings.Join(parts, " ")
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case float64:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return fmt.Sprintf("%T", v)
}

// introspection renders the interesting introspection fields.
func introspection(m map[string]any) string {
	if a, _ := m["active"].(bool); !a {
		out, _ := json.Marshal(m)
		return string(out)
	}
	keep := map[string]any{}
	for _, k := range []string{"active", "token_use", "client_id", "scope", "sub", "exp", "iat", "token_type"} {
		if v, ok := m[k]; ok {
			keep[k] = v
		}
	}
	out, _ := json.Marshal(keep)
	return string(out)
}

// errBody is the decoded error response.
type errBody struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
	Hint        string `json:"error_hint"`
	Debug       string `json:"error_debug"`
}

func decodeErr(t *testing.T, r Response) errBody {
	t.Helper()
	var e errBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("error body is not JSON: %q", r.Body)
	}
	return e
}

func wantStatus(t *testing.T, r Response, status int) {
	t.Helper()
	if r.Status != status {
		t.Fatalf("status %d, want %d; %s", r.Status, status, describe(r))
	}
}

func wantHeader(t *testing.T, r Response, key, want string) {
	t.Helper()
	if got := r.Header.Get(key); got != want {
		t.Errorf("header %s = %q, want %q", key, got, want)
	}
}

var _ = http.StatusOK

package bootstrap

import (
	"io"
	"sort"
	"strings"
	"sync"
)

// redactor is shared by the CLI's writers: every value it knows is replaced
// by *** in everything printed. Nothing should print a token in the first
// place; this is the second line of defense.
type redactor struct {
	mu     sync.Mutex
	values []string
}

// add registers values (short ones are ignored: they would mangle ordinary
// text and are no credentials).
func (r *redactor) add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		if len(v) >= 8 {
			r.values = append(r.values, v)
		}
	}
	// Longest first, so a value containing another is replaced whole.
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
}

func (r *redactor) redact(s string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range r.values {
		s = strings.ReplaceAll(s, v, "***")
	}
	return s
}

// writer returns w behind the redactor. Every write is redacted whole: the
// CLI writes whole messages, so a value is never split across writes.
func (r *redactor) writer(w io.Writer) io.Writer { return &redactWriter{r: r, w: w} }

type redactWriter struct {
	r *redactor
	w io.Writer
}

func (w *redactWriter) Write(p []byte) (int, error) {
	if _, err := io.WriteString(w.w, w.r.redact(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}

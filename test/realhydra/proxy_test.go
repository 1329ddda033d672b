//go:build realhydra

package realhydra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

// tokenProxy is a transparent loopback pass-through in front of Hydra's
// public token endpoint. The action under test is pointed at
// <proxy>/<label>/oauth2/token; the proxy forwards the body and the headers
// that matter byte for byte to <hydra public>/oauth2/token and the answer
// back, and records every exchange per label (one label per action process).
// It adds nothing Hydra looks at (no X-Forwarded-* headers).
//
// It exists to observe, not to change: which attempts each run made (the
// retry question), what Hydra answered each, and every token Hydra minted
// (so the leak scan knows every value that must never be printed). Two
// optional test hooks change timing only: a barrier that releases the first
// request of n runs at the same instant, and a before-forward hook.
type tokenProxy struct {
	url    string
	target string // Hydra's token endpoint
	srv    *httptest.Server
	client *http.Client

	mu        sync.Mutex
	exchanges []*exchange
	minted    []string // every token Hydra handed out, never reset
	attempts  map[string]int
	barrier   *barrier
	// before is called (outside the lock, with a copy) before an exchange
	// is forwarded; note is kept with the exchange, and a non-nil canned
	// response is answered instead: Hydra never sees the request.
	before func(x exchange) (note string, canned *cannedResponse)
}

// exchange is one request through the proxy and Hydra's answer.
type exchange struct {
	Label    string
	Attempt  int // 1 for the first request of this label
	Start    time.Time
	Released time.Time // when it was forwarded (after any barrier)
	End      time.Time
	Status   int
	Body     []byte
	Tokens   *Tokens // on 200
	OAuthErr errBody // on 4xx/5xx
	Blocked  bool    // answered by the test hook, never reached Hydra
	Err      error   // transport error towards Hydra
	Note     string  // set by hooks
}

type cannedResponse struct {
	Status int
	Header map[string]string
	Body   string
}

type barrier struct {
	n       int
	timeout time.Duration
	arrived int
	open    chan struct{}
	once    sync.Once
}

func newTokenProxy(t testing.TB, h *Hydra) *tokenProxy {
	t.Helper()
	p := &tokenProxy{
		target:   h.PublicURL + "/oauth2/token",
		attempts: map[string]int{},
		client: &http.Client{
			Timeout:       30 * time.Second,
			Transport:     &http.Transport{MaxIdleConnsPerHost: 16},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve)) // 127.0.0.1
	p.url = p.srv.URL
	t.Cleanup(func() {
		p.srv.Close()
		p.client.CloseIdleConnections()
	})
	return p
}

// TokenURL is the token-url input for the run called label.
func (p *tokenProxy) TokenURL(label string) string {
	return p.url + "/" + label + "/oauth2/token"
}

// SetBarrier makes the first request of the next n labels wait until all n
// have arrived (or timeout passed), then forwards them at the same instant.
func (p *tokenProxy) SetBarrier(n int, timeout time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.barrier = &barrier{n: n, timeout: timeout, open: make(chan struct{})}
}

// SetBefore installs (or, with nil, removes) the before-forward hook.
func (p *tokenProxy) SetBefore(fn func(x exchange) (string, *cannedResponse)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.before = fn
}

// Reset forgets the recorded exchanges and attempt counters (not the minted
// tokens), and removes the barrier and the hook.
func (p *tokenProxy) Reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.exchanges = nil
	p.attempts = map[string]int{}
	p.barrier = nil
	p.before = nil
}

// Exchanges returns a copy of the exchanges of label ("" for all), oldest first.
func (p *tokenProxy) Exchanges(label string) []exchange {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []exchange
	for _, x := range p.exchanges {
		if label == "" || x.Label == label {
			out = append(out, *x)
		}
	}
	return out
}

// Minted returns every token value Hydra handed out through the proxy
// (Reset does not forget them).
func (p *tokenProxy) Minted() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.minted...)
}

func (p *tokenProxy) serve(w http.ResponseWriter, r *http.Request) {
	label, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodPost || rest != "oauth2/token" {
		http.Error(w, "realhydra proxy: only POST /<label>/oauth2/token", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}

	p.mu.Lock()
	p.attempts[label]++
	x := &exchange{Label: label, Attempt: p.attempts[label], Start: time.Now()}
	p.exchanges = append(p.exchanges, x)
	b := p.barrier
	before := p.before
	if b != nil && x.Attempt == 1 {
		b.arrived++
		if b.arrived >= b.n {
			b.once.Do(func() { close(b.open) })
		}
	} else {
		b = nil
	}
	p.mu.Unlock()

	if b != nil {
		select {
		case <-b.open:
		case <-time.After(b.timeout):
			b.once.Do(func() { close(b.open) })
		case <-r.Context().Done():
			return
		}
	}

	var canned *cannedResponse
	var note string
	if before != nil {
		p.mu.Lock()
		cp := *x
		p.mu.Unlock()
		note, canned = before(cp)
	}
	p.mu.Lock()
	x.Released, x.Note = time.Now(), note
	p.mu.Unlock()

	if canned != nil {
		for k, v := range canned.Header {
			w.Header().Set(k, v)
		}
		w.WriteHeader(canned.Status)
		io.WriteString(w, canned.Body)
		p.mu.Lock()
		x.End, x.Status, x.Body, x.Blocked = time.Now(), canned.Status, []byte(canned.Body), true
		p.mu.Unlock()
		return
	}

	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, p.target, bytes.NewReader(body))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	for _, k := range []string{"Content-Type", "Accept", "User-Agent", "Authorization"} {
		if v := r.Header.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := p.client.Do(req)
	if err != nil {
		p.mu.Lock()
		x.End, x.Err = time.Now(), err
		p.mu.Unlock()
		// Drop the connection: the action sees a transport error, as it
		// would if Hydra had gone away.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, herr := hj.Hijack(); herr == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "realhydra proxy: "+err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	rb, err := io.ReadAll(resp.Body)
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(rb)

	p.mu.Lock()
	defer p.mu.Unlock()
	x.End, x.Status, x.Body, x.Err = time.Now(), resp.StatusCode, rb, err
	if resp.StatusCode == http.StatusOK {
		if tk, terr := (Response{Status: resp.StatusCode, Body: rb}).Tokens(); terr == nil {
			x.Tokens = &tk
			for _, v := range []string{tk.AccessToken, tk.RefreshToken, tk.IDToken} {
				if v != "" {
					p.minted = append(p.minted, v)
				}
			}
		}
	} else {
		_ = json.Unmarshal(rb, &x.OAuthErr)
	}
}

// String renders an exchange compactly, e.g.
// `#2 +512ms 400 invalid_grant "… The refresh token was already used."`.
func (x exchange) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "#%d", x.Attempt)
	switch {
	case x.Blocked:
		fmt.Fprintf(&b, " BLOCKED by the test (answered %d, never reached Hydra)", x.Status)
	case x.Err != nil:
		fmt.Fprintf(&b, " transport error: %v", x.Err)
	case x.Status == http.StatusOK:
		b.WriteString(" 200")
	default:
		fmt.Fprintf(&b, " %d %s %q", x.Status, x.OAuthErr.Error, hintOf(x.OAuthErr.Description))
	}
	if x.Note != "" {
		fmt.Fprintf(&b, " [%s]", x.Note)
	}
	return b.String()
}

// statusKey is a short classification: "200", "500", "400 already used", …
func (x exchange) statusKey() string {
	switch {
	case x.Blocked:
		return "blocked"
	case x.Err != nil:
		return "transport error"
	case x.Status == http.StatusOK:
		return "200"
	case x.OAuthErr.Error == "server_error":
		return fmt.Sprintf("%d server_error", x.Status)
	default:
		h := hintOf(x.OAuthErr.Description)
		h = strings.TrimPrefix(strings.TrimSuffix(h, "."), "The refresh token ")
		return fmt.Sprintf("%d %s (%s)", x.Status, x.OAuthErr.Error, h)
	}
}

// hintOf strips fosite's generic invalid_grant description, leaving the hint.
func hintOf(desc string) string {
	const generic = "The provided authorization grant (e.g., authorization code, resource owner credentials) or refresh token is invalid, expired, revoked, does not match the redirection URI used in the authorization request, or was issued to another client. "
	if strings.HasPrefix(desc, generic) {
		return "<G> " + strings.TrimPrefix(desc, generic)
	}
	return desc
}

// activeErr is a goroutine-safe introspection (no t.Fatal): the proxy hooks
// run on server goroutines.
func (h *Hydra) activeErr(token string) (bool, error) {
	form := url.Values{"token": {token}}
	req, err := http.NewRequest(http.MethodPost, h.AdminURL+"/admin/oauth2/introspect", strings.NewReader(form.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := h.HTTP.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	var m struct {
		Active bool `json:"active"`
	}
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("introspect: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return false, err
	}
	return m.Active, nil
}

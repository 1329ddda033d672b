package hydraemu

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Fault makes requests to one endpoint misbehave. Faults are matched in the
// order they were injected; the first one whose Endpoint matches applies.
//
// Without AfterProcessing a Status, Redirect or DropConnection fault replaces
// the emulator and nothing is consumed; a fault with only Delay slows it down.
// With AfterProcessing the request is processed normally first (a refresh
// token is rotated, a code consumed) and the fault then replaces or delays
// the answer — the "server committed, client never heard" cases.
type Fault struct {
	Endpoint string // a Path* constant; "" matches every endpoint
	Times    int    // apply to the first Times matching requests; 0 = until ClearFaults

	Status      int               // answer with this status instead
	Headers     map[string]string // extra headers for the Status answer, e.g. Retry-After
	Body        string            // body of the Status answer
	ContentType string            // Content-Type of the Status answer
	Redirect    string            // Location for the Status answer (Status defaults to 302)

	// Delay sleeps before answering; before processing, or after it with
	// AfterProcessing. The sleep ends early if the client goes away.
	Delay time.Duration
	// DropConnection reads the whole request body, then resets the TCP
	// connection (RST where possible) without writing a response.
	DropConnection  bool
	AfterProcessing bool
}

// Inject adds a fault.
func (s *Server) Inject(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &f)
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = nil
}

func (s *Server) takeFault(path string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.Endpoint != "" && f.Endpoint != path {
			continue
		}
		applied := *f
		if f.Times > 0 {
			if f.Times--; f.Times == 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
		}
		return &applied
	}
	return nil
}

// Request is one entry of the request log. Tokens are never logged, only
// their Fingerprint.
type Request struct {
	Seq        int
	Method     string
	Endpoint   string // URL path
	GrantType  string
	ClientID   string
	TokenHash  string    // Fingerprint of the presented refresh_token, code or token
	Status     int       // 0 when the connection was dropped or the client left
	Error      string    // OAuth "error" of the answer, if any
	Faulted    bool      // an injected fault applied
	Dropped    bool      // the connection was reset without an answer
	Start, End time.Time // wall clock
}

// Requests returns a copy of the request log in arrival order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// recorder buffers a handler's answer so a fault can still replace it.
type recorder struct {
	header   http.Header
	status   int
	body     bytes.Buffer
	oauthErr string
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}

func (r *recorder) flush(w http.ResponseWriter) {
	for k, v := range r.header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body.Bytes())
}

// ServeHTTP routes a request, applying injected faults and logging it.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body) // read fully first: "dropped after the request was sent"
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	s.seq++
	entry := Request{Seq: s.seq, Method: r.Method, Endpoint: r.URL.Path, Start: time.Now()}
	s.mu.Unlock()
	describe(&entry, r, body)

	f := s.takeFault(r.URL.Path)
	entry.Faulted = f != nil
	defer func() {
		entry.End = time.Now()
		s.mu.Lock()
		s.log = append(s.log, entry)
		s.mu.Unlock()
	}()
	if f != nil && !f.AfterProcessing && !sleep(r, f.Delay) {
		return
	}
	rec := &recorder{header: http.Header{}}
	if f == nil || f.AfterProcessing || (f.Status == 0 && f.Redirect == "" && !f.DropConnection) {
		s.route(rec, r)
		entry.Error = rec.oauthErr
		if f != nil && f.AfterProcessing && !sleep(r, f.Delay) {
			return
		}
	}
	switch {
	case f != nil && f.DropConnection:
		entry.Dropped, entry.Error = true, ""
		dropConnection(w)
	case f != nil && (f.Status != 0 || f.Redirect != ""):
		entry.Status, entry.Error = writeFault(w, f), ""
	default:
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		entry.Status = rec.status
		rec.flush(w)
	}
}

// sleep waits d unless the client goes away first; it reports whether to go on.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func writeFault(w http.ResponseWriter, f *Fault) int {
	status := f.Status
	if f.Redirect != "" {
		w.Header().Set("Location", f.Redirect)
		if status == 0 {
			status = http.StatusFound
		}
	}
	for k, v := range f.Headers {
		w.Header().Set(k, v)
	}
	if f.ContentType != "" {
		w.Header().Set("Content-Type", f.ContentType)
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, f.Body)
	return status
}

// dropConnection closes the connection with an RST where possible, so the
// client sees "connection reset" after having sent its request.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler) // HTTP/2: reset the stream
}

// describe fills the log fields that come from the request itself.
func describe(e *Request, r *http.Request, body []byte) {
	form := r.URL.Query()
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		if f, err := url.ParseQuery(string(body)); err == nil {
			form = f
		}
	}
	e.GrantType, e.ClientID = form.Get("grant_type"), form.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		e.ClientID, _ = url.QueryUnescape(id)
	}
	for _, k := range []string{"refresh_token", "code", "token"} {
		if v := form.Get(k); v != "" {
			e.TokenHash = Fingerprint(v)
			break
		}
	}
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case PathToken:
		s.handleToken(w, r)
	case PathAuth:
		s.handleAuthorize(w, r)
	case PathIntrospect:
		s.handleIntrospect(w, r)
	case PathHealth, PathAlive:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_ = json.NewEncoder(w).Encode(map[string]string{"status": "ok"})
	case PathErrorPage:
		s.handleErrorPage(w, r)
	case PathJWKS:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(jwksJSON())
	default:
		http.NotFound(w, r)
	}
}

// issuer returns the configured issuer or one derived from the request host.
func (s *Server) issuer(host string) string {
	switch {
	case s.cfg.issuer != "":
		return s.cfg.issuer
	case host == "":
		return "http://localhost/"
	}
	return "http://" + host + "/"
}

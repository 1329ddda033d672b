package matrix

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/hydraemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
)

// caseState is what a case's Setup leaves for Run: work to wait for once
// the binary has exited (a concurrent "other run"), servers to close, and
// extra values the leak scan must look for.
type caseState struct {
	mu      sync.Mutex
	settle  []func()
	closers []func()
	secrets []string
}

var states sync.Map // *stack.Stack -> *caseState

func stateOf(s *stack.Stack) *caseState {
	v, _ := states.LoadOrStore(s, &caseState{})
	return v.(*caseState)
}

// onSettle registers f to run after the binary exits, before the checks.
func onSettle(s *stack.Stack, f func()) {
	st := stateOf(s)
	st.mu.Lock()
	st.settle = append(st.settle, f)
	st.mu.Unlock()
}

// onRelease registers f to run when the case is over.
func onRelease(s *stack.Stack, f func()) {
	st := stateOf(s)
	st.mu.Lock()
	st.closers = append(st.closers, f)
	st.mu.Unlock()
}

// scanFor adds values the leak scan must look for.
func scanFor(s *stack.Stack, values ...string) {
	st := stateOf(s)
	st.mu.Lock()
	st.secrets = append(st.secrets, values...)
	st.mu.Unlock()
}

func settle(s *stack.Stack) {
	st := stateOf(s)
	st.mu.Lock()
	fs := st.settle
	st.settle = nil
	st.mu.Unlock()
	for _, f := range fs {
		f()
	}
}

func extraSecrets(s *stack.Stack) []string {
	st := stateOf(s)
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.secrets...)
}

func release(s *stack.Stack) {
	v, ok := states.LoadAndDelete(s)
	if !ok {
		return
	}
	st := v.(*caseState)
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, f := range st.closers {
		f()
	}
}

// serve serves h on l until the case is over and returns its base URL.
func serve(s *stack.Stack, l net.Listener, h http.Handler) string {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	onRelease(s, func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// tokenProxy forwards token requests to the Hydra emulator and lets edit
// rewrite a JSON answer on its way back: a proxy between the action and a
// Hydra that has already committed whatever the request did.
func tokenProxy(s *stack.Stack, edit func(m map[string]any)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		resp, err := http.Post(s.TokenURL(), r.Header.Get("Content-Type"), bytes.NewReader(body))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		var m map[string]any
		if edit != nil && json.Unmarshal(out, &m) == nil {
			edit(m)
			out, _ = json.Marshal(m)
		}
		w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
		w.WriteHeader(resp.StatusCode)
		w.Write(out)
	})
}

// rewrite points the action at a proxy that edits Hydra's answers.
func rewrite(edit func(m map[string]any)) func(*stack.Stack, map[string]string) {
	return func(s *stack.Stack, in map[string]string) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			panic(err)
		}
		in["token-url"] = serve(s, l, tokenProxy(s, edit)) + hydraemu.PathToken
	}
}

// refreshOutside presents rt at the token endpoint from outside the action
// (another run, a laptop sharing the chain).
func refreshOutside(s *stack.Stack, rt string) hydraemu.Tokens {
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {stack.ClientID}}
	var t hydraemu.Tokens
	resp, err := http.PostForm(s.TokenURL(), form)
	if err != nil {
		return t
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		_ = json.NewDecoder(resp.Body).Decode(&t)
	}
	return t
}

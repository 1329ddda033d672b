//go:build realhydra

package realhydra

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHydraBehaviour records (t.Logf + summary) and pins (assertions) what a
// real Hydra does with the refresh-token grant, so the emulator can match it.
func TestHydraBehaviour(t *testing.T) {
	rec := newRecorder()
	rec.Version = HydraVersion(t)
	t.Logf("hydra version:\n%s", rec.Version)
	defer rec.summary(t)

	strict := StartHydra(t, Options{}) // grace period 0 (default)

	rec.run(t, "a_refresh_rotates", func(t *testing.T, p *probe) {
		h := strict
		c := h.CreatePublicClient(t)
		p.note(t, "public client: %s", shape(c.Raw))
		t0 := h.Login(t, c)
		p.note(t, "code exchange body shape: %s", shape(t0.Raw))
		p.note(t, "token formats: access %s, refresh %s, id_token JWT=%v", short(t0.AccessToken), short(t0.RefreshToken), strings.Count(t0.IDToken, ".") == 2)
		p.note(t, "introspect RT0 before refresh: %s", introspection(h.Introspect(t, t0.RefreshToken)))

		r := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "refresh RT0 -> %s", describe(r))
		wantStatus(t, r, http.StatusOK)
		t1, err := r.Tokens()
		if err != nil {
			t.Fatal(err)
		}
		p.note(t, "refresh body shape: %s", shape(t1.Raw))
		p.note(t, "rotated: new RT != old RT: %v; new AT != old AT: %v; id_token present: %v; token_type=%q scope=%q expires_in=%d",
			t1.RefreshToken != t0.RefreshToken, t1.AccessToken != t0.AccessToken, t1.IDToken != "", t1.TokenType, t1.Scope, t1.ExpiresIn)
		p.note(t, "after refresh: AT0 %s | RT0 %s | AT1 active=%v | RT1 active=%v",
			introspection(h.Introspect(t, t0.AccessToken)), introspection(h.Introspect(t, t0.RefreshToken)),
			h.Active(t, t1.AccessToken), h.Active(t, t1.RefreshToken))

		// Assertions pinning the observed behaviour.
		if want := "access_token:string expires_in:number id_token:string refresh_token:string scope:string token_type:string"; shape(t1.Raw) != want {
			t.Errorf("refresh body shape %q, want %q", shape(t1.Raw), want)
		}
		if t1.RefreshToken == t0.RefreshToken || t1.RefreshToken == "" {
			t.Errorf("refresh token not rotated")
		}
		if t1.TokenType != "bearer" {
			t.Errorf("token_type %q", t1.TokenType)
		}
		if t1.Scope != "openid offline_access offline" {
			t.Errorf("scope %q", t1.Scope)
		}
		if t1.ExpiresIn < 3590 || t1.ExpiresIn > 3600 {
			t.Errorf("expires_in %d, want ~3600 (default ttl.access_token=1h)", t1.ExpiresIn)
		}
		if !strings.HasPrefix(t1.RefreshToken, "ory_rt_") || !strings.HasPrefix(t1.AccessToken, "ory_at_") {
			t.Errorf("token prefixes: %s %s", short(t1.AccessToken), short(t1.RefreshToken))
		}
		wantHeader(t, r, "Cache-Control", "no-store")
		wantHeader(t, r, "Pragma", "no-cache")
		wantHeader(t, r, "Content-Type", "application/json;charset=UTF-8")
		if h.Active(t, t0.AccessToken) {
			t.Errorf("old access token still active after strict rotation")
		}
		if h.Active(t, t0.RefreshToken) {
			t.Errorf("old refresh token still active after strict rotation")
		}
		if !h.Active(t, t1.AccessToken) || !h.Active(t, t1.RefreshToken) {
			t.Errorf("new tokens not active")
		}
	})

	rec.run(t, "b_reuse_of_used_refresh_token", func(t *testing.T, p *probe) {
		h := strict
		c := h.CreatePublicClient(t)
		t0 := h.Login(t, c)
		t1, err := h.Refresh(t, c, t0.RefreshToken).Tokens()
		if err != nil {
			t.Fatal(err)
		}
		r := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "reuse RT0 (already rotated to RT1) -> %s", describe(r))
		p.note(t, "after reuse: AT1 %s | RT1 %s", introspection(h.Introspect(t, t1.AccessToken)), introspection(h.Introspect(t, t1.RefreshToken)))
		r2 := h.Refresh(t, c, t1.RefreshToken)
		p.note(t, "then refresh RT1 (newer token of the same chain) -> %s", describe(r2))
		r3 := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "then RT0 a third time -> %s", describe(r3))

		wantStatus(t, r, http.StatusBadRequest)
		if got := shape(r.JSON()); got != "error:string error_description:string" {
			t.Errorf("error body shape %q (no error_hint/error_debug expected)", got)
		}
		wantHeader(t, r, "Cache-Control", "no-store")
		wantHeader(t, r, "Content-Type", "application/json;charset=UTF-8")
		e := decodeErr(t, r)
		if e.Error != "invalid_grant" || !strings.Contains(e.Description, "The refresh token was already used.") {
			t.Errorf("reuse error %+v", e)
		}
		if h.Active(t, t1.AccessToken) || h.Active(t, t1.RefreshToken) {
			t.Errorf("reuse did not revoke the newer tokens of the chain")
		}
		wantStatus(t, r2, http.StatusBadRequest)
		if e2 := decodeErr(t, r2); e2.Error != "invalid_grant" || !strings.Contains(e2.Description, "The refresh token is malformed or not valid.") {
			t.Errorf("refresh of revoked RT1: %+v", e2)
		}
	})

	rec.run(t, "c1_concurrent_refresh_grace_0", func(t *testing.T, p *probe) {
		for i, r := range concurrencyProbe(t, p, strict, 0) {
			// Strict rotation: whatever the interleaving, at most one refresh
			// token of the chain is active afterwards, and someone won.
			if r.ok == 0 || r.activeRTs > 1 {
				t.Errorf("round %d: %d x 200, %d active minted RTs (%v)", i, r.ok, r.activeRTs, r.statuses)
			}
		}
	})

	// AccessTTL also checks that TTL_ACCESS_TOKEN reaches expires_in.
	grace := StartHydra(t, Options{GracePeriod: 30 * time.Second, AccessTTL: 10 * time.Minute})

	rec.run(t, "c2_concurrent_refresh_grace_30s", func(t *testing.T, p *probe) {
		for i, r := range concurrencyProbe(t, p, grace, 30*time.Second) {
			// Graceful rotation: every minted refresh token stays active.
			if r.ok == 0 || r.activeRTs != r.ok {
				t.Errorf("round %d: %d x 200, %d active minted RTs (%v)", i, r.ok, r.activeRTs, r.statuses)
			}
		}
	})

	rec.run(t, "d1_reuse_within_grace_30s", func(t *testing.T, p *probe) {
		h := grace
		c := h.CreatePublicClient(t)
		t0 := h.Login(t, c)
		r1 := h.Refresh(t, c, t0.RefreshToken)
		wantStatus(t, r1, http.StatusOK)
		t1, _ := r1.Tokens()
		p.note(t, "first use RT0 -> %s", describe(r1))
		p.note(t, "after first use: AT0 active=%v RT0 %s", h.Active(t, t0.AccessToken), introspection(h.Introspect(t, t0.RefreshToken)))

		r2 := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "second use RT0 within grace -> %s", describe(r2))
		wantStatus(t, r2, http.StatusOK)
		t2, _ := r2.Tokens()
		p.note(t, "second use: RT2==RT1 %v, AT2==AT1 %v, RT2==RT0 %v", t2.RefreshToken == t1.RefreshToken, t2.AccessToken == t1.AccessToken, t2.RefreshToken == t0.RefreshToken)
		at1, rt1, at2, rt2, rt0 := h.Active(t, t1.AccessToken), h.Active(t, t1.RefreshToken), h.Active(t, t2.AccessToken), h.Active(t, t2.RefreshToken), h.Active(t, t0.RefreshToken)
		p.note(t, "after second use: AT1 active=%v RT1 active=%v AT2 active=%v RT2 active=%v RT0 active=%v", at1, rt1, at2, rt2, rt0)

		r3 := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "third use RT0 within grace -> HTTP %d, new RT distinct from RT1/RT2: %v", r3.Status, distinctRT(r3, t1, t2))
		wantStatus(t, r3, http.StatusOK)
		t3, _ := r3.Tokens()

		// Both branches of the chain are alive: RT1 and RT2 both refresh.
		r4 := h.Refresh(t, c, t1.RefreshToken)
		r5 := h.Refresh(t, c, t2.RefreshToken)
		p.note(t, "then refresh RT1 -> HTTP %d; refresh RT2 -> HTTP %d; RT3 still active=%v", r4.Status, r5.Status, h.Active(t, t3.RefreshToken))

		if t1.ExpiresIn < 590 || t1.ExpiresIn > 600 || t2.ExpiresIn < 590 || t2.ExpiresIn > 600 {
			t.Errorf("expires_in %d/%d, want ~600 (TTL_ACCESS_TOKEN=10m)", t1.ExpiresIn, t2.ExpiresIn)
		}
		if t2.RefreshToken == t1.RefreshToken || t2.AccessToken == t1.AccessToken {
			t.Errorf("grace re-use returned the same tokens as the first use")
		}
		if !at1 || !rt1 || !at2 || !rt2 || !rt0 {
			t.Errorf("within grace every token of the chain stays active; got AT1=%v RT1=%v AT2=%v RT2=%v RT0=%v", at1, rt1, at2, rt2, rt0)
		}
		if !h.Active(t, t3.RefreshToken) {
			t.Errorf("RT3 inactive after siblings were refreshed")
		}
		wantStatus(t, r4, http.StatusOK)
		wantStatus(t, r5, http.StatusOK)
	})

	shortGrace := StartHydra(t, Options{GracePeriod: 2 * time.Second})

	rec.run(t, "d2_reuse_after_grace_2s_expired", func(t *testing.T, p *probe) {
		h := shortGrace
		c := h.CreatePublicClient(t)
		t0 := h.Login(t, c)
		t1, err := h.Refresh(t, c, t0.RefreshToken).Tokens()
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		r := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "reuse RT0 3s after first use (grace 2s) -> %s", describe(r))
		p.note(t, "after: AT1 active=%v RT1 active=%v", h.Active(t, t1.AccessToken), h.Active(t, t1.RefreshToken))
		r2 := h.Refresh(t, c, t1.RefreshToken)
		p.note(t, "then refresh RT1 -> %s", describe(r2))

		wantStatus(t, r, http.StatusBadRequest)
		if e := decodeErr(t, r); e.Error != "invalid_grant" || !strings.Contains(e.Description, "already used") {
			t.Errorf("reuse after grace: %+v", e)
		}
		wantStatus(t, r2, http.StatusBadRequest)
	})

	rec.run(t, "e_no_rotation_possible", func(t *testing.T, p *probe) {
		// Hydra v2.3.0 has no switch to disable rotation (see OBSERVATIONS.md).
		// The closest is the grace period (max 5m): the old token keeps working
		// for the grace window, but every refresh still mints a new refresh token.
		for _, inst := range []struct {
			name string
			h    *Hydra
		}{{"grace 0", strict}, {"grace 30s", grace}} {
			c := inst.h.CreatePublicClient(t)
			t0 := inst.h.Login(t, c)
			seen := map[string]bool{t0.RefreshToken: true}
			rt := t0.RefreshToken
			for i := 0; i < 3; i++ {
				tk, err := inst.h.Refresh(t, c, rt).Tokens()
				if err != nil {
					t.Fatal(err)
				}
				if seen[tk.RefreshToken] {
					t.Errorf("%s: refresh %d returned an already seen refresh token", inst.name, i)
				}
				seen[tk.RefreshToken] = true
				rt = tk.RefreshToken
			}
			p.note(t, "%s: 3 successive refreshes -> %d distinct refresh tokens (incl. the initial one): always rotated", inst.name, len(seen))
		}
	})

	rec.run(t, "f_expired_refresh_token", func(t *testing.T, p *probe) {
		h := strict
		c := h.CreatePublicClient(t, ClientOptions{Lifespans: map[string]string{
			"authorization_code_grant_refresh_token_lifespan": "1s",
		}})
		t0 := h.Login(t, c)
		p.note(t, "RT issued with client lifespan 1s: %s", introspection(h.Introspect(t, t0.RefreshToken)))
		time.Sleep(2500 * time.Millisecond)
		p.note(t, "introspect RT after 2.5s: %s", introspection(h.Introspect(t, t0.RefreshToken)))
		r := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "refresh expired RT -> %s", describe(r))
		wantStatus(t, r, http.StatusBadRequest)
		if e := decodeErr(t, r); e.Error != "invalid_grant" {
			t.Errorf("expired: %+v", e)
		}
	})

	rec.run(t, "g_unknown_client_id", func(t *testing.T, p *probe) {
		h := strict
		c := h.CreatePublicClient(t)
		t0 := h.Login(t, c)
		r := h.PostToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t0.RefreshToken}, "client_id": {"no-such-client"}})
		p.note(t, "valid RT + unknown client_id -> %s", describe(r))
		after := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "same RT afterwards with the right client_id -> HTTP %d (no side effect: %v)", after.Status, after.Status == http.StatusOK)
		wantStatus(t, r, http.StatusUnauthorized)
		wantHeader(t, r, "WWW-Authenticate", "")
		if e := decodeErr(t, r); e.Error != "invalid_client" {
			t.Errorf("unknown client: %+v", e)
		}
		wantStatus(t, after, http.StatusOK)
	})

	rec.run(t, "h_no_client_id", func(t *testing.T, p *probe) {
		h := strict
		c := h.CreatePublicClient(t)
		t0 := h.Login(t, c)
		r := h.PostToken(t, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t0.RefreshToken}})
		p.note(t, "valid RT, form without client_id -> %s", describe(r))
		after := h.Refresh(t, c, t0.RefreshToken)
		p.note(t, "same RT afterwards with client_id -> HTTP %d", after.Status)
		wantStatus(t, r, http.StatusBadRequest)
		if e := decodeErr(t, r); e.Error != "invalid_request" || !strings.Contains(e.Description, "Client credentials missing or malformed in both HTTP Authorization header and HTTP POST body.") {
			t.Errorf("no client_id: %+v", e)
		}
		wantStatus(t, after, http.StatusOK)
	})

	rec.run(t, "i_other_errors", func(t *testing.T, p *probe) {
		h := strict
		a := h.CreatePublicClient(t)
		b := h.CreatePublicClient(t)
		ta := h.Login(t, a)

		r := h.Refresh(t, b, ta.RefreshToken)
		p.note(t, "RT of client A presented with client B's id -> %s", describe(r))
		after := h.Refresh(t, a, ta.RefreshToken)
		p.note(t, "  RT afterwards with client A -> HTTP %d", after.Status)

		r = h.Refresh(t, a, "ory_rt_garbage.garbage")
		p.note(t, "garbage refresh_token -> %s", describe(r))

		r = h.PostToken(t, url.Values{"grant_type": {"refresh_token"}, "client_id": {a.ID}})
		p.note(t, "no refresh_token field -> %s", describe(r))

		r = h.PostToken(t, url.Values{"grant_type": {"refresh_tokens"}, "refresh_token": {"x"}, "client_id": {a.ID}})
		p.note(t, "unsupported grant_type -> %s", describe(r))

		noRefresh := h.CreatePublicClient(t, ClientOptions{GrantTypes: []string{"authorization_code"}})
		r = h.Refresh(t, noRefresh, "ory_rt_x.y")
		p.note(t, "client without refresh_token grant -> %s", describe(r))
	})
}

func distinctRT(r Response, ts ...Tokens) bool {
	n, err := r.Tokens()
	if err != nil {
		return false
	}
	for _, t := range ts {
		if t.RefreshToken == n.RefreshToken {
			return false
		}
	}
	return true
}

// concurrencyProbe fires two refreshes with the same token at the same moment,
// several rounds, and records what each got and whether the chain survives.
// It returns, per round, how many 200s there were and how many of the minted
// refresh tokens were still active right afterwards.
func concurrencyProbe(t *testing.T, p *probe, h *Hydra, grace time.Duration) []concRound {
	const rounds = 10
	const parallel = 2
	outcomes := map[string]int{}
	var out []concRound
	for round := 0; round < rounds; round++ {
		c := h.CreatePublicClient(t)
		t0 := h.Login(t, c)
		resps := fireTogether(t, h, c, t0.RefreshToken, parallel)

		var statuses []string
		var winners []Tokens
		for _, r := range resps {
			if r.Status == http.StatusOK {
				tk, _ := r.Tokens()
				winners = append(winners, tk)
				statuses = append(statuses, "200")
			} else {
				e := decodeErr(t, r)
				statuses = append(statuses, fmt.Sprintf("%d %s", r.Status, e.Error))
			}
		}
		sort.Strings(statuses)
		// Non-destructive look at the chain right after the race.
		var active, inactive []Tokens
		var state []string
		for _, w := range winners {
			rtA, atA := h.Active(t, w.RefreshToken), h.Active(t, w.AccessToken)
			state = append(state, fmt.Sprintf("RT active=%v/AT active=%v", rtA, atA))
			if rtA {
				active = append(active, w)
			} else {
				inactive = append(inactive, w)
			}
		}
		sort.Strings(state)
		rt0 := h.Active(t, t0.RefreshToken)
		out = append(out, concRound{ok: len(winners), activeRTs: len(active), statuses: statuses})
		key := fmt.Sprintf("%s | minted: %s | RT0 active=%v", strings.Join(statuses, " + "), strings.Join(state, "; "), rt0)
		outcomes[key]++
		if outcomes[key] > 1 {
			continue
		}
		// First time we see this outcome: record it verbatim and follow up.
		for i, r := range resps {
			p.note(t, "round %d request %d -> %s", round, i, describe(r))
		}
		p.note(t, "round %d right after: %s", round, key)
		if len(inactive) > 0 {
			// What happens if the client kept the losing (deactivated) token?
			r := h.Refresh(t, c, inactive[0].RefreshToken)
			e := decodeErr(t, r)
			var others []string
			for _, a := range active {
				others = append(others, fmt.Sprintf("surviving RT active=%v AT active=%v", h.Active(t, a.RefreshToken), h.Active(t, a.AccessToken)))
			}
			if len(others) == 0 {
				others = []string{"no minted token was active to begin with (chain already revoked)"}
			}
			p.note(t, "round %d follow-up: client keeps the deactivated minted RT and refreshes -> HTTP %d %s %q; afterwards %s",
				round, r.Status, e.Error, e.Description, strings.Join(others, ", "))
		} else {
			var st []string
			for _, a := range active {
				st = append(st, fmt.Sprint(h.Refresh(t, c, a.RefreshToken).Status))
			}
			p.note(t, "round %d follow-up: refreshing each active minted RT -> %s", round, strings.Join(st, ", "))
		}
	}
	keys := make([]string, 0, len(outcomes))
	for k := range outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.note(t, "grace %s, %d rounds x %d simultaneous: %dx [%s]", grace, rounds, parallel, outcomes[k], k)
	}
	return out
}

type concRound struct {
	ok        int // responses with 200
	activeRTs int // minted refresh tokens active right after the race
	statuses  []string
}

// fireTogether sends n refreshes of the same token released by one barrier.
func fireTogether(t *testing.T, h *Hydra, c Client, rt string, n int) []Response {
	t.Helper()
	reqs := make([]*http.Request, n)
	for i := range reqs {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}
		req, err := http.NewRequest(http.MethodPost, h.PublicURL+"/oauth2/token", strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		reqs[i] = req
	}
	// One client (and so one warmed connection) per request, so the requests
	// do not queue behind one another on the client side.
	clients := make([]*http.Client, n)
	for i := range clients {
		clients[i] = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
		resp, err := clients[i].Get(h.PublicURL + "/health/alive")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resps := make([]Response, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := range reqs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-gate
			start := time.Now()
			resp, err := clients[i].Do(reqs[i])
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				errs[i] = err
				return
			}
			resps[i] = Response{Status: resp.StatusCode, Header: resp.Header, Body: b, Elapsed: time.Since(start)}
		}(i)
	}
	close(gate)
	wg.Wait()
	for i, c := range clients {
		c.CloseIdleConnections()
		if errs[i] != nil {
			t.Fatalf("concurrent request %d: %v", i, errs[i])
		}
	}
	return resps
}

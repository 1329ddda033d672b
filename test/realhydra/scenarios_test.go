//go:build realhydra

package realhydra

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/githubemu"
	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
	"github.com/amplitude/wizard-oauth-refresh/internal/ghsecrets"
	"github.com/amplitude/wizard-oauth-refresh/internal/matrix"
	"github.com/amplitude/wizard-oauth-refresh/internal/run"
)

// The scenario suite of issue 3: the real action binary, run as a process
// exactly as the runner runs the container action (stack.Run), against a
// real Hydra v2.3.0 and the GitHub API emulator. Every token is a real
// Hydra token obtained through a headless login; every assertion about the
// chain is checked on Hydra's admin introspection endpoint.
//
// The action's token-url points at tokenProxy, a transparent loopback
// pass-through that records what each run sent and what Hydra answered (see
// proxy_test.go); only scenario 3 uses its timing hooks.

const (
	secretRT  = "WIZARD_REFRESH_TOKEN"
	secretAT  = "WIZARD_OAUTH_TOKEN"
	secretExp = "WIZARD_EXPIRES_AT"
)

// TestScenarios runs the scenarios and prints a suite summary.
func TestScenarios(t *testing.T) {
	rec := newRecorder()
	rec.Title = "real Hydra scenario suite (action binary, real Hydra, GitHub emulator)"
	rec.JSONSuffix = "scenarios"
	rec.Version = HydraVersion(t)
	t.Logf("hydra version:\n%s", rec.Version)
	defer rec.summary(t)

	buildStart := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	bin, err := stack.Build(ctx, repoRoot(), t.TempDir())
	cancel()
	if err != nil {
		t.Fatalf("build the action binary: %v", err)
	}
	t.Logf("action binary %s built in %s", bin, time.Since(buildStart).Round(time.Millisecond))

	strict := StartHydra(t, Options{})                             // rotation grace period 0 (Hydra's default)
	grace := StartHydra(t, Options{GracePeriod: 30 * time.Second}) // graceful rotation
	rounds := envInt(t, "REALHYDRA_ROUNDS", 10)                    // scenario 3, per arm with the barrier
	freeRounds := max(3, rounds/2)                                 // scenario 3, arms without the barrier
	// The summary's first entry.
	rec.Probes = append(rec.Probes, &probe{Name: "0_setup", Ran: true,
		Duration: time.Since(buildStart),
		Lines: []string{
			"action binary: stack.Build (go build -trimpath, CGO_ENABLED=0), run by stack.Run with INPUT_* env, GITHUB_OUTPUT/GITHUB_STEP_SUMMARY files, a fresh GITHUB_RUN_ID",
			"hydra (grace 0): public " + strict.PublicURL + ", admin " + strict.AdminURL,
			"hydra (grace 30s): public " + grace.PublicURL + ", admin " + grace.AdminURL,
			"token-url: loopback pass-through recorder in front of Hydra's /oauth2/token (proxy_test.go)",
			fmt.Sprintf("scenario 3 rounds: %d per arm with the barrier, %d without (REALHYDRA_ROUNDS)", rounds, freeRounds),
		}})

	rec.run(t, "1_two_scheduled_runs_in_a_row", func(t *testing.T, p *probe) {
		scenarioTwoRuns(t, p, bin, strict)
	})
	rec.run(t, "2_reuse_of_a_used_refresh_token", func(t *testing.T, p *probe) {
		scenarioReuse(t, p, bin, strict)
	})
	for _, arm := range []concArm{
		{name: "3a_concurrent_runs_grace_0_released_together", h: strict, rounds: rounds, barrier: true},
		{name: "3b_concurrent_runs_grace_0_started_together", h: strict, rounds: freeRounds},
		{name: "3c_concurrent_runs_grace_0_retry_blocked_counterfactual", h: strict, rounds: rounds, barrier: true, blockRetry: true},
		{name: "3d_concurrent_runs_grace_30s_released_together", h: grace, grace: 30 * time.Second, rounds: rounds, barrier: true},
		{name: "3e_concurrent_runs_grace_30s_started_together", h: grace, grace: 30 * time.Second, rounds: freeRounds},
	} {
		rec.run(t, arm.name, func(t *testing.T, p *probe) {
			scenarioConcurrent(t, p, bin, arm)
		})
	}
	rec.run(t, "4_pat_rejected_at_preflight", func(t *testing.T, p *probe) {
		scenarioPATRejected(t, p, bin, strict)
	})
	rec.run(t, "5_refresh_token_write_fails_after_rotation", func(t *testing.T, p *probe) {
		scenarioWriteFails(t, p, bin, strict)
	})
	rec.run(t, "6_no_non_rotating_client_in_hydra_v2.3.0", func(t *testing.T, p *probe) {
		scenarioAlwaysRotates(t, p, bin, strict, grace)
	})
	rec.run(t, "7_bootstrap_login_against_real_hydra", func(t *testing.T, p *probe) {
		scenarioBootstrapLogin(t, p, bin, strict)
	})
}

// ---- scenario 1 ----------------------------------------------------------

func scenarioTwoRuns(t *testing.T, p *probe, bin string, h *Hydra) {
	w := newWorld(t, bin, h)
	t0 := w.login(t)
	w.seed(t, t0)

	r1 := w.run(t, p, "run 1, fed the bootstrapped RT0", t0.RefreshToken, "run1")
	wantExit(t, r1, 0)
	x1 := onlyExchange(t, r1, http.StatusOK)
	rt1, at1 := w.stored(secretRT), w.stored(secretAT)
	p.note(t, "after run 1: stored RT1 = the refresh token of Hydra's 200: %v, ≠ RT0: %v; stored AT1 = Hydra's access token: %v, = output access-token: %v; stored expiry %s = output: %v",
		rt1 == x1.Tokens.RefreshToken, rt1 != t0.RefreshToken, at1 == x1.Tokens.AccessToken, at1 == r1.o.Outputs["access-token"],
		w.stored(secretExp), w.stored(secretExp) == r1.o.Outputs["expires-at"])
	p.note(t, "Hydra after run 1: RT0 active=%v AT0 active=%v | RT1 active=%v AT1 active=%v",
		h.Active(t, t0.RefreshToken), h.Active(t, t0.AccessToken), h.Active(t, rt1), h.Active(t, at1))
	if rt1 != x1.Tokens.RefreshToken || rt1 == t0.RefreshToken {
		t.Errorf("run 1 did not store Hydra's new refresh token")
	}
	if at1 != x1.Tokens.AccessToken || at1 != r1.o.Outputs["access-token"] {
		t.Errorf("run 1: stored access token / output do not match Hydra's answer")
	}
	if r1.o.Outputs["rotated"] != "true" || r1.o.Outputs["refreshed"] != "true" {
		t.Errorf("run 1 outputs %v", r1.o.Outputs)
	}
	wantExpiry(t, w.stored(secretExp), x1.Tokens.ExpiresIn, r1.o)
	if h.Active(t, t0.RefreshToken) || !h.Active(t, rt1) || !h.Active(t, at1) {
		t.Errorf("after run 1 the chain should be RT1/AT1 active, RT0 used")
	}

	r2 := w.run(t, p, "run 2, fed the stored value RT1", rt1, "run2")
	wantExit(t, r2, 0)
	x2 := onlyExchange(t, r2, http.StatusOK)
	rt2, at2 := w.stored(secretRT), w.stored(secretAT)
	intro := h.Introspect(t, at2)
	p.note(t, "stored AT2 on Hydra's admin introspection: %s", introspection(intro))
	p.note(t, "Hydra after run 2: RT1 active=%v AT1 active=%v | RT2 active=%v", h.Active(t, rt1), h.Active(t, at1), h.Active(t, rt2))
	if rt2 != x2.Tokens.RefreshToken || rt2 == rt1 || at2 != x2.Tokens.AccessToken {
		t.Errorf("run 2 did not store Hydra's new tokens")
	}
	if a, _ := intro["active"].(bool); !a {
		t.Errorf("stored access token is not active: %s", introspection(intro))
	}
	if intro["token_use"] != "access_token" || intro["client_id"] != w.c.ID || intro["sub"] != subject {
		t.Errorf("stored access token introspection: %s", introspection(intro))
	}
	if h.Active(t, rt1) || !h.Active(t, rt2) {
		t.Errorf("after run 2 RT1 should be used and RT2 active")
	}
	wantExpiry(t, w.stored(secretExp), x2.Tokens.ExpiresIn, r2.o)
}

// ---- scenario 2 ----------------------------------------------------------

func scenarioReuse(t *testing.T, p *probe, bin string, h *Hydra) {
	w := newWorld(t, bin, h)
	t0 := w.login(t)
	w.seed(t, t0)
	r1 := w.run(t, p, "run 1, fed RT0", t0.RefreshToken, "run1")
	wantExit(t, r1, 0)
	rt1, at1 := w.stored(secretRT), w.stored(secretAT)

	r2 := w.run(t, p, "run 2, fed RT0 again (already used)", t0.RefreshToken, "reuse")
	wantExit(t, r2, run.ClassRevoked.ExitCode())
	x := onlyExchange(t, r2, http.StatusBadRequest)
	if x.OAuthErr.Error != "invalid_grant" || !strings.Contains(x.OAuthErr.Description, "The refresh token was already used.") {
		t.Errorf("Hydra answered %s, want 400 invalid_grant \"… already used.\"", x)
	}
	msg := errorAnnotations(r2.o.Stdout)
	for _, want := range []string{"re-bootstrap", "cmd/bootstrap", "--login"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the error annotation does not mention %q: %s", want, msg)
		}
		if !strings.Contains(r2.o.Summary, want) {
			t.Errorf("the step summary does not mention %q", want)
		}
	}
	if w.stored(secretRT) != rt1 {
		t.Errorf("the failed run changed the stored refresh token")
	}

	// What Hydra did to the chain: reuse detection revoked all of it.
	rt0A, rt1A, at1A := h.Active(t, t0.RefreshToken), h.Active(t, rt1), h.Active(t, at1)
	p.note(t, "Hydra's chain after the reuse: RT0 active=%v | stored RT1 active=%v (%s) | stored AT1 active=%v",
		rt0A, rt1A, introspection(h.Introspect(t, rt1)), at1A)
	if rt0A || rt1A || at1A {
		t.Errorf("reuse should revoke the whole chain (RT0 %v, RT1 %v, AT1 %v)", rt0A, rt1A, at1A)
	}
	r3 := w.run(t, p, "run 3, the next schedule, fed the stored RT1", rt1, "next")
	wantExit(t, r3, run.ClassRevoked.ExitCode())
	x3 := onlyExchange(t, r3, http.StatusBadRequest)
	if x3.OAuthErr.Error != "invalid_grant" || !strings.Contains(x3.OAuthErr.Description, "The refresh token is malformed or not valid.") {
		t.Errorf("Hydra answered %s, want 400 invalid_grant \"… malformed or not valid.\" (the row was deleted)", x3)
	}
	p.note(t, "so: one reuse kills the chain at Hydra; the run that presented it and every later run exit %d until a re-bootstrap", run.ClassRevoked.ExitCode())
}

// ---- scenario 3 ----------------------------------------------------------

// concArm is one configuration of scenario 3.
type concArm struct {
	name   string
	h      *Hydra
	grace  time.Duration
	rounds int
	// barrier holds the first token request of both runs at the proxy until
	// both have arrived, then forwards them at the same instant. Without
	// it, the two processes are only started at the same instant.
	barrier bool
	// blockRetry answers any second attempt of a run at the proxy with 503
	// Retry-After: 3600 (the action then stops, exit 12): what Hydra would
	// have seen had the action not retried. A counterfactual, clearly not
	// the shipped behaviour.
	blockRetry bool
}

// concRoundResult is one round of scenario 3.
type concRoundResult struct {
	key           string
	exits         []int
	mintedActive  int
	minted        int
	storedFrom    string
	storedActive  bool
	followUp      int
	retries       []string      // per retried run: what happened around the retry
	annotations   []string      // the ::error lines of the runs that failed
	laterActive   string        // two 200s at grace 0: is the active RT the later answer's?
	reuseByRetry  bool          // a retry got "already used"
	winnerBefore  bool          // …while the other run's minted RT was active right before it
	winnerAfter   bool          // …and that RT is still active afterwards
	putLead       time.Duration // …the other run's PUT of the refresh token had completed this long before the retry (0: it had not)
	barrierSpread time.Duration
}

func scenarioConcurrent(t *testing.T, p *probe, bin string, arm concArm) {
	mode := "processes started at the same instant (no barrier)"
	if arm.barrier {
		mode = "both token requests held at the proxy and released at the same instant"
	}
	if arm.blockRetry {
		mode += "; COUNTERFACTUAL: a second attempt is answered 503 Retry-After: 3600 by the proxy and never reaches Hydra"
	}
	p.note(t, "grace %s, %d rounds, %s; each round: fresh login, both runs fed the same stored RT0, then a follow-up scheduled run fed whatever ended up stored", arm.grace, arm.rounds, mode)

	tally := map[string]int{}
	var results []concRoundResult
	for round := 0; round < arm.rounds; round++ {
		r := concurrencyRound(t, p, bin, arm, round)
		if t.Failed() && r.key == "" {
			return
		}
		results = append(results, r)
		if tally[r.key] == 0 {
			p.note(t, "round %d (first of its kind): %s", round, r.key)
			for _, s := range r.retries {
				p.note(t, "  retry: %s", s)
			}
			if r.laterActive != "" {
				p.note(t, "  two 200s: %s", r.laterActive)
			}
			for _, s := range r.annotations {
				p.note(t, "  %s", s)
			}
		}
		tally[r.key]++
	}

	keys := make([]string, 0, len(tally))
	for k := range tally {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return tally[keys[i]] > tally[keys[j]] || (tally[keys[i]] == tally[keys[j]] && keys[i] < keys[j])
	})
	p.note(t, "tally over %d rounds (grace %s):", arm.rounds, arm.grace)
	for _, k := range keys {
		p.note(t, "  %2dx %s", tally[k], k)
	}
	var survived, bothOK, reuseByRetry, retryKilled, putFirst int
	var maxSpread time.Duration
	minLead := time.Duration(-1)
	for _, r := range results {
		if r.storedActive {
			survived++
		}
		if r.exits[0] == 0 && r.exits[1] == 0 {
			bothOK++
		}
		if r.reuseByRetry {
			reuseByRetry++
			if r.winnerBefore && !r.winnerAfter {
				retryKilled++
			}
			if r.putLead > 0 {
				putFirst++
				if minLead < 0 || r.putLead < minLead {
					minLead = r.putLead
				}
			}
		}
		maxSpread = max(maxSpread, r.barrierSpread)
	}
	p.note(t, "chain alive after the round (stored RT active, follow-up run exit 0): %d/%d; both runs exit 0: %d/%d", survived, len(results), bothOK, len(results))
	if reuseByRetry > 0 {
		p.note(t, "the action's retry of a 500 was answered \"already used\" in %d round(s); in %d of them the other run's freshly minted RT was active right before the retry and revoked right after: the retry is what killed the chain", reuseByRetry, retryKilled)
		p.note(t, "in %d of those %d rounds the other run had already stored its new refresh token before the retry (at least %s before): re-checking the secret's updated_at (the stale-secret guard) before a retry would have stopped it", putFirst, reuseByRetry, minLead.Round(time.Millisecond))
	}
	if arm.barrier {
		p.note(t, "barrier: the two first attempts were forwarded within %s of each other (max over rounds)", maxSpread.Round(time.Microsecond))
	}
}

func concurrencyRound(t *testing.T, p *probe, bin string, arm concArm, round int) concRoundResult {
	t.Helper()
	w := newWorld(t, bin, arm.h)
	t0 := w.login(t)
	w.seed(t, t0)
	if arm.barrier {
		w.px.SetBarrier(2, 5*time.Second)
	}
	w.px.SetBefore(func(x exchange) (string, *cannedResponse) {
		if x.Attempt < 2 {
			return "", nil
		}
		// A retry: record the state of every refresh token minted so far,
		// right before the retry reaches Hydra.
		var st []string
		for _, m := range w.px.Exchanges("") {
			if m.Tokens != nil {
				a, err := arm.h.activeErr(m.Tokens.RefreshToken)
				if err != nil {
					st = append(st, fmt.Sprintf("run %s's RT: introspection failed: %v", m.Label, err))
					continue
				}
				st = append(st, fmt.Sprintf("run %s's RT active=%v", m.Label, a))
			}
		}
		if len(st) == 0 {
			st = []string{"no RT minted yet"}
		}
		note := "right before it: " + strings.Join(st, ", ")
		if arm.blockRetry {
			return note, &cannedResponse{
				Status: http.StatusServiceUnavailable,
				Header: map[string]string{"Content-Type": "application/json;charset=UTF-8", "Retry-After": "3600"},
				Body:   `{"error":"temporarily_unavailable","error_description":"realhydra proxy: retry blocked by the test (counterfactual)"}`,
			}
		}
		return note, nil
	})

	labels := []string{"a", "b"}
	dirs := []string{t.TempDir(), t.TempDir()}
	outs := make([]*stack.Outcome, 2)
	errs := make([]error, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	gate := make(chan struct{})
	var wg sync.WaitGroup
	for i := range labels {
		wg.Add(1)
		go func() {
			defer wg.Done()
			in := w.inputs(t0.RefreshToken, labels[i])
			<-gate
			outs[i], errs[i] = w.s.Run(ctx, bin, dirs[i], in)
		}()
	}
	close(gate)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("round %d run %s: %v", round, labels[i], err)
		}
	}
	w.px.SetBefore(nil)

	res := concRoundResult{}
	runs := make([]*runResult, 2)
	var firsts []time.Time
	for i, l := range labels {
		runs[i] = &runResult{label: l, o: outs[i], hydra: w.px.Exchanges(l)}
		w.leakCheck(t, fmt.Sprintf("round %d run %s", round, l), runs[i])
		res.exits = append(res.exits, outs[i].ExitCode)
		if len(runs[i].hydra) > 0 {
			firsts = append(firsts, runs[i].hydra[0].Released)
		}
	}
	if len(firsts) == 2 {
		d := firsts[0].Sub(firsts[1])
		res.barrierSpread = max(d, -d)
	}

	// Hydra's view right after both runs, before anything else touches it.
	mintedBy := map[string]string{} // RT -> label
	var oks []exchange
	var activeOK []bool
	for _, r := range runs {
		for _, x := range r.hydra {
			if x.Tokens != nil {
				res.minted++
				mintedBy[x.Tokens.RefreshToken] = r.label
				a := arm.h.Active(t, x.Tokens.RefreshToken)
				if a {
					res.mintedActive++
				}
				oks, activeOK = append(oks, x), append(activeOK, a)
			}
		}
		if r.o.ExitCode != 0 {
			res.annotations = append(res.annotations, fmt.Sprintf("run %s's annotation: %s", r.label, errorAnnotations(r.o.Stdout)))
		}
	}
	if arm.grace == 0 && len(oks) == 2 && activeOK[0] != activeOK[1] {
		later := 0
		if oks[1].End.After(oks[0].End) {
			later = 1
		}
		res.laterActive = fmt.Sprintf("the surviving RT is the one of the answer that arrived later (by %s): %v; it is also the one stored (last write wins): %v",
			oks[later].End.Sub(oks[1-later].End).Round(time.Microsecond), activeOK[later], w.stored(secretRT) == oks[later].Tokens.RefreshToken)
	}
	stored := w.stored(secretRT)
	switch {
	case stored == t0.RefreshToken:
		res.storedFrom = "RT0 (nothing stored)"
	case mintedBy[stored] != "":
		res.storedFrom = "run " + mintedBy[stored] + "'s"
	default:
		res.storedFrom = "unknown"
		t.Errorf("round %d: stored refresh token is neither RT0 nor minted by a run", round)
	}
	res.storedActive = arm.h.Active(t, stored)

	// The retry question: for each run that made a second attempt, what was
	// the state right before it, what did Hydra answer, and what is it now.
	for _, r := range runs {
		for _, x := range r.hydra[min(1, len(r.hydra)):] {
			prev := r.hydra[x.Attempt-2]
			s := fmt.Sprintf("run %s attempt %d, %s after attempt %d got %s: %s",
				r.label, x.Attempt, x.Start.Sub(prev.End).Round(time.Millisecond), prev.Attempt, prev.statusKey(), x)
			// Had the other run already stored its new refresh token? (The
			// retrying run has not written anything yet, so any successful
			// PUT of the refresh-token secret before the retry is the other's.)
			var lead time.Duration
			for _, q := range w.s.GitHub.Requests() {
				if q.Route == githubemu.RoutePutRepoSecret && q.Name == secretRT && q.Status/100 == 2 && q.End.Before(x.Start) {
					lead = max(lead, x.Start.Sub(q.End))
				}
			}
			if lead > 0 {
				s += fmt.Sprintf("; the other run's PUT %s had completed %s before this retry", secretRT, lead.Round(time.Millisecond))
			} else {
				s += fmt.Sprintf("; no PUT of %s had completed before this retry", secretRT)
			}
			if x.Status == http.StatusBadRequest && strings.Contains(x.OAuthErr.Description, "already used") {
				res.reuseByRetry = true
				res.winnerBefore = strings.Contains(x.Note, "RT active=true")
				res.winnerAfter = res.mintedActive > 0
				res.putLead = lead
				s += fmt.Sprintf("; afterwards minted RTs active: %d/%d", res.mintedActive, res.minted)
			}
			res.retries = append(res.retries, s)
		}
	}

	// The next scheduled run, fed whatever is stored now.
	fr := w.runQuiet(t, "follow-up", stored, "next")
	res.followUp = fr.o.ExitCode
	if fr.o.ExitCode == 0 && fr.o.Outputs["refreshed"] != "true" {
		t.Errorf("round %d: the follow-up run did not refresh: %s", round, describeRun("follow-up", fr))
	}

	// The round's key: per run its Hydra trail and exit (sorted, so that
	// a/b mirror images tally together), then the chain.
	per := make([]string, 2)
	for i, r := range runs {
		per[i] = fmt.Sprintf("[%s → exit %d]", trail(r.hydra), r.o.ExitCode)
	}
	sort.Strings(per)
	res.key = fmt.Sprintf("%s + %s | minted RTs active after: %d/%d | stored: %s, active=%v | follow-up run exit %d",
		per[0], per[1], res.mintedActive, res.minted, res.storedFrom, res.storedActive, res.followUp)

	// Invariants (hold in every round we have seen and follow from Hydra's
	// rotation rules; the distribution of outcomes does not).
	okRuns := 0
	for _, e := range res.exits {
		if e == 0 {
			okRuns++
		}
		switch e {
		case 0, run.ClassRevoked.ExitCode(), run.ClassHydraUnavailable.ExitCode(), run.ClassConcurrentRefresh.ExitCode():
		default:
			t.Errorf("round %d: exit %d is not one of 0/10/12/14: %s", round, e, res.key)
		}
	}
	if okRuns == 0 {
		t.Errorf("round %d: no run exited 0: %s", round, res.key)
	}
	if res.storedActive != (res.followUp == 0) {
		t.Errorf("round %d: stored RT active=%v but the follow-up run exited %d", round, res.storedActive, res.followUp)
	}
	if arm.grace == 0 && res.mintedActive > 1 {
		t.Errorf("round %d: grace 0 but %d minted refresh tokens are active", round, res.mintedActive)
	}
	if arm.grace > 0 {
		// Graceful rotation: nothing is ever revoked within the grace period,
		// whatever the interleaving: overlapping runs are survivable.
		if !res.storedActive || res.followUp != 0 || res.mintedActive != res.minted {
			t.Errorf("round %d: grace %s should keep every minted token and the stored chain alive: %s", round, arm.grace, res.key)
		}
	}
	if res.reuseByRetry && res.winnerAfter {
		t.Errorf("round %d: a retry was answered \"already used\" but a minted RT survived: %s", round, res.key)
	}
	if arm.blockRetry && arm.grace == 0 {
		// Without the retry, a 200 + 500 round leaves the winner's chain
		// stored and alive.
		for i, r := range runs {
			o := runs[1-i]
			if len(r.hydra) == 1 && r.hydra[0].Status == http.StatusOK && len(o.hydra) >= 1 && o.hydra[0].Status >= 500 {
				if !res.storedActive {
					t.Errorf("round %d: 200 + 5xx with the retry blocked, yet the chain died: %s", round, res.key)
				}
			}
		}
	}
	return res
}

// trail renders a run's attempts, e.g. "500 server_error → 400 invalid_grant (was already used)".
func trail(xs []exchange) string {
	if len(xs) == 0 {
		return "no token request"
	}
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = x.statusKey()
	}
	return strings.Join(parts, " → ")
}

// ---- scenario 4 ----------------------------------------------------------

func scenarioPATRejected(t *testing.T, p *probe, bin string, h *Hydra) {
	w := newWorld(t, bin, h)
	t0 := w.login(t)
	w.seed(t, t0)

	// The PAT expired / was revoked: every GitHub call answers 401.
	w.s.GitHub.RemoveToken(stack.PAT)
	w.s.GitHub.ResetRequests()
	r := w.run(t, p, "run with a revoked PAT", t0.RefreshToken, "pat")
	wantExit(t, r, run.ClassGitHubAuth.ExitCode())
	if len(r.hydra) != 0 {
		t.Errorf("the token endpoint was called %d time(s) although preflight failed", len(r.hydra))
	}
	var gh []string
	for _, q := range w.s.GitHub.Requests() {
		gh = append(gh, fmt.Sprintf("%s → %d", q.Route, q.Status))
		if q.Route == githubemu.RoutePutRepoSecret {
			t.Errorf("a secret was written with a rejected PAT")
		}
	}
	p.note(t, "GitHub saw: %s", strings.Join(gh, ", "))
	if msg := errorAnnotations(r.o.Stdout); !strings.Contains(msg, "not spent") {
		t.Errorf("the annotation should say the refresh token was not spent: %s", msg)
	}
	a := h.Introspect(t, t0.RefreshToken)
	p.note(t, "Hydra after the failed run: stored RT0 %s", introspection(a))
	if act, _ := a["active"].(bool); !act {
		t.Errorf("RT0 is not active after a preflight failure")
	}
	if w.stored(secretRT) != t0.RefreshToken {
		t.Errorf("stored refresh token changed")
	}

	// A new PAT is put in place; the next run, fed the same stored RT0, works.
	w.s.GitHub.AddToken(stack.PAT, githubemu.AllPermissions())
	r2 := w.run(t, p, "next run with a valid PAT, fed the same stored RT0", w.stored(secretRT), "next")
	wantExit(t, r2, 0)
	onlyExchange(t, r2, http.StatusOK)
	if !h.Active(t, w.stored(secretRT)) || w.stored(secretRT) == t0.RefreshToken {
		t.Errorf("the next run did not leave a new active refresh token stored")
	}
}

// ---- scenario 5 ----------------------------------------------------------

func scenarioWriteFails(t *testing.T, p *probe, bin string, h *Hydra) {
	w := newWorld(t, bin, h)
	t0 := w.login(t)
	w.seed(t, t0)
	keyID, _ := w.s.GitHub.PublicKey(githubemu.RepoScope(stack.Repo))

	fid := w.s.GitHub.Inject(githubemu.ServerError(githubemu.RoutePutRepoSecret, http.StatusBadGateway).ForName(secretRT))
	r := w.run(t, p, "run with every PUT of WIZARD_REFRESH_TOKEN answered 502", t0.RefreshToken, "put")
	wantExit(t, r, run.ClassNotStored.ExitCode())
	x := onlyExchange(t, r, http.StatusOK) // Hydra rotated exactly once
	rt1 := x.Tokens.RefreshToken
	p.note(t, "GitHub: %d PUT attempt(s) of %s answered 502; stored %s is still RT0: %v; %s/%s written: %v",
		w.s.GitHub.Hits(fid), secretRT, secretRT, w.stored(secretRT) == t0.RefreshToken, secretAT, secretExp, w.stored(secretAT) == x.Tokens.AccessToken)
	p.note(t, "Hydra: RT0 (still stored) active=%v; RT1 (only in the record) active=%v", h.Active(t, t0.RefreshToken), h.Active(t, rt1))
	if w.stored(secretRT) != t0.RefreshToken {
		t.Errorf("stored refresh token changed although every PUT failed")
	}
	if h.Active(t, t0.RefreshToken) || !h.Active(t, rt1) {
		t.Errorf("want RT0 used and RT1 active")
	}

	rec, err := ghsecrets.ParseRecord(r.o.Stdout)
	if err != nil {
		t.Fatalf("no recovery record in stdout: %v", err)
	}
	var names []string
	for _, s := range rec.Secrets {
		names = append(names, s.Name)
	}
	p.note(t, "recovery record printed: target %s, key %s, secrets %v, created %s", rec.Target(), rec.KeyID, names, rec.Created.Format(time.RFC3339))
	if len(rec.Secrets) == 0 || rec.Secrets[0].Name != secretRT || rec.KeyID != keyID || rec.Target().String() != (ghsecrets.Target{Owner: "amplitude", Repo: "wizard"}).String() {
		t.Errorf("recovery record: %+v", rec)
	}
	if !strings.Contains(r.o.Summary, ghsecrets.RecoveryPrefix) {
		t.Errorf("the step summary does not carry the recovery record")
	}

	// GitHub recovers; the user restores the record.
	w.s.GitHub.ClearFaults()
	how := restoreRecord(t, w, r.o.Stdout, rec)
	p.note(t, "restored with %s: stored %s is RT1: %v", how, secretRT, w.stored(secretRT) == rt1)
	if w.stored(secretRT) != rt1 {
		t.Fatalf("after the restore the stored refresh token is not RT1")
	}

	r2 := w.run(t, p, "next run, fed the restored RT1", w.stored(secretRT), "next")
	wantExit(t, r2, 0)
	onlyExchange(t, r2, http.StatusOK)
	if !h.Active(t, w.stored(secretRT)) || !h.Active(t, w.stored(secretAT)) {
		t.Errorf("after the next run the stored chain is not active")
	}
}

// restoreRecord restores a recovery record: with the bootstrap's restore
// command when the repository has one, else by replaying the record's
// sealed values with ghsecrets.PutSealed (what the command does).
func restoreRecord(t *testing.T, w *world, stdout string, rec *ghsecrets.Record) string {
	t.Helper()
	if how, ok := restoreWithBootstrap(t, w, stdout); ok {
		return how
	}
	c, err := ghsecrets.New(ghsecrets.Options{APIURL: w.s.GitHubURL, Token: stack.PAT, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, s := range rec.Secrets {
		if err := c.PutSealed(ctx, rec.Target(), rec.KeyID, s); err != nil {
			t.Fatalf("restore %s: %v", s.Name, err)
		}
	}
	return "ghsecrets.PutSealed replaying the record (cmd/bootstrap has no restore command yet)"
}

// ---- scenario 6 ----------------------------------------------------------

func scenarioAlwaysRotates(t *testing.T, p *probe, bin string, hs ...*Hydra) {
	p.note(t, "Hydra v2.3.0 cannot be configured without refresh-token rotation: fosite v0.49.0's refresh handler always mints, rotates and returns a new refresh token; the only knob is oauth2.grant.refresh_token.rotation_grace_period (≤ 5m); ory/hydra PR #2815 (a rotation switch) was closed in favour of the grace period (OBSERVATIONS.md (e)). So the action's non-rotating path (rotated=false, refresh token not rewritten) can only be exercised on the emulator (hydraemu Client.DisableRotation).")
	for _, h := range hs {
		w := newWorld(t, bin, h)
		t0 := w.login(t)
		w.seed(t, t0)
		seen := map[string]bool{t0.RefreshToken: true}
		rt := t0.RefreshToken
		for i := 1; i <= 3; i++ {
			r := w.runQuiet(t, fmt.Sprintf("run %d", i), rt, fmt.Sprintf("run%d", i))
			wantExit(t, r, 0)
			next := w.stored(secretRT)
			if r.o.Outputs["rotated"] != "true" {
				t.Errorf("grace %s run %d: output rotated=%q", h.Opts.GracePeriod, i, r.o.Outputs["rotated"])
			}
			if seen[next] {
				t.Errorf("grace %s run %d: the stored refresh token was not new", h.Opts.GracePeriod, i)
			}
			seen[next] = true
			rt = next
		}
		p.note(t, "grace %s: 3 runs in a row → rotated=true every time, %d distinct refresh tokens stored (incl. the bootstrapped one); the last is active=%v",
			h.Opts.GracePeriod, len(seen), h.Active(t, rt))
	}
}

// ---- the world of one scenario -------------------------------------------

// world is one scenario's setup: a GitHub emulator (stack) holding the
// secrets, a client and a recording proxy on the given real Hydra.
type world struct {
	h   *Hydra
	c   Client
	s   *stack.Stack
	px  *tokenProxy
	bin string

	mu    sync.Mutex
	known []string // tokens obtained outside the action (logins)
}

func newWorld(t *testing.T, bin string, h *Hydra) *world {
	t.Helper()
	s, err := stack.Start(stack.Options{})
	if err != nil {
		t.Fatalf("start the GitHub emulator: %v", err)
	}
	t.Cleanup(s.Close)
	return &world{h: h, c: h.CreatePublicClient(t), s: s, px: newTokenProxy(t, h), bin: bin}
}

// login mints a fresh chain on Hydra (headless authorization code + PKCE).
func (w *world) login(t *testing.T) Tokens {
	t.Helper()
	tk := w.h.Login(t, w.c)
	w.mu.Lock()
	w.known = append(w.known, tk.AccessToken, tk.RefreshToken, tk.IDToken)
	w.mu.Unlock()
	return tk
}

// seed stores a chain the way a bootstrap leaves it: the three secrets,
// last written an hour ago (before any run starts).
func (w *world) seed(t *testing.T, tk Tokens) {
	t.Helper()
	at := time.Now().Add(-time.Hour)
	scope := githubemu.RepoScope(stack.Repo)
	w.s.GitHub.SetSecret(scope, secretRT, tk.RefreshToken, at)
	w.s.GitHub.SetSecret(scope, secretAT, tk.AccessToken, at)
	w.s.GitHub.SetSecret(scope, secretExp, time.Now().Add(time.Duration(tk.ExpiresIn)*time.Second).UTC().Format(time.RFC3339), at)
}

func (w *world) stored(name string) string { return w.s.Stored(name) }

// inputs are a scheduled run's inputs against real Hydra (through the proxy).
func (w *world) inputs(rt, label string) map[string]string {
	return map[string]string{
		"refresh-token":  rt,
		"github-token":   stack.PAT,
		"repository":     stack.Repo,
		"token-url":      w.px.TokenURL(label),
		"client-id":      w.c.ID,
		"hydra-timeout":  "10s",
		"github-timeout": "5s",
	}
}

// laterSecond waits, if needed, until the clock is in a later second than
// the last write of the refresh-token secret. A run is a new workflow run
// that starts now (stack.Run), and GitHub's timestamps have whole seconds:
// the action's stale-secret guard (run.runner.stale) treats a secret
// updated in the same second as the run's start as rotated by another run
// and skips. A scheduled run an hour later never meets that; back-to-back
// runs here would, so each sequential run starts in the next second.
func (w *world) laterSecond(t *testing.T) {
	t.Helper()
	sec, ok := w.s.GitHub.Secret(githubemu.RepoScope(stack.Repo), secretRT)
	if !ok {
		return
	}
	next := sec.UpdatedAt.Truncate(time.Second).Add(time.Second)
	if d := time.Until(next); d > 0 {
		time.Sleep(d + 20*time.Millisecond)
	}
}

// runResult is one action run and what Hydra saw from it.
type runResult struct {
	label string
	o     *stack.Outcome
	hydra []exchange
}

// run runs the action once, fed rt, notes the outcome and scans it for leaks.
func (w *world) run(t *testing.T, p *probe, what, rt, label string) *runResult {
	t.Helper()
	r := w.runQuiet(t, what, rt, label)
	p.note(t, "%s", describeRun(what, r))
	return r
}

// runQuiet is run without the note.
func (w *world) runQuiet(t *testing.T, what, rt, label string) *runResult {
	t.Helper()
	w.laterSecond(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	o, err := w.s.Run(ctx, w.bin, t.TempDir(), w.inputs(rt, label))
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	r := &runResult{label: label, o: o, hydra: w.px.Exchanges(label)}
	w.leakCheck(t, what, r)
	return r
}

// leakCheck: no token value (raw, base64, URL-encoded, any 8-character
// piece) in stdout (minus ::add-mask::), stderr, the summary or
// GITHUB_OUTPUT (minus the masked access-token output).
func (w *world) leakCheck(t *testing.T, what string, r *runResult) {
	t.Helper()
	w.mu.Lock()
	secrets := append([]string{stack.PAT}, w.known...)
	w.mu.Unlock()
	secrets = append(secrets, w.px.Minted()...)
	var nonEmpty []string
	for _, s := range secrets {
		if s != "" {
			nonEmpty = append(nonEmpty, s)
		}
	}
	if leaks := matrix.Leaks(nonEmpty, r.o); len(leaks) > 0 {
		t.Errorf("%s: %d leak(s): %s", what, len(leaks), strings.Join(leaks, "; "))
	}
}

// ---- helpers --------------------------------------------------------------

func describeRun(what string, r *runResult) string {
	var b strings.Builder
	class := "ok"
	if r.o.ExitCode != 0 {
		class = run.Class(r.o.ExitCode).String()
	}
	fmt.Fprintf(&b, "%s: exit %d (%s) in %s", what, r.o.ExitCode, class, r.o.Duration.Round(time.Millisecond))
	if len(r.o.Outputs) > 0 {
		fmt.Fprintf(&b, "; outputs refreshed=%s rotated=%s expires-at=%s", r.o.Outputs["refreshed"], r.o.Outputs["rotated"], r.o.Outputs["expires-at"])
	}
	if len(r.hydra) == 0 {
		b.WriteString("; Hydra: no token request")
	} else {
		b.WriteString("; Hydra:")
		for _, x := range r.hydra {
			fmt.Fprintf(&b, " %s", x)
		}
	}
	if e := errorAnnotations(r.o.Stdout); e != "" {
		fmt.Fprintf(&b, "\n%s", e)
	}
	return b.String()
}

// errorAnnotations returns the ::error lines of a run's stdout (without the
// recovery record's long token, which is checked separately).
func errorAnnotations(stdout string) string {
	var out []string
	for _, l := range strings.Split(stdout, "\n") {
		if strings.HasPrefix(l, "::error") {
			if i := strings.Index(l, ghsecrets.RecoveryPrefix); i >= 0 {
				l = l[:i] + ghsecrets.RecoveryPrefix + "…"
			}
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func wantExit(t *testing.T, r *runResult, code int) {
	t.Helper()
	if r.o.ExitCode != code {
		t.Fatalf("run %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.label, r.o.ExitCode, code, r.o.Stdout, r.o.Stderr)
	}
}

// onlyExchange asserts the run made exactly one token request, answered status.
func onlyExchange(t *testing.T, r *runResult, status int) exchange {
	t.Helper()
	if len(r.hydra) != 1 {
		t.Fatalf("run %s made %d token request(s), want 1: %s", r.label, len(r.hydra), trail(r.hydra))
	}
	x := r.hydra[0]
	if x.Status != status || (status == http.StatusOK && x.Tokens == nil) {
		t.Fatalf("run %s: Hydra answered %s, want %d", r.label, x, status)
	}
	return x
}

// wantExpiry checks the stored expiry: RFC 3339, equal to the output, and
// issue time + expires_in (within the run's duration and rounding).
func wantExpiry(t *testing.T, stored string, expiresIn int64, o *stack.Outcome) {
	t.Helper()
	if stored != o.Outputs["expires-at"] {
		t.Errorf("stored expiry %q, output %q", stored, o.Outputs["expires-at"])
	}
	exp, err := time.Parse(time.RFC3339, stored)
	if err != nil {
		t.Errorf("stored expiry %q: %v", stored, err)
		return
	}
	want := time.Now().Add(time.Duration(expiresIn) * time.Second)
	if d := exp.Sub(want); d > 5*time.Second || d < -(o.Duration+5*time.Second) {
		t.Errorf("stored expiry %s, want about now + expires_in %ds (%s)", stored, expiresIn, want.UTC().Format(time.RFC3339))
	}
}

// cannotRun fails the scenario when CI=true and skips it otherwise: in CI a
// scenario that cannot run is a failure, not a skip.
func cannotRun(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("CI") == "true" {
		t.Fatalf("scenario cannot run (a failure because CI=true): %s", msg)
	}
	t.Skipf("scenario cannot run: %s (this is a failure when CI=true)", msg)
}

func envInt(t *testing.T, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

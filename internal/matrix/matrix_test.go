package matrix

import (
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
)

// secret has characters that base64 and URL encoding change, so each form
// differs from the raw value.
const secret = "ory_rt_Zx9+/q=Ab?c&d%20ef~0123456789"

// forms are the leaks the scan must catch, by name.
func forms() map[string]string {
	b := []byte(secret)
	return map[string]string{
		"raw":              secret,
		"base64 std":       base64.StdEncoding.EncodeToString(b),
		"base64 raw std":   base64.RawStdEncoding.EncodeToString(b),
		"base64 url":       base64.URLEncoding.EncodeToString(b),
		"base64 raw url":   base64.RawURLEncoding.EncodeToString(b),
		"url-encoded":      url.QueryEscape(secret),
		"8-char substring": secret[13:21],
		"8-char suffix":    secret[len(secret)-8:],
	}
}

// streams put text into one output stream of an outcome each.
var streams = map[string]func(o *stack.Outcome, text string){
	"stdout":  func(o *stack.Outcome, text string) { o.Stdout = "Target: x\n" + text + "\n" },
	"stderr":  func(o *stack.Outcome, text string) { o.Stderr = "panic: " + text },
	"summary": func(o *stack.Outcome, text string) { o.Summary = "| Status | " + text + " |\n" },
	"outputs": func(o *stack.Outcome, text string) {
		o.OutputFile = "rotated=true\nexpires-at=" + text + "\n"
		o.Outputs = map[string]string{"rotated": "true", "expires-at": text}
	},
}

func clean() *stack.Outcome {
	return &stack.Outcome{
		Stdout:     "Target: repository amplitude/wizard\n::notice title=Token refreshed::Token refreshed\n",
		Summary:    "## Wizard OAuth refresh\n",
		OutputFile: "rotated=true\n",
		Outputs:    map[string]string{"rotated": "true"},
	}
}

func TestLeaksCatchesEveryFormInEveryStream(t *testing.T) {
	t.Parallel()
	for formName, form := range forms() {
		for streamName, put := range streams {
			o := clean()
			put(o, "prefix "+form+" suffix")
			leaks := Leaks([]string{"unrelated-secret-value", secret}, o)
			if len(leaks) != 1 || !strings.HasPrefix(leaks[0], streamName+" ") {
				t.Errorf("%s in %s: leaks = %q, want one in %s", formName, streamName, leaks, streamName)
			}
		}
	}
}

func TestLeaksIgnoresMaskCommandsAndTheAccessTokenOutput(t *testing.T) {
	t.Parallel()
	o := clean()
	o.Stdout = "::add-mask::" + secret + "\n::add-mask::" + base64.StdEncoding.EncodeToString([]byte(secret)) + "\n" + o.Stdout
	// The masked access-token output is meant to carry the access token,
	// heredoc form included.
	o.OutputFile += "access-token<<ghadelimiter_1\n" + secret + "\nghadelimiter_1\n"
	o.Outputs["access-token"] = secret
	if leaks := Leaks([]string{secret}, o); len(leaks) != 0 {
		t.Fatalf("leaks = %q, want none", leaks)
	}
	if leaks := Leaks([]string{secret, "", secret}, clean()); len(leaks) != 0 {
		t.Fatalf("clean outcome: leaks = %q", leaks)
	}

	// A mask command does not hide the same value on another line, and the
	// access-token output does not excuse another output carrying it.
	o.Stdout += "oops " + secret + "\n"
	o.OutputFile += "other=" + secret + "\n"
	leaks := Leaks([]string{secret}, o)
	if len(leaks) != 2 || !strings.Contains(strings.Join(leaks, "\n"), "stdout ") || !strings.Contains(strings.Join(leaks, "\n"), "outputs ") {
		t.Fatalf("leaks = %q, want one in stdout and one in outputs", leaks)
	}
	o2 := clean()
	o2.OutputFile += "access-token=at-0123456789\nother=" + secret + "\n"
	o2.Outputs["access-token"] = "at-0123456789"
	if leaks := Leaks([]string{secret}, o2); len(leaks) != 1 || !strings.HasPrefix(leaks[0], "outputs ") {
		t.Fatalf("leaks = %q, want one in outputs", leaks)
	}
}

func TestLeaksNeverQuotesTheSecret(t *testing.T) {
	t.Parallel()
	o := clean()
	o.Stdout += secret
	for _, l := range Leaks([]string{secret}, o) {
		for i := 0; i+8 <= len(secret); i++ {
			if strings.Contains(l, secret[i:i+8]) {
				t.Fatalf("leak report %q quotes the secret", l)
			}
		}
	}
}

func TestTableTally(t *testing.T) {
	t.Parallel()
	rows := []*Row{
		{Case: &Case{Name: "ok", Group: "run", WantAlive: true}, ChainAlive: true},
		{Case: &Case{Name: "lost, unavoidable", Group: "hydra", Unavoidable: "Hydra committed"}, Exit: 10, Class: "x"},
		{Case: &Case{Name: "lost | avoidable", Group: "github", WantAlive: true}, Exit: 30, Problems: []string{"chain alive false, want true"}},
		{Case: &Case{Name: "leaky", Group: "input", WantAlive: true}, ChainAlive: true, Leaks: []string{"a", "b"}, Problems: []string{"2 leaks"}},
	}
	table := Table(rows)
	want := "4 cases: 2 passed, 2 failed; 2 leaks; 1 avoidable chain losses (1 unavoidable, explained in their rows)."
	if !strings.Contains(table, want) {
		t.Fatalf("tally missing %q:\n%s", want, table)
	}
	if !strings.Contains(table, "no: unavoidable (Hydra committed)") || !strings.Contains(table, `lost \| avoidable`) {
		t.Fatalf("table rows:\n%s", table)
	}
}

// TestCases checks the matrix itself: unique names, known groups, a reason
// exactly for the cases that expect a lost chain, and at least what the
// issue asks for.
func TestCases(t *testing.T) {
	t.Parallel()
	cases := Cases()
	if len(cases) < 40 {
		t.Fatalf("%d cases, want at least 40", len(cases))
	}
	seen := map[string]bool{}
	for _, c := range cases {
		if seen[c.Name] {
			t.Errorf("duplicate case %q", c.Name)
		}
		seen[c.Name] = true
		switch c.Group {
		case "run", "input", "hydra", "github":
		default:
			t.Errorf("%s: unknown group %q", c.Name, c.Group)
		}
		if (c.Unavoidable != "") == c.WantAlive {
			t.Errorf("%s: WantAlive %v with Unavoidable %q", c.Name, c.WantAlive, c.Unavoidable)
		}
		if c.Group == "input" && (c.WantExit != 2 || c.WantHydra) {
			t.Errorf("%s: an input case must exit 2 without calling Hydra", c.Name)
		}
	}
}

// TestLeaksJWT: a JWT's signature is scanned window by window; its header
// and payload (base64 of JSON, alike in any base64 JSON such as a recovery
// record) are caught only whole or encoded.
func TestLeaksJWT(t *testing.T) {
	t.Parallel()
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"RS256","kid":"hydraemu","typ":"JWT"}`))
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sid":"1f2e3d","sub":"emulated-user"}`))
	sig := "Qm9ndXNTaWduYXR1cmVfMDEyMzQ1Njc4OWFiY2RlZg"
	jwt := header + "." + payload + "." + sig
	cases := map[string]struct {
		text string
		want int
	}{
		"whole token":             {jwt, 1},
		"signature window":        {"x" + sig[10:18] + "x", 1},
		"header window only":      {"x" + header[0:8] + "x", 0},
		"payload window only":     {"x" + payload[4:12] + "x", 0},
		"base64 of the whole jwt": {base64.StdEncoding.EncodeToString([]byte(jwt)), 1},
	}
	for name, tc := range cases {
		o := clean()
		o.Stdout += tc.text + "\n"
		if got := len(Leaks([]string{jwt}, o)); got != tc.want {
			t.Errorf("%s: %d leaks, want %d", name, got, tc.want)
		}
	}
}

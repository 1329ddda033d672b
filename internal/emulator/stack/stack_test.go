package stack

import (
	"context"
	"testing"
)

func TestTwoScheduledRuns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	bin, err := Build(ctx, "../../..", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := Start(Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	prev := s.Stored("WIZARD_REFRESH_TOKEN")
	for i := range 2 {
		o, err := s.Run(ctx, bin, t.TempDir(), s.Inputs())
		if err != nil {
			t.Fatal(err)
		}
		if o.ExitCode != 0 {
			t.Fatalf("run %d: exit %d\n%s%s", i, o.ExitCode, o.Stdout, o.Stderr)
		}
		got := s.Stored("WIZARD_REFRESH_TOKEN")
		if got == prev || !s.ChainAlive() {
			t.Fatalf("run %d: refresh token not rotated or chain dead\n%s", i, o.Stdout)
		}
		if o.Outputs["rotated"] != "true" || o.Outputs["refreshed"] != "true" || o.Outputs["access-token"] != s.Stored("WIZARD_OAUTH_TOKEN") {
			t.Fatalf("run %d: outputs %v", i, o.Outputs)
		}
		prev = got
		t.Logf("run %d stdout:\n%s\nsummary:\n%s", i, o.Stdout, o.Summary)
	}
}

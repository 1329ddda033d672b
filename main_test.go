package main

import (
	"context"
	"os"
	"testing"

	"github.com/amplitude/wizard-oauth-refresh/internal/emulator/stack"
	"github.com/amplitude/wizard-oauth-refresh/internal/matrix"
)

// binary is the action compiled once for the process tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "wizard-e2e-")
	if err != nil {
		panic(err)
	}
	binary, err = stack.Build(context.Background(), ".", dir)
	if err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestFaultMatrix runs the real binary as a process, the way the runner
// runs a container action, for every case of the fault matrix: exit code
// and class, whether Hydra was called, whether the stored refresh token
// still works, and a leak scan of every output stream.
func TestFaultMatrix(t *testing.T) {
	t.Parallel()
	for _, c := range matrix.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			row := matrix.Run(context.Background(), binary, t.TempDir(), c)
			if !row.Pass() {
				out := ""
				if row.Outcome != nil {
					out = row.Outcome.Stdout + row.Outcome.Stderr
				}
				t.Fatalf("%v\n--- output ---\n%s", row.Problems, out)
			}
		})
	}
}

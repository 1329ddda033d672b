//go:build realhydra && linux

package realhydra

import "syscall"

// sysProcAttr makes the kernel SIGKILL Hydra if the test binary dies without
// running its cleanups (panic, timeout, kill), so no Hydra outlives a run.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

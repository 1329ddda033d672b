//go:build realhydra && !linux

package realhydra

import "syscall"

func sysProcAttr() *syscall.SysProcAttr { return nil }

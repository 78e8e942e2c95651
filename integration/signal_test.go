package integration

import "syscall"

const (
	sigint  = syscall.SIGINT
	sigterm = syscall.SIGTERM
)

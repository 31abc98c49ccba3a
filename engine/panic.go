package engine

import (
	"fmt"
	"runtime/debug"
)

// PanicError is a panic recovered while a job ran: in the runner, in the
// pipeline's own goroutine, or in one of its stages. The job fails with
// internal_error and the daemon goes on. It deliberately does not unwrap
// to the panic's value, so no code in that value changes the job's.
type PanicError struct {
	Where string // what was running: "decode stage", "processor", …
	Value any    // what was passed to panic
	Stack []byte // the panicking goroutine's stack
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic in %s: %v", e.Where, e.Value) }

// recovered turns a recover() value into a *PanicError; nil stays nil. Call
// it from the deferred function that recovers, so the stack is the
// panicking goroutine's.
func recovered(where string, v any) error {
	if v == nil {
		return nil
	}
	return &PanicError{Where: where, Value: v, Stack: debug.Stack()}
}

// protect runs f and returns a panic in it as a *PanicError.
func protect(where string, f func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = recovered(where, v)
		}
	}()
	return f()
}

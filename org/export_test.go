package org

import "io"

// WithRand makes sv draw phone codes from r, so a test can force a repeated code.
func WithRand(sv Service, r io.Reader) Service { sv.rand = r; return sv }

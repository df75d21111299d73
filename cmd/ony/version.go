package main

import (
	"fmt"
	"io"

	"github.com/ony-ai/ony/internal/version"
)

// cmdVersion is `ony version`: which build this is (also in `ony mcp`'s server info).
func cmdVersion(args []string, stdout io.Writer) error {
	if len(args) > 0 {
		return usageErr("usage: ony version")
	}
	_, err := fmt.Fprintln(stdout, version.Get())
	return err
}

// Command configref rewrites the configuration reference in docs/operations.md from the schema
// (config.Default, the yaml tags and the env names they give) and configs/ony.example.yaml.
//
// Run it with `go generate ./config` (or `go run ./internal/configref` from anywhere in the module);
// -check only says whether the table is current.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/ony-ai/ony/config"
)

func main() {
	check := flag.Bool("check", false, "exit 1 if docs/operations.md's table is stale instead of rewriting it")
	flag.Parse()
	if err := run(*check); err != nil {
		fmt.Fprintln(os.Stderr, "configref:", err)
		os.Exit(1)
	}
}

func run(check bool) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	example, err := os.ReadFile(filepath.Join(root, "configs", "ony.example.yaml"))
	if err != nil {
		return err
	}
	table, err := config.Reference(example)
	if err != nil {
		return err
	}
	docPath := filepath.Join(root, "docs", "operations.md")
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	out, err := config.SpliceReference(doc, table)
	if err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	if bytes.Equal(out, doc) {
		return nil
	}
	if check {
		return fmt.Errorf("%s: the configuration reference is stale; run `go generate ./config`", docPath)
	}
	return os.WriteFile(docPath, out, 0o644)
}

// moduleRoot is the nearest directory at or above the working directory holding go.mod, so the
// command works from the module root and from config/ (where go generate runs it).
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}

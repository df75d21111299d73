package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/ony-ai/ony/client"
)

// agentFlags are how the agent-side commands (request, hook, mcp) find the server and their token:
// flags first, then ONY_URL / ONY_TOKEN (or ONY_TOKEN_FILE), then the client config file
// ($ONY_CLIENT_CONFIG, default ~/.config/ony/agent.yaml: `url:`, `token:` or `token_file:`).
type agentFlags struct {
	url, token, config *string
}

func addAgentFlags(fs *flag.FlagSet) agentFlags {
	return agentFlags{
		url:    fs.String("url", "", "Ony server URL (or ONY_URL)"),
		token:  fs.String("token", "", "device token (or ONY_TOKEN / ONY_TOKEN_FILE; prefer those: flags show in ps)"),
		config: fs.String("client-config", "", "agent config file (or ONY_CLIENT_CONFIG; default ~/.config/ony/agent.yaml)"),
	}
}

type agentFile struct {
	URL       string `yaml:"url"`
	Token     string `yaml:"token"`
	TokenFile string `yaml:"token_file"`
}

// resolve returns the server URL and token, or a readable error naming what is missing.
func (a agentFlags) resolve() (url, token string, err error) {
	url, token = *a.url, *a.token
	if url == "" {
		url = os.Getenv("ONY_URL")
	}
	if token == "" {
		token = os.Getenv("ONY_TOKEN")
	}
	if token == "" {
		if f := os.Getenv("ONY_TOKEN_FILE"); f != "" {
			b, err := os.ReadFile(f)
			if err != nil {
				return "", "", fmt.Errorf("ONY_TOKEN_FILE: %w", err)
			}
			token = strings.TrimSpace(string(b))
		}
	}
	if url == "" || token == "" {
		path := *a.config
		if path == "" {
			path = os.Getenv("ONY_CLIENT_CONFIG")
		}
		explicit := path != ""
		if path == "" {
			if home, err := os.UserHomeDir(); err == nil {
				path = filepath.Join(home, ".config", "ony", "agent.yaml")
			}
		}
		if path != "" {
			data, err := os.ReadFile(path)
			switch {
			case err == nil:
				var f agentFile
				dec := yaml.NewDecoder(bytes.NewReader(data))
				dec.KnownFields(true)
				if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) { // empty file: nothing set
					return "", "", fmt.Errorf("%s: %w", path, err)
				}
				if url == "" {
					url = f.URL
				}
				if token == "" && f.Token != "" {
					token = f.Token
				}
				if token == "" && f.TokenFile != "" {
					b, err := os.ReadFile(f.TokenFile)
					if err != nil {
						return "", "", fmt.Errorf("%s: token_file: %w", path, err)
					}
					token = strings.TrimSpace(string(b))
				}
			case explicit || !errors.Is(err, os.ErrNotExist):
				return "", "", fmt.Errorf("client config: %w", err)
			}
		}
	}
	switch {
	case url == "" && token == "":
		return "", "", errors.New("no server URL and no token: set ONY_URL and ONY_TOKEN (or --url/--token, or ~/.config/ony/agent.yaml)")
	case url == "":
		return "", "", errors.New("no server URL: set ONY_URL (or --url)")
	case token == "":
		return "", "", errors.New("no device token: set ONY_TOKEN or ONY_TOKEN_FILE (create one with `ony admin create-device`)")
	}
	return url, token, nil
}

// client builds the agent API client.
func (a agentFlags) client() (*client.Client, error) {
	url, token, err := a.resolve()
	if err != nil {
		return nil, err
	}
	return client.New(url, token, nil)
}

package main

import (
	"log/slog"

	"github.com/ony-ai/ony/config"
)

// warnUnknownEnv logs each ONY_ variable Ony does not read: a misspelt ONY_DATABSE_URL would
// otherwise leave a server quietly on SQLite. It names the variable and the nearest known name, never
// the value, which may be a secret.
func warnUnknownEnv(logger *slog.Logger, environ []string) {
	for _, u := range config.UnknownEnv(environ) {
		logger.Warn("unknown environment variable, ignored; `ony config check` lists them all",
			"variable", u.Name, "nearest_known", u.Nearest)
	}
}

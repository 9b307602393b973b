package consensus

import (
	"context"
	"log/slog"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// LogWriter hands the log lines hashicorp/raft writes to an io.Writer
// (its NetworkTransport and FileSnapshotStore take one; its hclog loggers
// write to one) to Logger at Level, one record per line.
type LogWriter struct {
	Logger *slog.Logger
	Level  slog.Level
}

func (w LogWriter) Write(p []byte) (int, error) {
	w.Logger.Log(context.Background(), w.Level, strings.TrimSpace(string(p)))
	return len(p), nil
}

// newHCLogger sends hashicorp/raft's logs (warnings and up) to slog.
func newHCLogger(l *slog.Logger) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: LogWriter{l.With("component", "raft"), slog.LevelWarn}, DisableTime: true})
}

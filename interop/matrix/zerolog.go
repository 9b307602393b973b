//go:build goolm

package matrix

import (
	"context"
	"encoding/json"
	"log/slog"

	"github.com/rs/zerolog"
)

// zerologSlog writes mautrix's zerolog records (one JSON object each) to
// the bridge's slog logger, so that what the encryption machine reports
// (a room key it could not store, an Olm message it could not decrypt)
// reaches the node's log instead of being discarded.
type zerologSlog struct{ l *slog.Logger }

// Write takes a record zerolog has no level for: logged at debug.
func (z zerologSlog) Write(p []byte) (int, error) {
	return z.WriteLevel(zerolog.DebugLevel, p)
}

// WriteLevel logs one zerolog record at its level, its fields as attributes.
func (z zerologSlog) WriteLevel(level zerolog.Level, p []byte) (int, error) {
	lvl := slog.LevelDebug
	switch {
	case level >= zerolog.ErrorLevel && level <= zerolog.PanicLevel:
		lvl = slog.LevelError
	case level == zerolog.WarnLevel:
		lvl = slog.LevelWarn
	case level == zerolog.InfoLevel:
		lvl = slog.LevelInfo
	}
	ctx := context.Background()
	if !z.l.Enabled(ctx, lvl) {
		return len(p), nil
	}
	var fields map[string]any
	if err := json.Unmarshal(p, &fields); err != nil {
		z.l.Log(ctx, lvl, "mautrix: "+string(p))
		return len(p), nil
	}
	msg, _ := fields[zerolog.MessageFieldName].(string)
	delete(fields, zerolog.MessageFieldName)
	delete(fields, zerolog.LevelFieldName)
	attrs := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		attrs = append(attrs, k, v)
	}
	z.l.Log(ctx, lvl, "mautrix: "+msg, attrs...)
	return len(p), nil
}

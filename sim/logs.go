package sim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	gosync "sync"
)

// nodeLogs keeps every node's log in a file of its own (one file per node,
// across restarts), so that a failing run can hand them over.
type nodeLogs struct {
	dir   string
	mu    gosync.Mutex
	files []*os.File
}

func newNodeLogs(dir string, n int) (*nodeLogs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sim: logs: %w", err)
	}
	l := &nodeLogs{dir: dir}
	for i := 0; i < n; i++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("node%d.log", i)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			l.Close()
			return nil, fmt.Errorf("sim: logs: %w", err)
		}
		l.files = append(l.files, f)
	}
	return l, nil
}

// Logger returns node i's logger (debug level: the logs are for whoever
// investigates a failure).
func (l *nodeLogs) Logger(i int) *slog.Logger {
	return slog.New(slog.NewTextHandler(&lockedWriter{l: l, i: i}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	l *nodeLogs
	i int
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.l.mu.Lock()
	defer w.l.mu.Unlock()
	if w.l.files == nil {
		return len(p), nil // closed: the run is over
	}
	return w.l.files[w.i].Write(p)
}

// Close closes the files; later log lines are dropped.
func (l *nodeLogs) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, f := range l.files {
		f.Close()
	}
	l.files = nil
}

// CopyTo copies the logs into dir and returns the files written.
func (l *nodeLogs) CopyTo(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	names, err := filepath.Glob(filepath.Join(l.dir, "*.log"))
	if err != nil {
		return nil, err
	}
	var out []string
	var errs []error
	for _, src := range names {
		dst := filepath.Join(dir, filepath.Base(src))
		if err := copyFile(src, dst); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, dst)
	}
	return out, errors.Join(errs...)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

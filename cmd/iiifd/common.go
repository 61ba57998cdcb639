package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/iiifd/iiifd/internal/config"
	"github.com/iiifd/iiifd/internal/progress"
)

// loadConfig binds the server's settings to fs (which may hold flags of
// its own already), fills them from the config file, the environment and
// args, and validates them. When ok is false the command ends with code
// (0 after -h).
func loadConfig(fs *flag.FlagSet, cfg *config.Config, args []string, stderr io.Writer) (code int, ok bool) {
	rest, code, ok := loadConfigArgs(fs, cfg, args, stderr)
	if ok && len(rest) > 0 {
		fmt.Fprintf(stderr, "%s: unexpected arguments %q\n", fs.Name(), rest)
		return 2, false
	}
	return code, ok
}

// loadConfigArgs is loadConfig for commands that take arguments after
// their flags, which it returns.
func loadConfigArgs(fs *flag.FlagSet, cfg *config.Config, args []string, stderr io.Writer) (rest []string, code int, ok bool) {
	cfg.Bind(fs)
	rest, err := config.Load(fs, args, os.Getenv)
	if errors.Is(err, flag.ErrHelp) {
		return nil, 0, false
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return nil, 2, false
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "%s: invalid configuration:\n%v\n", fs.Name(), err)
		return nil, 2, false
	}
	return rest, 0, true
}

// forEach runs fn on every item with jobs workers at once, in order of
// the list, showing progress labelled label on stderr, and returns the
// failures as "item: reason", sorted. fn returns "" on success. It stops
// handing out items when ctx ends.
func forEach(ctx context.Context, items []string, jobs int, label string, stderr io.Writer, fn func(string) string) []string {
	var (
		mu       sync.Mutex
		failures []string
		done     atomic.Int64
		wg       sync.WaitGroup
		next     = make(chan string)
		bar      = progress.New(stderr, label)
	)
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range next {
				if reason := fn(it); reason != "" {
					mu.Lock()
					failures = append(failures, it+": "+reason)
					mu.Unlock()
				}
				bar.Update(done.Add(1), int64(len(items)))
			}
		}()
	}
	for _, it := range items {
		if ctx.Err() != nil {
			break
		}
		next <- it
	}
	close(next)
	wg.Wait()
	bar.Done()
	sort.Strings(failures)
	return failures
}

// Package route combines sources: rules that send identifiers matching a
// pattern to their own root (a directory, a bucket, an origin), and the
// hash-prefix key layout that spreads a large bucket's keys over its
// partitions. Both are sources themselves, so the resolver and the
// service see one source whatever the configuration.
package route

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/iiifd/iiifd/internal/source"
)

// Match reports whether key matches pattern, where "*" matches any run of
// characters within one path segment and "**" any run across segments
// ("maps/**" matches every key under maps/). Other characters match
// themselves.
func Match(pattern, key string) bool {
	// One pass per pattern token over a row of "key[:j] is matched so
	// far": time len(pattern)*len(key), however many wildcards.
	row := make([]bool, len(key)+1)
	next := make([]bool, len(key)+1)
	row[0] = true
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "**"):
			for i+1 < len(pattern) && pattern[i+1] == '*' {
				i++
			}
			next[0] = row[0]
			for j := 1; j <= len(key); j++ {
				next[j] = row[j] || next[j-1]
			}
		case pattern[i] == '*':
			next[0] = row[0]
			for j := 1; j <= len(key); j++ {
				next[j] = row[j] || (next[j-1] && key[j-1] != '/')
			}
		default:
			next[0] = false
			for j := 1; j <= len(key); j++ {
				next[j] = row[j-1] && key[j-1] == pattern[i]
			}
		}
		row, next = next, row
	}
	return row[len(key)]
}

// ValidPattern reports whether p is a usable pattern: not empty, no more
// than 16 wildcards (matching stays cheap), no control characters.
func ValidPattern(p string) error {
	if p == "" || len(p) > 1024 {
		return errors.New("empty or too long")
	}
	if strings.Count(p, "*") > 16 {
		return errors.New("more than 16 wildcards")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return errors.New("control character")
		}
	}
	return nil
}

// Rule sends keys matching Pattern to Source.
type Rule struct {
	Pattern string
	Source  source.Source
}

// Router is a source that opens each key in the source of the first rule
// it matches, or in the fallback. Keys are passed on unchanged.
type Router struct {
	rules    []Rule
	fallback source.Source
}

var _ source.Source = (*Router)(nil)

// NewRouter returns a router; fallback may be nil (keys matching no rule
// are then not found).
func NewRouter(rules []Rule, fallback source.Source) (*Router, error) {
	for _, r := range rules {
		if err := ValidPattern(r.Pattern); err != nil {
			return nil, fmt.Errorf("root rule %q: %v", r.Pattern, err)
		}
	}
	return &Router{rules: rules, fallback: fallback}, nil
}

func (r *Router) pick(key string) source.Source {
	for _, rule := range r.rules {
		if Match(rule.Pattern, key) {
			return rule.Source
		}
	}
	return r.fallback
}

// Open opens key in its source.
func (r *Router) Open(ctx context.Context, key string) (*source.Object, error) {
	s := r.pick(key)
	if s == nil {
		return nil, fmt.Errorf("%w: %s matches no root", source.ErrNotFound, key)
	}
	return s.Open(ctx, key)
}

// Siblings lists in the source key belongs to, keeping only siblings
// that belong there too.
func (r *Router) Siblings(ctx context.Context, key string) ([]string, error) {
	s := r.pick(key)
	if s == nil {
		return nil, nil
	}
	keys, err := s.Siblings(ctx, key)
	if err != nil {
		return nil, err
	}
	out := keys[:0]
	for _, k := range keys {
		if r.pick(k) == s {
			out = append(out, k)
		}
	}
	return out, nil
}

// Layout places keys in a store: with widths [4, 2] the key
// 3972b16287e5.tif is stored as 3972/b1/3972b16287e5.tif. The folders
// are taken from the key's first segment (so a tile pyramid's files stay
// together under its identifier), which must be at least as long as the
// widths together; shorter keys are stored as they are.
type Layout struct {
	Widths []int
}

// ParseLayout parses "flat" (or "") and "hash:W1,W2,...".
func ParseLayout(s string) (Layout, error) {
	if s == "" || s == "flat" {
		return Layout{}, nil
	}
	spec, ok := strings.CutPrefix(s, "hash:")
	if !ok {
		return Layout{}, fmt.Errorf("key layout %q: want flat or hash:W1,W2,...", s)
	}
	var l Layout
	total := 0
	for _, w := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 || n > 16 {
			return Layout{}, fmt.Errorf("key layout %q: width %q is not 1..16", s, w)
		}
		total += n
		l.Widths = append(l.Widths, n)
	}
	if len(l.Widths) > 8 || total > 64 {
		return Layout{}, fmt.Errorf("key layout %q: too many folders", s)
	}
	return l, nil
}

// String returns the layout as ParseLayout reads it.
func (l Layout) String() string {
	if len(l.Widths) == 0 {
		return "flat"
	}
	ws := make([]string, len(l.Widths))
	for i, w := range l.Widths {
		ws[i] = strconv.Itoa(w)
	}
	return "hash:" + strings.Join(ws, ",")
}

func (l Layout) total() int {
	t := 0
	for _, w := range l.Widths {
		t += w
	}
	return t
}

// Key returns where key is stored. Only keys whose first segment starts
// with enough ASCII letters and digits (hashes, in practice) get the
// folders: another prefix could make a folder "." or "..", or cut a
// UTF-8 character in two (which object stores refuse in keys).
func (l Layout) Key(key string) string {
	first, _, _ := strings.Cut(key, "/")
	if len(l.Widths) == 0 || len(first) < l.total() || !alnum(first[:l.total()]) {
		return key
	}
	var b strings.Builder
	at := 0
	for _, w := range l.Widths {
		b.WriteString(first[at : at+w])
		b.WriteByte('/')
		at += w
	}
	b.WriteString(key)
	return b.String()
}

// alnum reports whether s is ASCII letters and digits only.
func alnum(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Unkey is the inverse of Key for keys Key produced.
func (l Layout) Unkey(stored string) string {
	if len(l.Widths) == 0 {
		return stored
	}
	rest := stored
	var folders []string
	for range l.Widths {
		f, r, ok := strings.Cut(rest, "/")
		if !ok {
			return stored
		}
		folders = append(folders, f)
		rest = r
	}
	if l.Key(rest) == stored && strings.Join(folders, "") == rest[:l.total()] {
		return rest
	}
	return stored
}

// WithLayout returns src with keys placed by l.
func WithLayout(src source.Source, l Layout) source.Source {
	if len(l.Widths) == 0 {
		return src
	}
	return &laidOut{src, l}
}

type laidOut struct {
	src source.Source
	l   Layout
}

func (s *laidOut) Open(ctx context.Context, key string) (*source.Object, error) {
	obj, err := s.src.Open(ctx, s.l.Key(key))
	if err != nil {
		return nil, err
	}
	obj.Key = key
	return obj, nil
}

func (s *laidOut) Siblings(ctx context.Context, key string) ([]string, error) {
	keys, err := s.src.Siblings(ctx, s.l.Key(key))
	for i, k := range keys {
		keys[i] = s.l.Unkey(k)
	}
	return keys, err
}

// Package disk is the local-disk cache tier: one file per entry under a
// directory, bounded by total size with least-recently-used eviction, written
// atomically and kept across restarts.
//
// Layout under Config.Dir:
//
//	data/<aa>/<idhash>/<namehash>   entries; aa is the first byte of idhash
//	tmp/                            files being written, and purged trees
//
// The 256-way fan-out keeps directories small, and all entries of one
// identifier share a directory, so a purge is one rename. Each entry file is
// the body followed by a small trailer (metadata as JSON, then a fixed
// footer with both lengths), so a hit is streamed straight from the file
// and a truncated or foreign file is recognised and dropped. One process at
// a time may use a directory.
package disk

import (
	"bufio"
	"container/list"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/iiifd/iiifd/internal/cache"
)

// Config configures a disk tier.
type Config struct {
	// Dir is the cache directory; it is created if missing.
	Dir string
	// MaxBytes bounds the total size of the entry files.
	MaxBytes int64
	// MaxEntryFraction is the largest share of MaxBytes one entry may take;
	// larger entries are not stored. Zero means 1/8.
	MaxEntryFraction float64
	// Sync makes Commit flush the file to stable storage before it becomes
	// visible, so that entries survive a power failure and not only a crash
	// of the process. It costs one fsync per entry.
	Sync bool
	// OnError, if set, is told about faults in background work (cleaning
	// and indexing the directory, eviction).
	OnError func(op string, err error)
}

// Validate reports whether the configuration is usable.
func (c Config) Validate() error {
	if c.Dir == "" {
		return errors.New("disk cache: Dir is required")
	}
	if c.MaxBytes <= 0 {
		return errors.New("disk cache: MaxBytes must be positive")
	}
	if c.MaxEntryFraction < 0 || c.MaxEntryFraction > 1 {
		return errors.New("disk cache: MaxEntryFraction must be within [0, 1]")
	}
	return nil
}

// touchEvery is how stale a file's modification time may get before a hit
// refreshes it; the times order the index rebuilt after a restart.
const touchEvery = time.Hour

// Tier is a disk cache tier.
type Tier struct {
	data, tmp string
	run       string // prefix of this process's temporary files
	maxBytes  int64
	maxEntry  int64
	sync      bool
	onError   func(op string, err error)
	counters  cache.Counters
	openTemp  func() (tempFile, error) // replaced by tests

	// fsMu orders renames into an identifier's directory (shared) against
	// removing or renaming that directory (exclusive).
	fsMu sync.RWMutex

	mu    sync.Mutex
	bytes int64
	lru   *list.List // front = most recent; values are *entry
	items map[string]*entry
	byID  map[string]map[string]*entry

	ready  chan struct{}
	stop   chan struct{}
	wg     sync.WaitGroup
	closed sync.Once
}

type entry struct {
	rel     string // data-relative path
	idDir   string // data-relative directory of the identifier
	size    int64
	touched time.Time
	el      *list.Element
}

var _ cache.Tier = (*Tier)(nil)

// New opens the cache directory, creating it if needed. Leftover temporary
// files are removed and existing entries indexed in the background; until
// that is done (see Ready) the tier already serves and stores entries.
func New(cfg Config) (*Tier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t := &Tier{
		data:     filepath.Join(cfg.Dir, "data"),
		tmp:      filepath.Join(cfg.Dir, "tmp"),
		run:      randomHex(8),
		maxBytes: cfg.MaxBytes,
		maxEntry: cache.EntryLimit(cfg.MaxBytes, cfg.MaxEntryFraction),
		sync:     cfg.Sync,
		onError:  cfg.OnError,
		lru:      list.New(),
		items:    make(map[string]*entry),
		byID:     make(map[string]map[string]*entry),
		ready:    make(chan struct{}),
		stop:     make(chan struct{}),
	}
	t.openTemp = func() (tempFile, error) { return os.CreateTemp(t.tmp, t.run+"-*") }
	for _, d := range []string{t.data, t.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("disk cache: %w", err)
		}
	}
	t.wg.Add(1)
	go t.background()
	return t, nil
}

// Ready is closed once leftovers are cleaned and the existing entries are
// indexed (and evicted down to the bound).
func (t *Tier) Ready() <-chan struct{} { return t.ready }

// Close stops the background work. The tier must not be used afterwards.
func (t *Tier) Close() error {
	t.closed.Do(func() { close(t.stop) })
	t.wg.Wait()
	return nil
}

// Name returns "disk".
func (t *Tier) Name() string { return "disk" }

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// paths returns the data-relative directory of key's identifier and the
// data-relative path of its file.
func paths(key cache.Key) (idDir, rel string) {
	id := cache.Hash(key.ID)
	idDir = filepath.Join(id[:2], id)
	return idDir, filepath.Join(idDir, cache.Hash(key.ID, key.Name))
}

func (t *Tier) fault(op string, err error) {
	t.counters.Errors.Add(1)
	if t.onError != nil {
		t.onError(op, err)
	}
}

// The trailer that follows the body.
const (
	footerLen   = 16
	footerMagic = "iiifdc1\n"
	maxMetaLen  = 1 << 20
)

type record struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	ContentType  string    `json:"type"`
	ETag         string    `json:"etag"`
	LastModified time.Time `json:"mtime"`
}

// errCorrupt marks a file that is not a complete entry of the key.
var errCorrupt = errors.New("disk cache: corrupt or foreign entry")

// Get opens the entry for key; its body is streamed from the file.
func (t *Tier) Get(_ context.Context, key cache.Key) (*cache.Hit, error) {
	idDir, rel := paths(key)
	f, err := os.Open(filepath.Join(t.data, rel))
	if err != nil {
		t.counters.Misses.Add(1)
		if errors.Is(err, fs.ErrNotExist) {
			t.forget(rel)
			return nil, cache.ErrMiss
		}
		t.counters.Errors.Add(1)
		return nil, err
	}
	meta, size, err := readTrailer(f, key)
	if err != nil {
		f.Close()
		t.counters.Misses.Add(1)
		if errors.Is(err, errCorrupt) {
			// A half-written file from a crash (or power loss without
			// Sync), or a hash collision: never serve it.
			t.removeFile(rel)
			return nil, cache.ErrMiss
		}
		t.counters.Errors.Add(1)
		return nil, err
	}
	t.counters.Hits.Add(1)
	if t.touch(idDir, rel, size) {
		now := time.Now()
		os.Chtimes(f.Name(), now, now) // best effort: only orders a rebuilt index
	}
	return &cache.Hit{
		Meta: meta,
		Body: &fileBody{SectionReader: io.NewSectionReader(f, 0, meta.Size), f: f},
		Tier: t.Name(),
	}, nil
}

type fileBody struct {
	*io.SectionReader
	f *os.File
}

func (b *fileBody) Close() error { return b.f.Close() }

// readTrailer checks that f is a complete entry of key and returns its
// metadata and file size.
func readTrailer(f *os.File, key cache.Key) (cache.Meta, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return cache.Meta{}, 0, err
	}
	size := st.Size()
	if !st.Mode().IsRegular() || size < footerLen {
		return cache.Meta{}, 0, errCorrupt
	}
	var foot [footerLen]byte
	if _, err := f.ReadAt(foot[:], size-footerLen); err != nil {
		return cache.Meta{}, 0, err
	}
	if string(foot[:8]) != footerMagic {
		return cache.Meta{}, 0, errCorrupt
	}
	body := int64(binary.BigEndian.Uint64(foot[8:16]))
	metaLen := size - footerLen - body
	if body < 0 || metaLen <= 0 || metaLen > maxMetaLen {
		return cache.Meta{}, 0, errCorrupt
	}
	buf := make([]byte, metaLen)
	if _, err := f.ReadAt(buf, body); err != nil {
		return cache.Meta{}, 0, err
	}
	var r record
	if json.Unmarshal(buf, &r) != nil || r.ID != key.ID || r.Name != key.Name {
		return cache.Meta{}, 0, errCorrupt
	}
	return cache.Meta{ContentType: r.ContentType, ETag: r.ETag, LastModified: r.LastModified, Size: body}, size, nil
}

// touch marks rel as just used, indexing it if the background scan has not
// reached it yet, and reports whether its file time should be refreshed.
func (t *Tier) touch(idDir, rel string, size int64) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.items[rel]
	if !ok {
		t.add(&entry{rel: rel, idDir: idDir, size: size, touched: time.Now()}, true)
		return false
	}
	t.lru.MoveToFront(e.el)
	if time.Since(e.touched) > touchEvery {
		e.touched = time.Now()
		return true
	}
	return false
}

// add indexes e at the front (recent) or back of the LRU list, replacing an
// entry with the same path; t.mu must be held.
func (t *Tier) add(e *entry, front bool) {
	if old, ok := t.items[e.rel]; ok {
		t.drop(old)
	}
	if front {
		e.el = t.lru.PushFront(e)
	} else {
		e.el = t.lru.PushBack(e)
	}
	t.items[e.rel] = e
	ids := t.byID[e.idDir]
	if ids == nil {
		ids = make(map[string]*entry)
		t.byID[e.idDir] = ids
	}
	ids[e.rel] = e
	t.bytes += e.size
}

// drop removes e from the index; t.mu must be held.
func (t *Tier) drop(e *entry) {
	t.lru.Remove(e.el)
	delete(t.items, e.rel)
	if ids := t.byID[e.idDir]; ids != nil {
		delete(ids, e.rel)
		if len(ids) == 0 {
			delete(t.byID, e.idDir)
		}
	}
	t.bytes -= e.size
}

// forget drops rel from the index if it is there.
func (t *Tier) forget(rel string) {
	t.mu.Lock()
	if e, ok := t.items[rel]; ok {
		t.drop(e)
	}
	t.mu.Unlock()
}

// removeFile deletes the entry file rel and forgets it.
func (t *Tier) removeFile(rel string) error {
	t.forget(rel)
	err := os.Remove(filepath.Join(t.data, rel))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Create starts an entry in a temporary file of the same file system.
func (t *Tier) Create(_ context.Context, key cache.Key) (cache.Writer, error) {
	f, err := t.openTemp()
	if err != nil {
		t.counters.Errors.Add(1)
		return nil, err
	}
	w := &writer{t: t, key: key, f: f}
	w.buf = bufio.NewWriterSize(f, 64<<10)
	return w, nil
}

// tempFile is the part of *os.File a writer uses.
type tempFile interface {
	io.WriteCloser
	Sync() error
	Name() string
}

type writer struct {
	t    *Tier
	key  cache.Key
	f    tempFile
	buf  *bufio.Writer
	n    int64
	err  error // first failure; the entry will not be stored
	done bool
}

// Write appends p to the temporary file. Past the entry size limit it stops
// writing and Commit will return cache.ErrTooLarge.
func (w *writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("disk cache: write after commit or abort")
	}
	if w.err != nil {
		if errors.Is(w.err, cache.ErrTooLarge) {
			return len(p), nil
		}
		return 0, w.err
	}
	w.n += int64(len(p))
	if w.n > w.t.maxEntry {
		w.fail(cache.ErrTooLarge)
		return len(p), nil
	}
	if _, err := w.buf.Write(p); err != nil {
		w.fail(err)
		return 0, err
	}
	return len(p), nil
}

// fail records err and releases the temporary file at once, so a full disk
// gets its space back before the caller finishes.
func (w *writer) fail(err error) {
	if errors.Is(err, cache.ErrTooLarge) {
		w.err = err
	} else {
		w.t.counters.Errors.Add(1)
		w.err = fmt.Errorf("disk cache: %w", err)
	}
	w.f.Close()
	os.Remove(w.f.Name())
}

// Commit writes the trailer and renames the file into place.
func (w *writer) Commit(meta cache.Meta) error {
	if w.done {
		return errors.New("disk cache: commit after commit or abort")
	}
	w.done = true
	if w.err != nil {
		return w.err
	}
	rec, _ := json.Marshal(record{ID: w.key.ID, Name: w.key.Name, ContentType: meta.ContentType, ETag: meta.ETag, LastModified: meta.LastModified})
	var foot [footerLen]byte
	copy(foot[:8], footerMagic)
	binary.BigEndian.PutUint64(foot[8:], uint64(w.n))
	w.buf.Write(rec)
	w.buf.Write(foot[:])
	err := w.buf.Flush()
	if err == nil && w.t.sync {
		err = w.f.Sync()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		w.t.counters.Errors.Add(1)
		os.Remove(w.f.Name())
		return fmt.Errorf("disk cache: %w", err)
	}
	size := w.n + int64(len(rec)) + footerLen
	idDir, rel := paths(w.key)
	if err := w.t.place(w.f.Name(), idDir, rel, size); err != nil {
		w.t.counters.Errors.Add(1)
		os.Remove(w.f.Name())
		return fmt.Errorf("disk cache: %w", err)
	}
	w.t.counters.Puts.Add(1)
	w.t.evict()
	return nil
}

// Abort removes the temporary file.
func (w *writer) Abort() {
	if w.done {
		return
	}
	w.done = true
	if w.err == nil {
		w.f.Close()
		os.Remove(w.f.Name())
	}
}

// place renames the finished temporary file to rel and indexes it.
func (t *Tier) place(tmp, idDir, rel string, size int64) error {
	t.fsMu.RLock()
	defer t.fsMu.RUnlock()
	if err := os.MkdirAll(filepath.Join(t.data, idDir), 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(t.data, rel)); err != nil {
		return err
	}
	t.mu.Lock()
	t.add(&entry{rel: rel, idDir: idDir, size: size, touched: time.Now()}, true)
	t.mu.Unlock()
	return nil
}

// evict removes least recently used entries until the tier is within its
// bound. It removes only what the last commit pushed over the bound, so
// its cost is that of a few file removals, never a scan.
func (t *Tier) evict() {
	for {
		t.mu.Lock()
		if t.bytes <= t.maxBytes || t.lru.Len() == 0 {
			t.mu.Unlock()
			return
		}
		e := t.lru.Back().Value.(*entry)
		t.drop(e)
		emptyDir := len(t.byID[e.idDir]) == 0
		t.mu.Unlock()
		t.counters.Evictions.Add(1)
		if err := os.Remove(filepath.Join(t.data, e.rel)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.fault("evict", err)
		}
		if emptyDir {
			t.removeDirIfEmpty(e.idDir)
		}
	}
}

// removeDirIfEmpty removes an identifier's directory that holds no entry,
// so that evicted identifiers do not use up inodes.
func (t *Tier) removeDirIfEmpty(idDir string) {
	t.fsMu.Lock()
	defer t.fsMu.Unlock()
	os.Remove(filepath.Join(t.data, idDir)) // fails, harmlessly, if not empty
}

// Delete removes the entry for key.
func (t *Tier) Delete(_ context.Context, key cache.Key) error {
	_, rel := paths(key)
	if err := t.removeFile(rel); err != nil {
		t.counters.Errors.Add(1)
		return fmt.Errorf("disk cache: %w", err)
	}
	return nil
}

// Purge removes the directory of identifier id: it is renamed out of the
// data tree at once and deleted afterwards.
func (t *Tier) Purge(_ context.Context, id string) error {
	idDir, _ := paths(cache.Key{ID: id})
	trash := filepath.Join(t.tmp, t.run+"-purge-"+randomHex(8))
	t.fsMu.Lock()
	err := os.Rename(filepath.Join(t.data, idDir), trash)
	t.mu.Lock()
	for _, e := range t.byID[idDir] {
		t.drop(e)
	}
	t.mu.Unlock()
	t.fsMu.Unlock()
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.counters.Errors.Add(1)
		return fmt.Errorf("disk cache: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		t.fault("purge", err) // the entries are gone already; the next start cleans up
	}
	return nil
}

// Stats returns the tier's counters.
func (t *Tier) Stats() cache.Stats {
	s := t.counters.Snapshot()
	t.mu.Lock()
	s.Entries, s.Bytes = int64(len(t.items)), t.bytes
	t.mu.Unlock()
	return s
}

// background removes what a previous process left in tmp, indexes the
// existing entries and evicts down to the bound.
func (t *Tier) background() {
	defer t.wg.Done()
	defer close(t.ready)
	t.clean()
	t.scan()
	t.evict()
}

// clean removes temporary files and purged trees of earlier processes.
func (t *Tier) clean() {
	des, err := os.ReadDir(t.tmp)
	if err != nil {
		t.fault("clean", err)
		return
	}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), t.run+"-") {
			continue
		}
		select {
		case <-t.stop:
			return
		default:
		}
		if err := os.RemoveAll(filepath.Join(t.tmp, de.Name())); err != nil {
			t.fault("clean", err)
		}
	}
}

// scan indexes the entry files found on disk, oldest last, without
// opening them: a damaged file is found and dropped when it is first read.
func (t *Tier) scan() {
	type found struct {
		rel   string
		size  int64
		mtime time.Time
	}
	var all []found
	tops, err := os.ReadDir(t.data)
	if err != nil {
		t.fault("scan", err)
		return
	}
	for _, top := range tops {
		ids, _ := os.ReadDir(filepath.Join(t.data, top.Name()))
		for _, id := range ids {
			select {
			case <-t.stop:
				return
			default:
			}
			idDir := filepath.Join(top.Name(), id.Name())
			files, _ := os.ReadDir(filepath.Join(t.data, idDir))
			if len(files) == 0 {
				t.removeDirIfEmpty(idDir)
			}
			for _, f := range files {
				info, err := f.Info()
				if err != nil || !info.Mode().IsRegular() {
					continue
				}
				all = append(all, found{filepath.Join(idDir, f.Name()), info.Size(), info.ModTime()})
			}
		}
	}
	slices.SortFunc(all, func(a, b found) int { return b.mtime.Compare(a.mtime) })
	for len(all) > 0 { // in batches, so that requests never wait long for t.mu
		n := min(len(all), 1024)
		t.mu.Lock()
		for _, f := range all[:n] {
			if _, ok := t.items[f.rel]; ok {
				continue // used or rewritten since start: already indexed as recent
			}
			t.add(&entry{rel: f.rel, idDir: filepath.Dir(f.rel), size: f.size, touched: f.mtime}, false)
		}
		t.mu.Unlock()
		all = all[n:]
	}
}

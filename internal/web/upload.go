package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/iiifd/iiifd/internal/fault"
	"github.com/iiifd/iiifd/internal/httpapi"
	"github.com/iiifd/iiifd/internal/presentation"
	"github.com/iiifd/iiifd/internal/probe"
	"github.com/iiifd/iiifd/internal/resolve"
)

// uploadError is an upload refused for a reason with its own status
// (413, 415, 409, 400), which fault has no kind for.
type uploadError struct {
	status int
	msg    string
}

func (e *uploadError) Error() string   { return e.msg }
func (e *uploadError) HTTPStatus() int { return e.status }

func refuse(status int, format string, args ...any) error {
	return &uploadError{status: status, msg: fmt.Sprintf(format, args...)}
}

// sniffSize is how much of an upload is read before its type is known:
// enough for every header probe.Read recognises by its signature.
const sniffSize = 64 << 10

// multipartSlack is what a multipart body may hold besides the file:
// boundaries, part headers and small fields.
const multipartSlack = 64 << 10

// receive copies the file of an upload to dst and returns its name (as
// the client gave it) and size. body is a multipart/form-data body (the
// first part with a file name, or named "file", is the file) or, for any
// other content type, the file itself, named by name. It refuses files
// over limit bytes (413), whose first bytes are no image format we know
// (415), and bodies that end early or are malformed (400).
func receive(body io.Reader, contentType, name string, limit int64, dst io.Writer) (string, int64, error) {
	mt, params, _ := mime.ParseMediaType(contentType)
	if mt != "multipart/form-data" {
		n, err := copyImage(dst, body, limit)
		return name, n, err
	}
	boundary := params["boundary"]
	if boundary == "" {
		return "", 0, refuse(http.StatusBadRequest, "the multipart body has no boundary")
	}
	mr := multipart.NewReader(body, boundary)
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return "", 0, refuse(http.StatusBadRequest, `the form holds no file: send it in a field named "file"`)
		}
		if err != nil {
			return "", 0, incomplete(err)
		}
		if part.FileName() == "" && part.FormName() != "file" {
			// A small field (the browser may send others): skip it.
			if _, err := io.CopyN(io.Discard, part, multipartSlack); err == nil {
				return "", 0, refuse(http.StatusBadRequest, "a form field is too large")
			} else if err != io.EOF {
				return "", 0, incomplete(err)
			}
			continue
		}
		n, err := copyImage(dst, part, limit)
		if err != nil {
			return "", 0, err
		}
		// The body must end properly: a missing closing boundary means
		// the upload was cut short.
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return "", 0, incomplete(err)
			}
			if _, err := io.Copy(io.Discard, io.LimitReader(p, multipartSlack)); err != nil {
				return "", 0, incomplete(err)
			}
		}
		fn := part.FileName()
		if fn == "" {
			fn = name
		}
		return fn, n, nil
	}
}

// incomplete classifies an error reading the body: too large (the
// server's body limit) or cut short / malformed.
func incomplete(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return refuse(http.StatusRequestEntityTooLarge, "the upload is larger than the limit of %s", size(mbe.Limit))
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return refuse(http.StatusBadRequest, "the upload is incomplete: the body ended early")
	}
	if _, ok := err.(*uploadError); ok {
		return err
	}
	return refuse(http.StatusBadRequest, "the upload could not be read: %s", oneLine(err.Error()))
}

// copyImage copies at most limit bytes of an image from src to dst. The
// first bytes are checked against the image signatures probe knows
// before the rest is read.
func copyImage(dst io.Writer, src io.Reader, limit int64) (int64, error) {
	// Not io.ReadFull: it reports a short body as io.ErrUnexpectedEOF,
	// which is also what net/http reports for a body cut short.
	head := make([]byte, sniffSize)
	k := 0
	for k < sniffSize {
		n, err := src.Read(head[k:])
		k += n
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, incomplete(err)
		}
	}
	head = head[:k]
	if k == 0 {
		return 0, refuse(http.StatusBadRequest, "the upload is empty")
	}
	if int64(k) > limit {
		return 0, refuse(http.StatusRequestEntityTooLarge, "the upload is larger than the limit of %s", size(limit))
	}
	if _, perr := probe.Read(bytes.NewReader(head), int64(k)); errors.Is(perr, probe.ErrUnknownFormat) {
		return 0, refuse(http.StatusUnsupportedMediaType,
			"the file is not an image format iiifd reads (JPEG, PNG, GIF, WebP, TIFF, JPEG 2000, HEIF/AVIF)")
	}
	if _, err := dst.Write(head); err != nil {
		return 0, err
	}
	if k < sniffSize {
		return int64(k), nil
	}
	n, err := io.Copy(dst, io.LimitReader(src, limit-int64(k)+1))
	n += int64(k)
	if err != nil {
		return n, incomplete(err)
	}
	if n > limit {
		return n, refuse(http.StatusRequestEntityTooLarge, "the upload is larger than the limit of %s", size(limit))
	}
	return n, nil
}

// size writes a byte count for people.
func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

func oneLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return truncate(s)
}

// maxStem bounds the length of an uploaded image's name, in bytes.
const maxStem = 100

// sanitize turns a client's file name into the stem of a safe identifier:
// its base name without extension, with letters, digits, '-' and '_'
// kept, every other run of characters (dots, spaces, slashes, controls)
// made one '-', no '-' at either end, at most maxStem bytes; "upload"
// when nothing is left. The result never starts with a dot, holds no
// slash and is a valid identifier.
func sanitize(name string) string {
	name = strings.ReplaceAll(name, "\\", "/")
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		name = name[i+1:]
	}
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	var b strings.Builder
	dash := false
	for _, r := range name {
		ok := r == '-' || r == '_' || r < utf8.RuneSelf && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') ||
			r >= utf8.RuneSelf && r != utf8.RuneError && (unicode.IsLetter(r) || unicode.IsDigit(r))
		if !ok {
			dash = b.Len() > 0
			continue
		}
		if dash {
			b.WriteByte('-')
			dash = false
		}
		if b.Len()+utf8.RuneLen(r) > maxStem {
			break
		}
		b.WriteRune(r)
	}
	s := strings.Trim(b.String(), "-")
	if s == "" {
		return "upload"
	}
	return s
}

// admin lets through requests that carry the admin token.
func (h *Handler) admin(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := httpapi.CheckAdminToken(r, h.cfg.AdminToken); err != nil {
			h.failJSON(w, r, err)
			return
		}
		next(w, r)
	}
}

// uploadFormat is what uploads become: a pyramidal TIFF, which iiifd
// serves fastest, in one file.
const uploadExt = ".tif"

// collision returns the name of an existing image in root that the
// identifier stem, without extension, names already: a file stem.EXT
// with an image extension, or a tile pyramid folder stem/. An upload
// named stem would make the identifier ambiguous (404 for both), or
// shadow the pyramid, so it is refused. Uploads are rare and admin only:
// a look at the root's listing per upload is cheap enough.
func collision(root, stem string) string {
	// stem holds only letters, digits, '-' and '_' (sanitize): nothing a
	// pattern would read as special.
	matches, _ := filepath.Glob(filepath.Join(root, stem+".*"))
	for _, m := range matches {
		name := filepath.Base(m)
		if ext := name[len(stem)+1:]; !strings.Contains(ext, ".") && resolve.HasImageExtension(name) {
			return name
		}
	}
	if st, err := os.Stat(filepath.Join(root, stem, "info.json")); err == nil && st.Mode().IsRegular() {
		return stem + "/"
	}
	return ""
}

// upload serves POST /admin/images: it receives the file into a hidden
// temporary file under the root, checks it, and starts ingesting it into
// a pyramidal TIFF; it answers 202 with the job to follow (Location).
// ?name= names a raw (non-multipart) upload; ?wait=1 answers only when
// the ingest has ended.
func (h *Handler) upload(w http.ResponseWriter, r *http.Request) {
	select {
	case h.receiving <- struct{}{}:
		defer func() { <-h.receiving }()
	default:
		w.Header().Set("Retry-After", "10")
		h.failJSON(w, r, fault.New(fault.Unavailable, "%d uploads are being received already; try again shortly", cap(h.receiving)))
		return
	}
	limit := h.cfg.UploadMaxSize
	if r.ContentLength > limit+multipartSlack {
		w.Header().Set("Connection", "close")
		h.failJSON(w, r, refuse(http.StatusRequestEntityTooLarge, "the upload is larger than the limit of %s", size(limit)))
		return
	}
	// A large upload outlasts the server's write timeout (which counts
	// from the end of the request headers): give it an hour.
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{})
	rc.SetWriteDeadline(time.Now().Add(time.Hour))
	body := http.MaxBytesReader(w, r.Body, limit+multipartSlack)
	tmp, err := os.CreateTemp(h.cfg.Root, ".upload-")
	if err != nil {
		h.failJSON(w, r, fault.Wrap(fault.Internal, err, "the upload could not be stored"))
		return
	}
	handedOver := false
	defer func() {
		if !handedOver {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	filename, n, err := receive(body, r.Header.Get("Content-Type"), r.URL.Query().Get("name"), limit, tmp)
	if err != nil {
		if _, ok := err.(*uploadError); !ok {
			err = fault.Wrap(fault.Internal, err, "the upload could not be stored")
		}
		h.failJSON(w, r, err)
		return
	}
	if err := tmp.Sync(); err != nil {
		h.failJSON(w, r, fault.Wrap(fault.Internal, err, "the upload could not be stored"))
		return
	}
	if _, err := probe.Read(tmp, n); errors.Is(err, probe.ErrUnknownFormat) {
		h.failJSON(w, r, refuse(http.StatusUnsupportedMediaType, "the file is not an image format iiifd reads"))
		return
	} else if errors.Is(err, probe.ErrMalformed) {
		h.failJSON(w, r, refuse(http.StatusBadRequest, "the image is damaged or incomplete: %s", oneLine(err.Error())))
		return
	}
	stem := sanitize(filename)
	id := stem + uploadExt
	dst := filepath.Join(h.cfg.Root, id)
	if _, err := os.Lstat(dst); err == nil {
		h.failJSON(w, r, refuse(http.StatusConflict, "an image named %q exists already; rename the file or delete that image", id))
		return
	}
	if other := collision(h.cfg.Root, stem); other != "" {
		h.failJSON(w, r, refuse(http.StatusConflict, "the identifier %q would name two images, the upload and %s; rename the file or delete that image", stem, other))
		return
	}
	tmp.Close()
	timeout := h.ingestTimeout(n)
	j := h.jobs.start(id, func(ctx context.Context, progress func(int)) error {
		defer os.Remove(tmp.Name())
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		// The converter stops its work (iiifd's kills its worker
		// process group) when ctx ends and removes what it wrote.
		err := h.cfg.Ingest(ctx, tmp.Name(), dst, progress)
		if err == nil {
			h.listing.forget()
		}
		switch {
		case errors.Is(err, fs.ErrExist):
			return refuse(http.StatusConflict, "an image named %q exists already", id)
		case errors.Is(err, context.DeadlineExceeded):
			return fault.Wrap(fault.Unavailable, err, "the conversion ran over its time limit of %v and was stopped", timeout.Round(time.Second))
		case errors.Is(err, context.Canceled):
			return err // the server is shutting down (see jobs.start)
		case err != nil:
			// Never a path in a message: name the upload as the client did.
			msg := strings.ReplaceAll(err.Error(), tmp.Name(), filename)
			msg = strings.ReplaceAll(msg, dst, id)
			msg = strings.ReplaceAll(msg, h.cfg.Root, "")
			return refuse(http.StatusBadRequest, "the image is damaged or incomplete, it could not be converted: %s", oneLine(msg))
		}
		return nil
	})
	handedOver = true
	h.log.Info("upload received", "identifier", id, "bytes", n, "job", j.id)
	b := base(r)
	loc := b + "/admin/images/" + j.id
	w.Header().Set("Location", loc)
	if r.URL.Query().Get("wait") != "" {
		// Until the job ends or the request's time is up; then the
		// answer is the job's state as it is.
		select {
		case <-j.done:
		case <-r.Context().Done():
		}
	}
	st := j.view(presentation.URLs{Base: b}, loc)
	status := http.StatusAccepted
	if st.State == stateFailed {
		status = st.Status
	} else if st.State == stateDone {
		status = http.StatusCreated
	}
	writeJSON(w, status, st)
}

// jobStatus serves GET /admin/images/{job}; ?wait=1 waits for the end.
func (h *Handler) jobStatus(w http.ResponseWriter, r *http.Request) {
	j := h.jobs.get(r.PathValue("job"))
	if j == nil {
		h.failJSON(w, r, fault.New(fault.NotFound, "no such upload job (jobs are kept until the server restarts, the last %d of them)", maxJobs))
		return
	}
	if r.URL.Query().Get("wait") != "" {
		select {
		case <-j.done:
		case <-r.Context().Done():
		}
	}
	b := base(r)
	writeJSON(w, http.StatusOK, j.view(presentation.URLs{Base: b}, b+"/admin/images/"+j.id))
}

// ingestTimeout is the time limit of the ingest of an upload of n bytes,
// 0 for none.
func (h *Handler) ingestTimeout(n int64) time.Duration {
	if h.cfg.IngestTimeout <= 0 {
		return 0
	}
	return h.cfg.IngestTimeout + time.Duration(n>>20)*time.Second
}

// Job states.
const (
	stateQueued    = "queued"
	stateIngesting = "ingesting"
	stateDone      = "done"
	stateFailed    = "failed"
)

// maxJobs is how many jobs are remembered.
const maxJobs = 200

// job is an upload being ingested.
type job struct {
	id, identifier string
	done           chan struct{}

	mu      sync.Mutex
	state   string
	percent int
	err     error
}

// JobStatus is the JSON answer about a job.
type JobStatus struct {
	Job        string `json:"job"`
	URL        string `json:"url"`
	State      string `json:"state"`
	Percent    int    `json:"percent"`
	Identifier string `json:"identifier"`
	Error      string `json:"error,omitempty"`
	Status     int    `json:"status,omitempty"`
	Viewer     string `json:"viewer,omitempty"`
	Manifest   string `json:"manifest,omitempty"`
	Info       string `json:"info,omitempty"`
}

func (j *job) view(u presentation.URLs, self string) JobStatus {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := JobStatus{Job: j.id, URL: self, State: j.state, Percent: j.percent, Identifier: j.identifier}
	switch j.state {
	case stateFailed:
		s.Status, s.Error = fault.Status(j.err)
	case stateDone:
		s.Viewer, s.Manifest, s.Info = u.Viewer(j.identifier), u.Manifest(j.identifier), u.Service(j.identifier)+"/info.json"
	}
	return s
}

// jobs runs ingests one at a time (each uses every core libvips gets)
// and remembers the last maxJobs.
type jobs struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	turn   chan struct{}

	mu    sync.Mutex
	m     map[string]*job
	order []string
}

func newJobs() *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobs{ctx: ctx, cancel: cancel, turn: make(chan struct{}, 1), m: map[string]*job{}}
}

func (js *jobs) start(identifier string, run func(ctx context.Context, progress func(int)) error) *job {
	var b [12]byte
	rand.Read(b[:])
	j := &job{id: hex.EncodeToString(b[:]), identifier: identifier, state: stateQueued, done: make(chan struct{})}
	js.mu.Lock()
	js.m[j.id] = j
	js.order = append(js.order, j.id)
	if len(js.order) > maxJobs {
		delete(js.m, js.order[0])
		js.order = js.order[1:]
	}
	js.mu.Unlock()
	js.wg.Add(1)
	go func() {
		defer js.wg.Done()
		defer close(j.done)
		var err error
		select {
		case js.turn <- struct{}{}:
			j.mu.Lock()
			j.state = stateIngesting
			j.mu.Unlock()
			err = run(js.ctx, func(p int) {
				j.mu.Lock()
				j.percent = max(j.percent, min(p, 99))
				j.mu.Unlock()
			})
			<-js.turn
		case <-js.ctx.Done():
			// Shut down before its turn: run with the cancelled context,
			// which only cleans up.
			err = run(js.ctx, func(int) {})
		}
		j.mu.Lock()
		defer j.mu.Unlock()
		if err != nil {
			if errors.Is(err, context.Canceled) {
				err = fault.New(fault.Unavailable, "the server is shutting down")
			}
			j.state, j.err = stateFailed, err
			return
		}
		j.state, j.percent = stateDone, 100
	}()
	return j
}

func (js *jobs) get(id string) *job {
	js.mu.Lock()
	defer js.mu.Unlock()
	return js.m[id]
}

func (js *jobs) close() {
	js.cancel()
	js.wg.Wait()
}

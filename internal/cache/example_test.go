package cache_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/cache"
	"github.com/iiifd/iiifd/internal/cache/memory"
)

// render stands for the pipeline's encoder, which streams to w.
func render(w io.Writer) error {
	_, err := io.WriteString(w, "JPEG bytes")
	return err
}

// This is how a handler serves an image through the cache: a hit is
// streamed from its tier; on a miss the handler encodes once, to its client
// and to the fill at the same time, and commits when the encoding is
// complete.
func ExampleCache_Lookup() {
	mem, _ := memory.New(memory.Config{MaxBytes: 256 << 20})
	c, _ := cache.New(cache.Config{}, mem)

	handler := func(w http.ResponseWriter, r *http.Request) {
		key := cache.Key{ID: "mandelbrot", Name: "0,0,1024,1024/512,/0/default.jpg etag-of-source"}
		hit, fill, err := c.Lookup(r.Context(), key)
		if err != nil {
			http.Error(w, "failed", http.StatusInternalServerError) // the fill's error, or the client went away
			return
		}
		if hit != nil {
			defer hit.Body.Close()
			w.Header().Set("Content-Type", hit.ContentType)
			w.Header().Set("X-Cache", "HIT "+hit.Tier)
			io.Copy(w, hit.Body)
			return
		}
		defer fill.Abort() // does nothing after Commit or Fail
		w.Header().Set("Content-Type", "image/jpeg")
		w.Header().Set("X-Cache", "MISS")
		// The fill goes first: its Write never fails, so a client that
		// hangs up stops the encoding through the error of the second
		// writer, and the deferred Abort lets a waiting request take over.
		if err := render(io.MultiWriter(fill, w)); err != nil {
			return
		}
		fill.Commit(cache.Meta{ContentType: "image/jpeg", ETag: `"k1"`, LastModified: time.Unix(0, 0)})
	}

	for range 2 {
		rec := httptest.NewRecorder()
		handler(rec, httptest.NewRequest("GET", "/iiif/3/mandelbrot/0,0,1024,1024/512,/0/default.jpg", nil))
		fmt.Println(rec.Header().Get("X-Cache"), strings.TrimSpace(rec.Body.String()))
	}
	// Output:
	// MISS JPEG bytes
	// HIT memory JPEG bytes
}

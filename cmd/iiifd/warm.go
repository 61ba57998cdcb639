package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"
)

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// warm requests a list of URLs from a running server so that its caches
// (and any CDN in front) hold them before real traffic arrives: URLs from a
// file (one a line, or access-log lines), and/or the tiles of the top zoom
// levels and the listed sizes of given identifiers.
func warm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("iiifd warm", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "http://localhost:8080", "base `URL` of the server to warm (before /iiif/)")
	urlsFile := fs.String("urls", "", "`file` of URLs or paths to request, one a line; access-log lines work too (- = stdin)")
	var ids listFlag
	fs.Var(&ids, "id", "an `identifier` whose tiles to request (repeatable)")
	zoom := fs.Int("zoom", 3, "with --id: the number of zoom levels to warm, from the smallest (most zoomed out) up")
	version := fs.Int("api", 3, "with --id: the IIIF API version of the generated URLs (2 or 3)")
	conc := fs.Int("concurrency", 4, "requests at once")
	timeout := fs.Duration("timeout", time.Minute, "time allowed for one request")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: iiifd warm [--server URL] [--urls FILE] [--id ID --zoom N] [flags]\n\n"+
			"Requests URLs from a running iiifd so that its caches hold them. Exits 1 if\n"+
			"any request failed.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	base, err := url.Parse(strings.TrimSuffix(*server, "/"))
	if err != nil || (base.Scheme != "http" && base.Scheme != "https") || base.Host == "" {
		fmt.Fprintf(stderr, "iiifd warm: --server %q is not an http(s) URL\n", *server)
		return 2
	}
	if fs.NArg() > 0 || (*urlsFile == "" && len(ids) == 0) || *conc < 1 || *zoom < 1 || (*version != 2 && *version != 3) {
		fs.Usage()
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	var paths []string
	if *urlsFile != "" {
		p, err := readPaths(*urlsFile)
		if err != nil {
			fmt.Fprintf(stderr, "iiifd warm: %v\n", err)
			return 1
		}
		paths = append(paths, p...)
	}
	for _, id := range ids {
		p, err := tilePaths(ctx, client, base.String(), *version, id, *zoom)
		if err != nil {
			fmt.Fprintf(stderr, "iiifd warm: %s: %v\n", id, err)
			return 1
		}
		paths = append(paths, p...)
	}

	failures := forEach(ctx, paths, *conc, "warming", stderr, func(p string) string { return fetch(ctx, client, base.String()+p) })
	for _, f := range failures {
		fmt.Fprintln(stdout, "FAIL", f)
	}
	fmt.Fprintf(stdout, "warmed %d of %d URLs (%d failed)\n", len(paths)-len(failures), len(paths), len(failures))
	if len(failures) > 0 || ctx.Err() != nil {
		return 1
	}
	return 0
}

// logPath finds the IIIF path in an access-log line ("GET /iiif/... HTTP/1.1").
var logPath = regexp.MustCompile(`(?:^|[\s"=])(/iiif/[^\s"?]+)`)

// readPaths reads URL paths from a file: full URLs, bare paths, or log
// lines holding a /iiif/ path. Duplicates are requested once.
func readPaths(name string) ([]string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	seen := map[string]bool{}
	var out []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ""
		if u, err := url.Parse(line); err == nil && u.Host != "" && strings.HasPrefix(u.EscapedPath(), "/iiif/") {
			p = u.EscapedPath()
		} else if m := logPath.FindStringSubmatch(line); m != nil {
			p = m[1]
		}
		if p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out, sc.Err()
}

// tilePaths asks the server for the identifier's info.json and lists the
// URL paths a viewer requests first: the listed sizes, and every tile of
// the zoom most zoomed-out levels (the largest scale factors).
func tilePaths(ctx context.Context, client *http.Client, base string, version int, id string, zoom int) ([]string, error) {
	prefix := fmt.Sprintf("/iiif/%d/%s", version, url.PathEscape(id))
	req, err := http.NewRequestWithContext(ctx, "GET", base+prefix+"/info.json", nil)
	if err != nil {
		return nil, err
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		return nil, fmt.Errorf("info.json: %s", res.Status)
	}
	var info struct {
		Width, Height int
		Sizes         []struct{ Width, Height int }
		Tiles         []struct {
			Width, Height int
			ScaleFactors  []int
		}
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(&info); err != nil {
		return nil, fmt.Errorf("info.json: %v", err)
	}
	var out []string
	for _, s := range info.Sizes {
		out = append(out, fmt.Sprintf("%s/full/%d,%d/0/default.jpg", prefix, s.Width, s.Height))
	}
	for _, t := range info.Tiles {
		th := t.Height
		if th == 0 {
			th = t.Width
		}
		if t.Width <= 0 || th <= 0 {
			return nil, fmt.Errorf("info.json: tiles of %d×%d", t.Width, th)
		}
		sfs := append([]int(nil), t.ScaleFactors...)
		sort.Sort(sort.Reverse(sort.IntSlice(sfs)))
		for _, sf := range sfs[:min(zoom, len(sfs))] {
			for y := 0; y < info.Height; y += th * sf {
				for x := 0; x < info.Width; x += t.Width * sf {
					w, h := min(t.Width*sf, info.Width-x), min(th*sf, info.Height-y)
					sw := int(math.Ceil(float64(w) / float64(sf)))
					sh := int(math.Ceil(float64(h) / float64(sf)))
					size := fmt.Sprintf("%d,%d", sw, sh)
					if version == 2 {
						size = fmt.Sprintf("%d,", sw)
					}
					out = append(out, fmt.Sprintf("%s/%d,%d,%d,%d/%s/0/default.jpg", prefix, x, y, w, h, size))
				}
			}
		}
	}
	return out, nil
}

// fetch GETs u and reads the body; it returns why it failed, or "".
func fetch(ctx context.Context, client *http.Client, u string) string {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err.Error()
	}
	res, err := client.Do(req)
	if err != nil {
		return err.Error()
	}
	defer res.Body.Close()
	if _, err := io.Copy(io.Discard, res.Body); err != nil {
		return err.Error()
	}
	if res.StatusCode != 200 {
		return res.Status
	}
	return ""
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/iiifd/iiifd/internal/ingest"
	"github.com/iiifd/iiifd/internal/progress"
)

const ingestUsage = `Usage: iiifd ingest [flags] SRC DST

Converts the image SRC (any format libvips reads, of any size: it is read
once, as a stream) into DST, which must not exist:

  --format ptiff  one tiled, pyramidal TIFF (BigTIFF when large), the form
                  iiifd serves fastest: each level a page, halving down to
                  one tile; JPEG tiles are YCbCr (4:2:0) below --quality 90,
                  RGB without subsampling from 90 (libvips' rule)
  --format tiles  a directory in the IIIF Image API 3.0 level-0 layout:
                  DST/info.json, DST/{region}/{size}/0/default.jpg for every
                  tile and DST/full/{w},{h}/0/default.jpg for every size in
                  info.json. Its "id" is the placeholder
                  ` + ingest.PlaceholderID + `,
                  to be replaced with the URL the directory is published at.

DST is built in a work directory beside it (.DST.tmp-*) and renamed when
complete; on failure or interruption nothing is left behind. DST may be
s3://BUCKET/KEY (credentials, region and endpoint from the AWS environment,
as for serve): the output is built in a local temporary directory, then
uploaded (large files in parts, tiles concurrently, a tile directory's
info.json last, so readers never see a pyramid without its tiles). Progress goes
to stderr: a bar on a terminal, a line every 10 % otherwise.

Flags:
`

// workerFlag, first among the arguments of `iiifd ingest`, makes the
// process the child that does the libvips work of an ingest (see
// ingest.Subprocess). It is not for people.
const workerFlag = "--ingest-worker"

// ingestCmd runs `iiifd ingest`. The conversion itself runs in a child
// process, this same program with workerFlag; this process checks the
// arguments, shows progress and moves the result into place.
func ingestCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == workerFlag {
		return ingest.ServeWorker(ctx, args[1:], stdout)
	}
	fs := flag.NewFlagSet("iiifd ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), ingestUsage)
		fs.PrintDefaults()
	}
	format := fs.String("format", string(ingest.DefaultFormat), "output: ptiff or tiles")
	tile := fs.Int("tile-size", ingest.DefaultTileSize, "tile width and height: 256, 512 or 1024")
	quality := fs.Int("quality", ingest.DefaultQuality, "JPEG (and WebP) quality, 1..100")
	compression := fs.String("compression", string(ingest.DefaultCompression), "ptiff tile compression: jpeg, webp or deflate")
	quiet := fs.Bool("quiet", false, "do not report progress")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintf(stderr, "iiifd ingest: want SRC and DST, got %d arguments\n", fs.NArg())
		fs.Usage()
		return 2
	}
	src, dst := fs.Arg(0), fs.Arg(1)
	opt := ingest.Options{
		Format:      ingest.Format(*format),
		TileSize:    *tile,
		Quality:     *quality,
		Compression: ingest.Compression(*compression),
	}
	err := opt.Validate()
	// Zero means the default in ingest.Options; on the command line it is
	// a mistake.
	switch {
	case *quality == 0:
		err = errors.New("quality 0 is not within 1..100")
	case *tile == 0:
		err = errors.New("tile size 0 is not 256, 512 or 1024")
	}
	if err != nil {
		fmt.Fprintf(stderr, "iiifd ingest: %v\n", err)
		return 2
	}
	build, err := workerBuilder()
	if err != nil {
		fmt.Fprintf(stderr, "iiifd ingest: %v\n", err)
		return 1
	}
	var bar *progress.Reporter
	if !*quiet {
		bar = progress.New(stderr, "ingest")
		opt.Progress = func(percent int) { bar.Update(int64(percent), 100) }
	}
	start := time.Now()
	out := dst
	var upload *s3Target
	if strings.HasPrefix(dst, "s3://") {
		if upload, err = newS3Target(ctx, dst); err != nil {
			fmt.Fprintf(stderr, "iiifd ingest: %s\n", oneLine(err.Error()))
			return 1
		}
		defer upload.Close()
		out = upload.local
	}
	err = ingest.Run(ctx, src, out, opt, build)
	if err == nil && upload != nil {
		var up *progress.Reporter
		if !*quiet {
			up = progress.New(stderr, "upload")
		}
		err = upload.Send(ctx, up)
	}
	if bar != nil {
		bar.Done()
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintf(stderr, "iiifd ingest: interrupted; %s was not written\n", dst)
		return 130 // as a shell reports a process ended by SIGINT
	}
	if err != nil {
		fmt.Fprintf(stderr, "iiifd ingest: %s\n", oneLine(err.Error()))
		return 1
	}
	fmt.Fprintf(stdout, "%s: written in %s\n", dst, time.Since(start).Round(time.Millisecond))
	return 0
}

// workerBuilder returns the builder that runs this program as the ingest
// worker.
func workerBuilder() (ingest.Builder, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("cannot find this program to run the ingest worker: %w", err)
	}
	return ingest.Subprocess(exe, "ingest", workerFlag), nil
}

// oneLine keeps the first line of a message.
func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

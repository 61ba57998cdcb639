package ingest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/draw"
	"image/jpeg"
	"os"
	"path/filepath"
)

// PlaceholderID is the id of the info.json of a tile directory. The
// reserved .invalid domain guarantees it never resolves; whoever publishes
// the directory replaces it with the image's public URL (its base URI, as
// 3.0 §5.1 defines id).
const PlaceholderID = "https://iiifd.invalid/iiif/3/PLACEHOLDER"

// maxSizeSide bounds the longer side of the whole-image sizes listed in
// info.json (and written under full/): they are for thumbnails and
// overviews; deep zoom uses the tiles.
const maxSizeSide = 2048

// Size is a width and height in pixels.
type Size struct {
	Width  int `json:"width"`
	Height int `json:"height"`
}

// Info is the info.json of a tile directory (IIIF Image API 3.0,
// level 0).
type Info struct {
	Context  string  `json:"@context"`
	ID       string  `json:"id"`
	Type     string  `json:"type"`
	Protocol string  `json:"protocol"`
	Profile  string  `json:"profile"`
	Width    int     `json:"width"`
	Height   int     `json:"height"`
	Sizes    []Size  `json:"sizes"`
	Tiles    []Tiles `json:"tiles"`
}

// Tiles describes one tiling of an Info.
type Tiles struct {
	Width        int   `json:"width"`
	Height       int   `json:"height"`
	ScaleFactors []int `json:"scaleFactors"`
}

// NewInfo returns the info.json of a w x h image cut into square tiles of
// side tile: scale factors 1, 2, 4... down to the first level that fits in
// one tile (as libvips writes them), and as sizes the levels whose longer
// side is at most 2048 pixels, smallest first.
func NewInfo(w, h, tile int) Info {
	sfs := scaleFactors(w, h, tile)
	var sizes []Size
	for i := len(sfs) - 1; i >= 0; i-- {
		s := Size{ceilDiv(w, sfs[i]), ceilDiv(h, sfs[i])}
		if max(s.Width, s.Height) > maxSizeSide && len(sizes) > 0 {
			break
		}
		sizes = append(sizes, s)
	}
	return Info{
		Context:  "http://iiif.io/api/image/3/context.json",
		ID:       PlaceholderID,
		Type:     "ImageService3",
		Protocol: "http://iiif.io/api/image",
		Profile:  "level0",
		Width:    w,
		Height:   h,
		Sizes:    sizes,
		Tiles:    []Tiles{{Width: tile, Height: tile, ScaleFactors: sfs}},
	}
}

func scaleFactors(w, h, tile int) []int {
	sfs := []int{1}
	for sf := 1; ceilDiv(w, sf) > tile || ceilDiv(h, sf) > tile; {
		sf *= 2
		sfs = append(sfs, sf)
	}
	return sfs
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// Tile is one tile of a level-0 directory: its region of the full image
// and its size, as the spec's tile algorithm (3.0 appendix) names them.
type Tile struct {
	Region image.Rectangle
	Size   Size
}

// Path returns the tile's file, relative to the directory:
// {x},{y},{w},{h}/{w},{h}/0/default.jpg.
func (t Tile) Path() string {
	r := t.Region
	return filepath.Join(fmt.Sprintf("%d,%d,%d,%d", r.Min.X, r.Min.Y, r.Dx(), r.Dy()),
		fmt.Sprintf("%d,%d", t.Size.Width, t.Size.Height), "0", "default.jpg")
}

// LevelTiles returns the tiles of the level at scale factor sf, row by row.
func (in Info) LevelTiles(sf int) []Tile {
	tw, th := in.Tiles[0].Width*sf, in.Tiles[0].Height*sf
	var tiles []Tile
	for y := 0; y < in.Height; y += th {
		for x := 0; x < in.Width; x += tw {
			r := image.Rect(x, y, min(x+tw, in.Width), min(y+th, in.Height))
			tiles = append(tiles, Tile{r, Size{ceilDiv(r.Dx(), sf), ceilDiv(r.Dy(), sf)}})
		}
	}
	return tiles
}

// SizePath returns the file of a whole-image size, relative to the
// directory: full/{w},{h}/0/default.jpg.
func SizePath(s Size) string {
	return filepath.Join("full", fmt.Sprintf("%d,%d", s.Width, s.Height), "0", "default.jpg")
}

// finishTiles completes the tile directory libvips wrote in dir: it checks
// that every tile the info.json will promise is there, renders the sizes
// from the tiles and replaces libvips' info.json (which lists no sizes and
// leaves out the last scale factor) with ours.
func finishTiles(ctx context.Context, dir string, w, h int, opt Options) error {
	for _, name := range []string{"info.json", "vips-properties.xml"} {
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	info := NewInfo(w, h, opt.TileSize)
	for _, sf := range info.Tiles[0].ScaleFactors {
		if err := ctx.Err(); err != nil {
			return err
		}
		for _, t := range info.LevelTiles(sf) {
			if _, err := os.Stat(filepath.Join(dir, t.Path())); err != nil {
				return fmt.Errorf("ingest: libvips did not write tile %s", t.Path())
			}
		}
	}
	sfs := info.Tiles[0].ScaleFactors
	for i, s := range info.Sizes {
		// Sizes are the smallest levels, smallest first.
		sf := sfs[len(sfs)-1-i]
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := writeSize(dir, info, sf, s, opt.Quality); err != nil {
			return err
		}
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "info.json"), append(data, '\n'), 0o644)
}

// writeSize writes the whole image at size s by joining the tiles of the
// level at scale factor sf, which is exactly that size: the same pixels as
// the tiles, without reading the source again.
func writeSize(dir string, info Info, sf int, s Size, quality int) error {
	var canvas draw.Image
	bounds := image.Rect(0, 0, s.Width, s.Height)
	for _, t := range info.LevelTiles(sf) {
		img, err := decodeJPEG(filepath.Join(dir, t.Path()))
		if err != nil {
			return fmt.Errorf("ingest: reading tile %s: %w", t.Path(), err)
		}
		if canvas == nil {
			if _, gray := img.(*image.Gray); gray {
				canvas = image.NewGray(bounds)
			} else {
				canvas = image.NewRGBA(bounds)
			}
		}
		at := image.Pt(t.Region.Min.X/sf, t.Region.Min.Y/sf)
		draw.Draw(canvas, img.Bounds().Sub(img.Bounds().Min).Add(at), img, img.Bounds().Min, draw.Src)
	}
	path := filepath.Join(dir, SizePath(s))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(f)
	err = jpeg.Encode(bw, canvas, &jpeg.Options{Quality: quality})
	if err == nil {
		err = bw.Flush()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func decodeJPEG(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return jpeg.Decode(bufio.NewReader(f))
}

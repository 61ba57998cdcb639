package iiif_test

import (
	"fmt"

	"github.com/iiifd/iiifd/internal/iiif"
)

func ExampleParseImage() {
	r, err := iiif.ParseImage(iiif.V3, "pct:41.6,7.5,40,70", "^!360,360", "!22.50", "gray.png")
	if err != nil {
		panic(err)
	}
	fmt.Println(r)

	_, err = iiif.ParseImage(iiif.V3, "full", "full", "0", "default.jpg")
	fmt.Println(err)
	// Output:
	// pct:41.6,7.5,40,70/^!360,360/!22.5/gray.png
	// invalid size "full": "full" is not a size in API version 3; use max
}

func ExampleMarshalInfo() {
	b, err := iiif.MarshalInfo(iiif.V3, iiif.ImageInfo{
		ID:       "https://example.org/iiif/3/abcd1234",
		Width:    6000,
		Height:   4000,
		MaxWidth: 3000,
		Tiles:    []iiif.Tile{{Width: 512, ScaleFactors: iiif.ScaleFactors(6000, 4000, 512, 512)}},
		Features: []string{"cors"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(b))
	// Output:
	// {"@context":"http://iiif.io/api/image/3/context.json","id":"https://example.org/iiif/3/abcd1234","type":"ImageService3","protocol":"http://iiif.io/api/image","profile":"level2","width":6000,"height":4000,"maxWidth":3000,"tiles":[{"width":512,"scaleFactors":[1,2,4,8,16]}],"extraFeatures":["cors"]}
}

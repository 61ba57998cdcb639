package plan_test

import (
	"fmt"

	"github.com/iiifd/iiifd/internal/iiif"
	"github.com/iiifd/iiifd/internal/plan"
)

func ExampleMake() {
	// A 40,000×30,000 pyramid with halving levels.
	img := plan.Image{Width: 40000, Height: 30000}
	for w, h := 40000, 30000; w >= 128; w, h = (w+1)/2, (h+1)/2 {
		img.Levels = append(img.Levels, plan.Level{Width: w, Height: h})
	}
	req, err := iiif.ParseImage(iiif.V3, "full", "!1024,1024", "90", "default.jpg")
	if err != nil {
		panic(err)
	}
	p, err := plan.Make(req, img, plan.Limits{MaxWidth: 10000})
	if err != nil {
		panic(err)
	}
	fmt.Println(p.Level, p.LevelRegion, p.Width, p.Height, p.OutWidth, p.OutHeight)
	fmt.Println(p.Canonical)

	req, _ = iiif.ParseImage(iiif.V3, "full", "12000,", "0", "default.jpg")
	_, err = plan.Make(req, img, plan.Limits{MaxWidth: 10000})
	fmt.Println(err)
	// Output:
	// 5 (0,0)-(1250,938) 1024 768 768 1024
	// full/1024,768/90/default.jpg
	// size: requested width 12000 exceeds maxWidth 10000
}

//go:build wasip1

// Command rights is an iiifd plugin that adds a rights statement to
// info.json: "rights" in Image API 3.0, "license" in 2.1. The URL is
// rights.url (default CC BY 4.0).
package main

import (
	"encoding/json"

	"github.com/iiifd/iiifd/sdk/go/iiifdplugin"
)

var url = "http://creativecommons.org/licenses/by/4.0/"

func init() {
	iiifdplugin.Configure(func(cfg iiifdplugin.Fields) error {
		if u := cfg.Get("url"); u != "" {
			url = u
		}
		return nil
	})
}

//go:wasmexport info
func info(ptr, size uint32) uint64 { return iiifdplugin.Info(ptr, size, rights) }

func rights(req iiifdplugin.Fields) []byte {
	field := "rights"
	if req.Get("version") == "2" {
		field = "license"
	}
	b, _ := json.Marshal(map[string]string{field: url})
	return b
}

func main() {}

package plugin

import (
	"context"
	"testing"

	"github.com/tetratelabs/wazero"
)

// BenchmarkMicroCall is the cost of calling a trivial guest function,
// without and with termination checks (WithCloseOnContextDone makes
// wazero start a watcher goroutine per call).
func BenchmarkMicroCall(b *testing.B) {
	for _, term := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "closeOnDone"}[term], func(b *testing.B) {
			ctx := context.Background()
			rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(term))
			defer rt.Close(ctx)
			m, err := rt.Instantiate(ctx, trapModule)
			if err != nil {
				b.Fatal(err)
			}
			f := m.ExportedFunction("iiifd_alloc")
			st := make([]uint64, 1)
			defer cpuPerOp(b)()
			for b.Loop() {
				st[0] = 5
				if err := f.CallWithStack(ctx, st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

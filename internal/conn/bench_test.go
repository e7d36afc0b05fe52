package conn

import (
	"bytes"
	"fmt"
	"testing"
)

// BenchmarkAppendFrame frames one push into a reused batch buffer, as
// writeBatch does for every frame of a batch.
func BenchmarkAppendFrame(b *testing.B) {
	for _, n := range []int{100, 1000, 70000} {
		b.Run(fmt.Sprintf("bytes=%d", n), func(b *testing.B) {
			payload := bytes.Repeat([]byte{'a'}, n)
			buf := make([]byte, 0, n+16)
			b.SetBytes(int64(n))
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				buf = appendTextFrame(buf[:0], payload)
			}
		})
	}
}

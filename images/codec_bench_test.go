package images_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/imageservice/imageservice/images"
)

// BenchmarkUnmarshal measures decoding each sample event from its stored
// JSON with images.Unmarshal against encoding/json decoding the same bytes
// into the same type, alternately in the same run, and reports both times
// and their ratio (encoding/json's time over ours).
func BenchmarkUnmarshal(b *testing.B) {
	const rounds = 100 // decodes of each side per iteration
	for _, e := range sampleEvents() {
		typ, v, data, err := images.Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		goType := reflect.TypeOf(e)
		b.Run(typ, func(b *testing.B) {
			var ours, peer time.Duration
			for b.Loop() {
				start := time.Now()
				for range rounds {
					if _, err := images.Unmarshal(typ, v, data); err != nil {
						b.Fatal(err)
					}
				}
				mid := time.Now()
				for range rounds {
					if err := json.Unmarshal(data, reflect.New(goType).Interface()); err != nil {
						b.Fatal(err)
					}
				}
				ours, peer = ours+mid.Sub(start), peer+time.Since(mid)
			}
			n := float64(b.N * rounds)
			b.ReportMetric(float64(ours.Nanoseconds())/n, "ns/decode")
			b.ReportMetric(float64(peer.Nanoseconds())/n, "encoding/json-ns/decode")
			b.ReportMetric(float64(peer)/float64(ours), "speedup")
		})
	}
}

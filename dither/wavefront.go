package dither

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// wavefrontChunk is how many pixels a worker dithers between publishing
// its progress.
const wavefrontChunk = 256

// canWavefront reports whether the image can be dithered by several
// workers: two-level Floyd-Steinberg left to right at full strength, on
// an opaque 8-bit image with a paletted result (the fs2Forward path).
func (e *engine) canWavefront() bool {
	o := e.opts
	return o.Workers > 1 && e.h > 1 && !genericOnly && e.load16 == nil && o.Algorithm == FloydSteinberg && !o.Serpentine &&
		e.pq == nil && e.c == 3 && e.lq[0].n == 2 && e.lq[1].n == 2 && e.lq[2].n == 2 &&
		o.strength() == 256 && e.kind == alphaOpaque && e.out.pal != nil
}

// runWavefront dithers like runDiffusion with opts.Workers goroutines:
// worker k takes rows k, k+n, k+2n... and dithers each a chunk at a time,
// once the row above is far enough ahead (Floyd-Steinberg needs the row
// above finished up to one pixel to the right). The result is the same as
// with one worker. False means a row failed the opaqueness check, or the
// engine was stopped.
func (e *engine) runWavefront() bool {
	n := min(e.opts.Workers, e.h)
	w := &wavefront{e: e, workers: n, stride: int64(e.w) + 1}
	w.rows = make([][]int32, n+2)
	for i := range w.rows {
		w.rows[i] = make([]int32, 3*(e.w+2*pad))
	}
	w.progress = make([]atomic.Int64, len(w.rows))
	for i := range w.progress {
		w.progress[i].Store(-1)
	}
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() { w.work(k) })
	}
	wg.Wait()
	return !w.abort.Load()
}

// wavefront is the shared state of runWavefront.
type wavefront struct {
	e       *engine
	workers int
	// rows is a ring of error rows: rows[y%len] holds the error for row y,
	// written while dithering row y-1. With workers+2 rows, a row is
	// reused only once the rows that read and wrote it are done.
	rows [][]int32
	// progress[y%len] is y*stride plus the pixels of row y done.
	progress []atomic.Int64
	stride   int64
	abort    atomic.Bool // a row was not opaque, or the engine stopped: every worker stops
}

// work dithers the rows of worker k.
func (w *wavefront) work(k int) {
	e := w.e
	buf := make([]uint8, 4*e.w)
	ring := len(w.rows)
	for y := k; y < e.h; y += w.workers {
		row := e.load(y, buf)
		cur, nxt, pal := w.rows[y%ring], w.rows[(y+1)%ring], e.palRow(y)
		var f [3]int32
		for x0 := 0; x0 < e.w; x0 += wavefrontChunk {
			x1 := min(x0+wavefrontChunk, e.w)
			if y > 0 && !w.waitFor(y-1, min(x1+1, e.w)) {
				return
			}
			fs2ForwardRange(row, cur, nxt, pal, &e.sp.toWork, x0, x1, &f)
			w.progress[y%ring].Store(int64(y)*w.stride + int64(x1))
		}
		if e.check && !rgbaOpaque(row, 0, 0, e.w, 1) || e.stopped() {
			w.abort.Store(true)
			return
		}
	}
}

// waitFor waits until row y has x pixels done; false means abort.
func (w *wavefront) waitFor(y, x int) bool {
	p := &w.progress[y%len(w.rows)]
	target := int64(y)*w.stride + int64(x)
	for p.Load() < target {
		if w.abort.Load() {
			return false
		}
		runtime.Gosched()
	}
	return true
}

package imagefile

import (
	"image/png"
	"sync"
)

// pngPool reuses the PNG encoder's buffers between calls.
type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

var bufferPool = &pngPool{}

package filters

// Buffer is a body chunk, or the whole buffered body after StopAndBuffer.
// Filters may read and replace its bytes; the chain forwards whatever the
// buffer holds when the filter returns Continue.
type Buffer struct {
	b []byte
}

// NewBuffer wraps b without copying it.
func NewBuffer(b []byte) *Buffer { return &Buffer{b: b} }

// Bytes returns the bytes held. They are valid until the filter returns.
func (b *Buffer) Bytes() []byte { return b.b }

// Len is the number of bytes held.
func (b *Buffer) Len() int { return len(b.b) }

// Set replaces the content with p.
func (b *Buffer) Set(p []byte) { b.b = p }

// Append adds p at the end.
func (b *Buffer) Append(p []byte) { b.b = append(b.b, p...) }

// Prepend adds p at the start.
func (b *Buffer) Prepend(p []byte) {
	b.b = append(append(make([]byte, 0, len(p)+len(b.b)), p...), b.b...)
}

package subsystems

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
	"testing/iotest"
)

// Whatever the read sizes, bulkReader returns the stream unchanged, and
// its error only after the data.
func TestBulkReaderKeepsTheStream(t *testing.T) {
	data := make([]byte, 3*readBufferSize+12345)
	_, _ = rand.Read(data)
	for name, src := range map[string]io.Reader{
		"whole":    bytes.NewReader(data),
		"one byte": iotest.OneByteReader(bytes.NewReader(data)),
		"half":     iotest.HalfReader(bytes.NewReader(data)),
		"data+err": iotest.DataErrReader(bytes.NewReader(data)),
	} {
		b := &bulkReader{r: src}
		var got bytes.Buffer
		buf := make([]byte, 4096)
		for {
			n, err := b.Read(buf)
			got.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		if !bytes.Equal(got.Bytes(), data) {
			t.Fatalf("%s: the stream changed (%d bytes read of %d)", name, got.Len(), len(data))
		}
		if b.buf != nil {
			t.Fatalf("%s: a drained reader still holds its big buffer", name)
		}
	}
}

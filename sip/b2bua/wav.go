package b2bua

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// wavWriter writes a stereo 16-bit 8 kHz PCM WAV: the caller on the left channel, the
// operator on the right, one frame pair per mixer tick, so both channels stay in step
// even when one side is silent. The sizes in the header are patched on Close; a file
// cut short by a crash still plays, as players read to the end of the data.
type wavWriter struct {
	ws      io.WriteSeeker
	c       io.Closer
	bw      *bufio.Writer
	n       uint32
	scratch []byte
	closed  bool
}

const wavHeader = 44

func newWAV(ws io.WriteSeeker, c io.Closer) (*wavWriter, error) {
	w := &wavWriter{ws: ws, c: c, bw: bufio.NewWriterSize(ws, 32<<10), scratch: make([]byte, 4*frameSamples)}
	if err := w.header(0xffffffff - wavHeader); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *wavWriter) header(data uint32) error {
	var h [wavHeader]byte
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], 36+data)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)     // fmt chunk size
	binary.LittleEndian.PutUint16(h[20:], 1)      // PCM
	binary.LittleEndian.PutUint16(h[22:], 2)      // channels
	binary.LittleEndian.PutUint32(h[24:], 8000)   // sample rate
	binary.LittleEndian.PutUint32(h[28:], 8000*4) // byte rate
	binary.LittleEndian.PutUint16(h[32:], 4)      // block align
	binary.LittleEndian.PutUint16(h[34:], 16)     // bits per sample
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], data)
	_, err := w.bw.Write(h[:])
	return err
}

// frame appends 20 ms: left from caller, right from operator; nil is silence.
func (w *wavWriter) frame(left, right []int16) error {
	for i := 0; i < frameSamples; i++ {
		var l, r int16
		if left != nil {
			l = left[i]
		}
		if right != nil {
			r = right[i]
		}
		binary.LittleEndian.PutUint16(w.scratch[4*i:], uint16(l))
		binary.LittleEndian.PutUint16(w.scratch[4*i+2:], uint16(r))
	}
	_, err := w.bw.Write(w.scratch)
	w.n += uint32(len(w.scratch))
	return err
}

// Close patches the sizes and closes the file.
func (w *wavWriter) Close() error {
	if w.closed {
		return nil
	}
	w.closed = true
	err := w.bw.Flush()
	if err == nil {
		if _, err = w.ws.Seek(0, io.SeekStart); err == nil {
			w.bw.Reset(w.ws)
			if err = w.header(w.n); err == nil {
				err = w.bw.Flush()
			}
		}
	}
	if w.c != nil {
		err = errors.Join(err, w.c.Close())
	}
	return err
}

package codec

/*
#include "ffmpeg.h"
*/
import "C"

import (
	"errors"
	"fmt"

	"github.com/asticode/go-astiav"
)

// alphaEncoder encodes the alpha planes of a transparent VP9 WebM: a
// libvpx-vp9 encoder of its own, opened with the picture encoder's
// settings, on a goroutine of its own, so that a frame's alpha is encoded
// while its picture is (libavcodec's libvpx-vp9 encodes a yuva420p frame's
// picture and then its alpha, one after the other, on the caller's
// thread). It takes the same pictures libavcodec's encoder builds (the A
// plane as luma over neutral chroma) and its packets become the picture
// packets' BlockAdditional 1, as libavcodec's do: the file is the same.
//
// The Encoder hands it each frame (send) before encoding the picture, and
// pairs each picture packet with the alpha packet of the same PTS
// (attach); packets that come out while it waits to hand a frame over are
// kept in order (ready).
type alphaEncoder struct {
	cc     *astiav.CodecContext
	chroma *C.AVBufferRef // the neutral U and V every alpha picture references
	ls     int

	in   chan *astiav.Frame // alpha pictures, owned by the goroutine once sent; nil flushes
	out  chan alphaPacket   // in PTS order; closed after the flush
	quit chan struct{}      // closed by close: the goroutine stops
	done chan struct{}      // closed when the goroutine has returned

	ready  []*astiav.Packet // received from out, not yet attached
	closed bool
}

// errAlphaDone: the alpha encoder has given all its packets.
var errAlphaDone = errors.New("no alpha frame is left")

// alphaPacket is one encoded alpha frame, or the error that ended the
// alpha encoder.
type alphaPacket struct {
	pkt *astiav.Packet
	err error
}

// startAlphaEncoder takes cc over (an opened libvpx-vp9 encoder of w×h
// yuv420p pictures) and starts its goroutine. On failure cc is freed.
func startAlphaEncoder(cc *astiav.CodecContext, w, h int) (*alphaEncoder, error) {
	ls := ((w+1)/2 + 63) &^ 63
	chroma := C.vm_neutral_chroma(C.int(h), C.int(ls))
	if chroma == nil {
		cc.Free()
		return nil, internalErr("allocating the alpha encoder", errors.New("out of memory"))
	}
	a := &alphaEncoder{
		cc: cc, chroma: chroma, ls: ls,
		// One picture waiting while one is encoded: the alpha stays at
		// most a frame behind the picture.
		in:   make(chan *astiav.Frame, 1),
		out:  make(chan alphaPacket, 4),
		quit: make(chan struct{}),
		done: make(chan struct{}),
	}
	go a.run()
	return a, nil
}

// run encodes what comes in until the flush, an error or quit.
func (a *alphaEncoder) run() {
	defer close(a.done)
	for {
		var f *astiav.Frame
		select {
		case f = <-a.in:
		case <-a.quit:
			return
		}
		err := a.cc.SendFrame(f) // nil: the flush
		flush := f == nil
		if f != nil {
			putShell(f)
		}
		if err != nil && !(flush && isEOF(err)) {
			a.emit(alphaPacket{err: internalErr("encoding the alpha", err)})
			return
		}
		for {
			pkt := astiav.AllocPacket()
			if pkt == nil {
				a.emit(alphaPacket{err: internalErr("encoding the alpha", errors.New("out of memory"))})
				return
			}
			err := a.cc.ReceivePacket(pkt)
			if err != nil {
				pkt.Free()
				if isAgain(err) {
					break
				}
				if isEOF(err) {
					close(a.out)
					return
				}
				a.emit(alphaPacket{err: internalErr("encoding the alpha", err)})
				return
			}
			if !a.emit(alphaPacket{pkt: pkt}) {
				pkt.Free()
				return
			}
		}
	}
}

// emit sends p on out unless the encoder is closing.
func (a *alphaEncoder) emit(p alphaPacket) bool {
	select {
	case a.out <- p:
		return true
	case <-a.quit:
		return false
	}
}

// send hands the alpha of the yuva420p frame f to the goroutine: a
// picture of its own referencing f's A plane. It does not take f over.
func (a *alphaEncoder) send(f *astiav.Frame) error {
	pic := getShell()
	if ret := C.vm_frame_alpha_picture(cFrame(pic), cFrame(f), a.chroma, C.int(a.ls)); ret < 0 {
		putShell(pic)
		return internalErr("building the alpha picture", avErr(ret))
	}
	return a.put(pic)
}

// flush tells the goroutine the last frame has been sent.
func (a *alphaEncoder) flush() error { return a.put(nil) }

// put hands pic over, keeping the packets that come out meanwhile.
func (a *alphaEncoder) put(pic *astiav.Frame) error {
	for {
		select {
		case a.in <- pic:
			return nil
		case p, ok := <-a.out:
			if !ok {
				if pic != nil {
					putShell(pic)
				}
				return internalErr("encoding the alpha", errors.New("the alpha encoder ended early"))
			}
			if p.err != nil {
				if pic != nil {
					putShell(pic)
				}
				return p.err
			}
			a.ready = append(a.ready, p.pkt)
		}
	}
}

// next returns the oldest alpha packet, waiting for it.
func (a *alphaEncoder) next() (*astiav.Packet, error) {
	if len(a.ready) > 0 {
		p := a.ready[0]
		a.ready[0] = nil
		a.ready = a.ready[1:]
		return p, nil
	}
	p, ok := <-a.out
	if !ok {
		return nil, errAlphaDone
	}
	return p.pkt, p.err
}

// attach gives the picture packet pkt the alpha packet of its PTS, as
// BlockAdditional 1. A picture keyframe whose alpha is not one is written
// as an ordinary frame: a player that seeks to a keyframe of the file then
// finds both the picture and its alpha decodable there.
func (a *alphaEncoder) attach(pkt *astiav.Packet) error {
	ap, err := a.next()
	if err != nil {
		return internalErr("encoding the alpha", fmt.Errorf("frame at PTS %d: %w", pkt.Pts(), err))
	}
	defer ap.Free()
	if ap.Pts() != pkt.Pts() {
		return internalErr("encoding the alpha", fmt.Errorf("the alpha of PTS %d came for the picture of PTS %d", ap.Pts(), pkt.Pts()))
	}
	if ret := C.vm_packet_add_alpha(cPacket(pkt), cPacket(ap)); ret < 0 {
		return internalErr("attaching the alpha", avErr(ret))
	}
	if pkt.Flags().Has(astiav.PacketFlagKey) && !ap.Flags().Has(astiav.PacketFlagKey) {
		pkt.SetFlags(pkt.Flags().Del(astiav.PacketFlagKey))
	}
	return nil
}

// finish checks, after the picture encoder's last packet, that the alpha
// encoder has none left over: it gave a packet for every frame and ended.
func (a *alphaEncoder) finish() error {
	p, err := a.next()
	if p != nil {
		p.Free()
		return internalErr("encoding the alpha", fmt.Errorf("an alpha frame at PTS %d has no picture", p.Pts()))
	}
	if err != nil && !errors.Is(err, errAlphaDone) {
		return err
	}
	return nil
}

// close stops the goroutine and frees everything: the pictures and
// packets still in flight, the encoder and the chroma. Safe twice.
func (a *alphaEncoder) close() {
	if a.closed {
		return
	}
	a.closed = true
	close(a.quit)
	<-a.done
	for len(a.in) > 0 {
		if f := <-a.in; f != nil {
			putShell(f)
		}
	}
	for len(a.out) > 0 {
		if p, ok := <-a.out; ok && p.pkt != nil {
			p.pkt.Free()
		}
	}
	for _, p := range a.ready {
		p.Free()
	}
	a.ready = nil
	a.cc.Free()
	C.vm_buffer_unref(&a.chroma)
}

// Package codec owns every use of FFmpeg (go-astiav v0.16.0 on FFmpeg 5.1,
// plus a few lines of cgo for what the binding lacks): probing media files,
// demuxing and decoding video into pooled yuv420p frames, scaling frames to
// planar RGB for models and mattes up to frame size, and encoding frames
// with their alpha matte into the output formats, carrying the input's
// audio across. No other package imports go-astiav.
//
// # Ownership
//
// C memory has one owner at a time. A Frame belongs to whoever
// Decoder.Next handed it to until Release, and stays valid after the
// Decoder is closed; LiveFrames counts frames not yet released. An Encoder
// takes references of its own in WriteFrame (the YUV planes are shared;
// an alpha plane attached to the frame is shared too, alpha given as bytes
// is copied), so the caller may release the frame and reuse its alpha
// bytes at once. Alpha planes come from an AlphaPool, in C memory laid out
// as FFmpeg's own planes: a plane is its holder's to write until it is
// attached to a frame (Frame.AttachAlpha), the frame's until the frame is
// written to an encoder, and FFmpeg's to read from then on; it goes back to
// its pool when the last reference to it is dropped (LiveAlphaPlanes
// counts those out). With GuardAlphaPlanes on, a passed plane is
// read-only, so a late write faults. Decoders, scalers and encoders free
// their C objects in Close (or Abort).
//
// # Input
//
// Probe and OpenDecoder only open local files (FFmpeg's protocols are
// limited to file) with a demuxer of InputFormats, chosen from the file's
// first bytes before any header is parsed (FFmpeg's format_whitelist
// checks it again): still images, text and playlists (HLS, ffconcat, …)
// are refused. Background images are PNG, JPEG or WebP only (ImageFormats,
// chosen by signature) of at most DefaultMaxBackgroundPixels unless
// EncoderOptions say otherwise. ProbeContext stops when its context ends;
// a duration the container does not declare is derived from the video
// packets. Every failure to open or read an input is a *vidmatte.Error
// wrapping one of ErrEmpty, ErrNotMedia, ErrNoVideo, ErrUnsupportedCodec,
// ErrTruncated, ErrCorrupt, ErrDimensions or ErrNoDuration (ErrNotImage and
// ErrImageTooLarge for backgrounds). A file is "cut short" when its container's
// own structure (MP4 boxes, the Matroska segment, RIFF chunks) declares more
// bytes than the file holds: Probe refuses it, a Decoder returns the frames
// before the cut and then ErrTruncated (see Decoder for the full rule).
// Frames come out in display orientation: a display matrix rotation of 90,
// 180 or 270 degrees is applied (mirroring matrices are not).
//
// # Output formats
//
//   - webm: VP9 with alpha (libvpx-vp9, yuva420p). The decoded Y, U and V
//     planes go to the encoder as they are, with the matte attached as the
//     A plane: no conversion. Audio: Opus (Vorbis and Opus are copied).
//   - mov: ProRes 4444 (prores_ks, yuva444p10le). Audio copied when
//     QuickTime takes it (AAC, MP3, ALAC, AC-3, PCM), else AAC.
//   - mp4: H.264 (libx264, yuv420p) composited over a colour, an image or a
//     blur of the frame itself; a transparent background is refused. Audio
//     AAC, copied when it is AAC.
//   - webp: animated WebP with alpha (libwebp_anim, yuva420p, no
//     conversion), no audio. libwebp assembles the animation in memory.
//   - gif: animated GIF, no audio. Each frame gets its own palette
//     (palettegen stats_mode=single, paletteuse new=1): memory stays at one
//     frame whatever the length, and every frame has the best 255 colours
//     for it plus the transparent index, which pixels with alpha below 128
//     take.
//   - png_sequence: a zip, written as it goes, of RGBA PNGs named
//     frame_000001.png, …, no audio.
//   - mask: the matte as H.264 luma in MP4 (neutral chroma, full range
//     flagged), audio as for mp4. Backgrounds do not apply to it.
//
// Any format with a background other than transparent gets an opaque
// picture. A Composition scales the foreground and places it on a canvas
// (anchor, then offset; positions are rounded to even pixels by 4:2:0
// chroma) over the background or transparency. H.264 needs even sizes: mp4
// and mask drop an odd last row or column.
//
// Timestamps are kept: a variable frame rate stays variable, and the audio
// (shifted by the same origin, the first frame written) stays in sync.
// Encoders run with all cores unless told otherwise; packets are rescaled
// to the time base each muxer settles on when it writes its header.
package codec

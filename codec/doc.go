// Package codec owns every use of FFmpeg (through go-astiav and a few lines
// of cgo): probing media files, demuxing and decoding video into pooled
// yuv420p frames, scaling frames to planar RGB for models and mattes back up
// to frame size, and encoding frames with their alpha matte into the output
// formats (WebM/VP9, MOV/ProRes 4444, MP4/H.264 over a background, animated
// WebP and GIF, a zip of PNGs, a grayscale mask video), carrying the input's
// audio across. No other package imports go-astiav.
//
// C memory has one owner at a time: a Frame belongs to whoever Next handed
// it to until Release; an Encoder takes references of its own; decoders,
// scalers and encoders free their C objects in Close (or Abort).
package codec

// The few FFmpeg operations go-astiav v0.16.0 does not expose, written
// against the FFmpeg 5.1 C API. Every function here borrows its arguments:
// none keeps a pointer to Go memory after it returns.
#ifndef VIDMATTE_CODEC_FFMPEG_H
#define VIDMATTE_CODEC_FFMPEG_H

#include <stdint.h>
#include <libavcodec/avcodec.h>
#include <libavfilter/avfilter.h>
#include <libavformat/avformat.h>
#include <libavutil/buffer.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

// Frames.
int vm_frame_ensure_positive(AVFrame *f);
int64_t vm_frame_best_effort_pts(const AVFrame *f);
int64_t vm_frame_duration(const AVFrame *f);
int vm_frame_attach_alpha(AVFrame *dst, const AVFrame *src, AVBufferPool *pool, int alpha_linesize,
                          const uint8_t *alpha, int alpha_stride);
int vm_frame_mask(AVFrame *dst, int width, int height, const uint8_t *alpha, int alpha_stride);
int vm_frame_own_chroma(AVFrame *f);
AVBufferRef *vm_neutral_chroma(int height, int ls);
void vm_buffer_unref(AVBufferRef **b);
void vm_release_free_memory(void);
int vm_frame_mask_ref(AVFrame *dst, AVFrame *src, int width, int height, AVBufferRef *chroma, int ls);
int vm_frame_alpha_picture(AVFrame *dst, AVFrame *src, AVBufferRef *chroma, int ls);
int vm_frame_picture_ref(AVFrame *dst, AVFrame *src);
int vm_packet_add_alpha(AVPacket *p, const AVPacket *alpha);
int vm_frame_fill_yuva(AVFrame *f, int width, int height, int format, uint8_t y, uint8_t u, uint8_t v, uint8_t a);

// Alpha planes libavcodec references directly (alpha.c).
typedef struct VMAlphaPool VMAlphaPool;
typedef struct VMAlphaBlock {
    struct VMAlphaPool *pool;
    uint8_t *data;
    size_t mapped;
    int passed; // handed to FFmpeg: the frame's holder must not write it
    int sealed; // read-only pages (the guard) until released
    struct VMAlphaBlock *next;
} VMAlphaBlock;
VMAlphaPool *vm_alpha_pool_new(size_t size);
AVBufferRef *vm_alpha_get(VMAlphaPool *p, VMAlphaBlock **blk);
void vm_alpha_pool_close(VMAlphaPool *p);
int vm_alpha_seal(VMAlphaBlock *b);
void vm_alpha_set_guard(int on);
long vm_alpha_live_planes(void);
long vm_alpha_mapped_blocks(void);
int vm_frame_set_alpha(AVFrame *f, AVBufferRef *a, int ls);

void vm_set_colorspace(AVFrame *f, int colorspace, int range);
void vm_set_pkt_timebase(AVCodecContext *cc, int num, int den);
int vm_pix_fmt_is_rgb(int fmt);

void vm_cc_set_color(AVCodecContext *cc, int primaries, int trc, int space, int range);
AVBufferPool *vm_buffer_pool_new(int size);
void vm_buffer_pool_free(AVBufferPool *p);
void vm_frame_default_layout(AVFrame *f);
int vm_layout_name(const AVFrame *f, char *buf, int size);

// Probing.
const char *vm_probe_format(const uint8_t *buf, int size, const char *filename, int *score);
int vm_stream_is_attached_pic(const AVStream *st);
int vm_query_codec(const char *muxer, int codec_id);

// Interrupting a demuxer: vm_interrupt_new allocates a flag (0), which
// vm_interrupt_bind makes fc's interrupt callback read; vm_interrupt_raise
// sets it from any thread, and FFmpeg's next I/O on fc gives AVERROR_EXIT.
// The flag is freed with vm_interrupt_free after fc is closed.
int *vm_interrupt_new(void);
void vm_interrupt_bind(AVFormatContext *fc, int *flag);
void vm_interrupt_raise(int *flag);
void vm_interrupt_free(int *flag);

// Colour names.
const char *vm_color_range_name(int r);
const char *vm_color_space_name(int s);

// Scaling.
struct SwsContext *vm_sws_new(int sw, int sh, int sfmt, int dw, int dh, int dfmt, int flags);
int vm_sws_set_yuv_to_rgb(struct SwsContext *c, int colorspace, int full_range);
int vm_sws_frame_to_gbr(struct SwsContext *c, const AVFrame *src, uint8_t *r, uint8_t *g, uint8_t *b, int stride);
int vm_sws_frame_to_packed(struct SwsContext *c, const AVFrame *src, uint8_t *dst, int stride);
int vm_sws_gray(struct SwsContext *c, const uint8_t *src, int src_stride, int src_h, uint8_t *dst, int dst_stride);

#endif

#include "ffmpeg.h"

#include <string.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <libavutil/imgutils.h>
#include <libavutil/mem.h>
#include <libavutil/pixfmt.h>

// vm_frame_ensure_positive replaces the planes of f by a copy when one of
// them has a negative line size (vflip hands such frames out), so that the
// planes can be exposed as ordinary top-down byte slices.
int vm_frame_ensure_positive(AVFrame *f) {
    int neg = 0;
    for (int i = 0; i < 4 && f->data[i]; i++) {
        if (f->linesize[i] < 0) {
            neg = 1;
        }
    }
    if (!neg) {
        return 0;
    }
    AVFrame *tmp = av_frame_alloc();
    if (!tmp) {
        return AVERROR(ENOMEM);
    }
    tmp->format = f->format;
    tmp->width = f->width;
    tmp->height = f->height;
    int ret = av_frame_get_buffer(tmp, 0);
    if (ret >= 0) {
        ret = av_frame_copy(tmp, f);
    }
    if (ret >= 0) {
        ret = av_frame_copy_props(tmp, f);
    }
    if (ret < 0) {
        av_frame_free(&tmp);
        return ret;
    }
    av_frame_unref(f);
    av_frame_move_ref(f, tmp);
    av_frame_free(&tmp);
    return 0;
}

int64_t vm_frame_best_effort_pts(const AVFrame *f) {
    return f->best_effort_timestamp;
}

int64_t vm_frame_duration(const AVFrame *f) {
    return f->pkt_duration;
}

// vm_frame_attach_alpha makes dst a yuva420p frame whose Y, U and V planes
// are new references to the planes of the yuv420p frame src (no copy) and
// whose A plane is a copy of alpha, in a buffer taken from pool.
int vm_frame_attach_alpha(AVFrame *dst, const AVFrame *src, AVBufferPool *pool, int alpha_linesize,
                          const uint8_t *alpha, int alpha_stride) {
    if (src->nb_extended_buf) {
        return AVERROR(EINVAL);
    }
    AVBufferRef *a = av_buffer_pool_get(pool);
    if (!a) {
        return AVERROR(ENOMEM);
    }
    for (int y = 0; y < src->height; y++) {
        memcpy(a->data + (size_t)y * alpha_linesize, alpha + (size_t)y * alpha_stride, src->width);
    }
    int n = 0;
    for (int i = 0; i < AV_NUM_DATA_POINTERS; i++) {
        if (!src->buf[i]) {
            continue;
        }
        if (n >= AV_NUM_DATA_POINTERS - 1) {
            goto fail;
        }
        dst->buf[n] = av_buffer_ref(src->buf[i]);
        if (!dst->buf[n]) {
            goto fail;
        }
        n++;
    }
    dst->buf[n] = a;
    a = NULL;
    dst->format = AV_PIX_FMT_YUVA420P;
    dst->width = src->width;
    dst->height = src->height;
    for (int i = 0; i < 3; i++) {
        dst->data[i] = src->data[i];
        dst->linesize[i] = src->linesize[i];
    }
    dst->data[3] = dst->buf[n]->data;
    dst->linesize[3] = alpha_linesize;
    if (av_frame_copy_props(dst, src) < 0) {
        goto fail;
    }
    return 0;
fail:
    av_buffer_unref(&a);
    av_frame_unref(dst);
    return AVERROR(ENOMEM);
}

static int alloc_gray_yuv(AVFrame *dst, int width, int height) {
    dst->format = AV_PIX_FMT_YUV420P;
    dst->width = width;
    dst->height = height;
    int ret = av_frame_get_buffer(dst, 0);
    if (ret < 0) {
        return ret;
    }
    int cw = (width + 1) / 2, ch = (height + 1) / 2;
    for (int y = 0; y < ch; y++) {
        memset(dst->data[1] + (size_t)y * dst->linesize[1], 128, cw);
        memset(dst->data[2] + (size_t)y * dst->linesize[2], 128, cw);
    }
    dst->color_range = AVCOL_RANGE_JPEG;
    return 0;
}

// vm_frame_mask makes dst a full-range yuv420p frame of width x height whose
// luma is the alpha plane and whose chroma is neutral.
int vm_frame_mask(AVFrame *dst, int width, int height, const uint8_t *alpha, int alpha_stride) {
    int ret = alloc_gray_yuv(dst, width, height);
    if (ret < 0) {
        return ret;
    }
    for (int y = 0; y < height; y++) {
        memcpy(dst->data[0] + (size_t)y * dst->linesize[0], alpha + (size_t)y * alpha_stride, width);
    }
    return 0;
}

// vm_frame_fill_yuva allocates f as a yuv420p or yuva420p frame with every
// sample of each plane set to the given value.
int vm_frame_fill_yuva(AVFrame *f, int width, int height, int format, uint8_t y, uint8_t u, uint8_t v, uint8_t a) {
    f->format = format;
    f->width = width;
    f->height = height;
    int ret = av_frame_get_buffer(f, 0);
    if (ret < 0) {
        return ret;
    }
    uint8_t vals[4] = {y, u, v, a};
    int planes = format == AV_PIX_FMT_YUVA420P ? 4 : 3;
    for (int p = 0; p < planes; p++) {
        int w = (p == 1 || p == 2) ? (width + 1) / 2 : width;
        int h = (p == 1 || p == 2) ? (height + 1) / 2 : height;
        for (int r = 0; r < h; r++) {
            memset(f->data[p] + (size_t)r * f->linesize[p], vals[p], w);
        }
    }
    return 0;
}

// vm_probe_format asks FFmpeg's probers which container buf (the first size
// bytes of a file) looks like, judging by content only.
const char *vm_probe_format(const uint8_t *buf, int size, const char *filename, int *score) {
    AVProbeData pd;
    memset(&pd, 0, sizeof(pd));
    pd.filename = filename;
    pd.buf = av_mallocz((size_t)size + AVPROBE_PADDING_SIZE);
    if (!pd.buf) {
        *score = 0;
        return NULL;
    }
    memcpy(pd.buf, buf, size);
    pd.buf_size = size;
    *score = 0;
    const AVInputFormat *f = av_probe_input_format3(&pd, 1, score);
    av_free(pd.buf);
    return f ? f->name : NULL;
}

int vm_stream_is_attached_pic(const AVStream *st) {
    return (st->disposition & AV_DISPOSITION_ATTACHED_PIC) != 0;
}

// vm_query_codec reports whether the named muxer can store codec_id.
int vm_query_codec(const char *muxer, int codec_id) {
    const AVOutputFormat *of = av_guess_format(muxer, NULL, NULL);
    if (!of) {
        return 0;
    }
    return avformat_query_codec(of, codec_id, FF_COMPLIANCE_NORMAL) == 1;
}

const char *vm_color_range_name(int r) {
    const char *n = av_color_range_name(r);
    return n ? n : "unknown";
}

const char *vm_color_space_name(int s) {
    const char *n = av_color_space_name(s);
    return n ? n : "unknown";
}

struct SwsContext *vm_sws_new(int sw, int sh, int sfmt, int dw, int dh, int dfmt, int flags) {
    return sws_getContext(sw, sh, sfmt, dw, dh, dfmt, flags, NULL, NULL, NULL);
}

// vm_sws_set_yuv_to_rgb chooses the matrix (SWS_CS_ITU709, SWS_CS_ITU601, …)
// and range the source YUV is read with.
int vm_sws_set_yuv_to_rgb(struct SwsContext *c, int colorspace, int full_range) {
    const int *inv = sws_getCoefficients(colorspace);
    const int *tbl = sws_getCoefficients(SWS_CS_DEFAULT);
    return sws_setColorspaceDetails(c, inv, full_range, tbl, 1, 0, 1 << 16, 1 << 16);
}

// vm_sws_frame_to_gbr scales the yuv420p frame src into three planes of
// planar RGB (gbrp's plane order is G, B, R).
int vm_sws_frame_to_gbr(struct SwsContext *c, const AVFrame *src, uint8_t *r, uint8_t *g, uint8_t *b, int stride) {
    uint8_t *dst[4] = {g, b, r, NULL};
    int dst_stride[4] = {stride, stride, stride, 0};
    return sws_scale(c, (const uint8_t *const *)src->data, src->linesize, 0, src->height, dst, dst_stride);
}

// vm_sws_frame_to_packed scales the yuv420p frame src into one plane of
// packed pixels (rgb24: R, G, B of each pixel in turn).
int vm_sws_frame_to_packed(struct SwsContext *c, const AVFrame *src, uint8_t *dst, int stride) {
    uint8_t *d[4] = {dst, NULL, NULL, NULL};
    int ds[4] = {stride, 0, 0, 0};
    return sws_scale(c, (const uint8_t *const *)src->data, src->linesize, 0, src->height, d, ds);
}

int vm_sws_gray(struct SwsContext *c, const uint8_t *src, int src_stride, int src_h, uint8_t *dst, int dst_stride) {
    const uint8_t *s[4] = {src, NULL, NULL, NULL};
    int ss[4] = {src_stride, 0, 0, 0};
    uint8_t *d[4] = {dst, NULL, NULL, NULL};
    int ds[4] = {dst_stride, 0, 0, 0};
    return sws_scale(c, s, ss, 0, src_h, d, ds);
}

void vm_set_colorspace(AVFrame *f, int colorspace, int range) {
    f->colorspace = colorspace;
    f->color_range = range;
}

void vm_set_pkt_timebase(AVCodecContext *cc, int num, int den) {
    cc->pkt_timebase = (AVRational){num, den};
}

int vm_pix_fmt_is_rgb(int fmt) {
    const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
    return d && (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) != 0;
}

void vm_cc_set_color(AVCodecContext *cc, int primaries, int trc, int space, int range) {
    cc->color_primaries = primaries;
    cc->color_trc = trc;
    cc->colorspace = space;
    cc->color_range = range;
}

AVBufferPool *vm_buffer_pool_new(int size) {
    return av_buffer_pool_init(size, NULL);
}

void vm_buffer_pool_free(AVBufferPool *p) {
    av_buffer_pool_uninit(&p);
}

// vm_frame_default_layout gives an audio frame whose channels have no
// declared order the default layout for its channel count.
void vm_frame_default_layout(AVFrame *f) {
    if (f->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) {
        int n = f->ch_layout.nb_channels;
        av_channel_layout_uninit(&f->ch_layout);
        av_channel_layout_default(&f->ch_layout, n);
    }
}

// vm_layout_name describes an audio frame's channel layout into buf.
int vm_layout_name(const AVFrame *f, char *buf, int size) {
    return av_channel_layout_describe(&f->ch_layout, buf, size);
}

static int vm_interrupt_cb(void *opaque) {
    return __atomic_load_n((int *)opaque, __ATOMIC_ACQUIRE);
}

int *vm_interrupt_new(void) {
    return av_mallocz(sizeof(int));
}

void vm_interrupt_bind(AVFormatContext *fc, int *flag) {
    fc->interrupt_callback.callback = vm_interrupt_cb;
    fc->interrupt_callback.opaque = flag;
}

void vm_interrupt_raise(int *flag) {
    __atomic_store_n(flag, 1, __ATOMIC_RELEASE);
}

void vm_interrupt_free(int *flag) {
    av_free(flag);
}

// vm_frame_own_chroma gives the yuv420p frame f U and V planes that no one
// else references, for a caller that overwrites them whole: when either is
// shared, both move to a new buffer (their contents undefined) and the Y
// plane stays where it is, shared or not. Buffers no plane points into any
// more are dropped. Nothing is copied.
int vm_frame_own_chroma(AVFrame *f) {
    if (f->format != AV_PIX_FMT_YUV420P || f->nb_extended_buf) {
        return AVERROR(EINVAL);
    }
    int shared = 0;
    for (int p = 1; p <= 2; p++) {
        AVBufferRef *b = av_frame_get_plane_buffer(f, p);
        if (!b || !av_buffer_is_writable(b)) {
            shared = 1;
        }
    }
    if (!shared) {
        return 0;
    }
    int ls = FFALIGN((f->width + 1) / 2, 64);
    size_t plane = (size_t)ls * ((f->height + 1) / 2);
    AVBufferRef *nb = av_buffer_alloc(2 * plane + 64);
    if (!nb) {
        return AVERROR(ENOMEM);
    }
    f->data[1] = nb->data;
    f->data[2] = nb->data + plane;
    f->linesize[1] = f->linesize[2] = ls;
    AVBufferRef *keep[AV_NUM_DATA_POINTERS];
    int n = 0;
    for (int i = 0; i < AV_NUM_DATA_POINTERS; i++) {
        AVBufferRef *b = f->buf[i];
        f->buf[i] = NULL;
        if (!b) {
            continue;
        }
        int used = 0;
        for (int p = 0; p < AV_NUM_DATA_POINTERS && !used; p++) {
            used = f->data[p] && f->data[p] >= b->data && f->data[p] < b->data + b->size;
        }
        if (used) {
            keep[n++] = b;
        } else {
            av_buffer_unref(&b);
        }
    }
    // Y lives in one buffer at most, so at least one slot is free.
    for (int i = 0; i < n; i++) {
        f->buf[i] = keep[i];
    }
    f->buf[n] = nb;
    return 0;
}

// vm_neutral_chroma allocates the U and V planes (U first, each
// (height+1)/2 rows at linesize ls) of a picture whose chroma is neutral:
// every sample 128. Mask pictures share it, read-only.
AVBufferRef *vm_neutral_chroma(int height, int ls) {
    size_t size = 2 * (size_t)ls * ((height + 1) / 2);
    AVBufferRef *b = av_buffer_alloc(size + 64);
    if (b) {
        memset(b->data, 128, size + 64);
    }
    return b;
}

void vm_buffer_unref(AVBufferRef **b) {
    av_buffer_unref(b);
}

// vm_frame_mask_ref makes dst a full-range yuv420p picture of width x
// height whose luma is the A plane of the yuva420p frame src (a new
// reference to it, no copy) and whose chroma is the neutral planes of
// chroma (vm_neutral_chroma, linesize ls), referenced too.
int vm_frame_mask_ref(AVFrame *dst, AVFrame *src, int width, int height, AVBufferRef *chroma, int ls) {
    if (src->format != AV_PIX_FMT_YUVA420P || width > src->width || height > src->height ||
        (size_t)ls < (size_t)(width + 1) / 2 || chroma->size < 2 * (size_t)ls * ((height + 1) / 2)) {
        return AVERROR(EINVAL);
    }
    AVBufferRef *a = av_frame_get_plane_buffer(src, 3);
    if (!a) {
        return AVERROR(EINVAL);
    }
    dst->buf[0] = av_buffer_ref(a);
    dst->buf[1] = av_buffer_ref(chroma);
    if (!dst->buf[0] || !dst->buf[1]) {
        av_frame_unref(dst);
        return AVERROR(ENOMEM);
    }
    dst->format = AV_PIX_FMT_YUV420P;
    dst->width = width;
    dst->height = height;
    dst->data[0] = src->data[3];
    dst->linesize[0] = src->linesize[3];
    dst->data[1] = chroma->data;
    dst->data[2] = chroma->data + (size_t)ls * ((height + 1) / 2);
    dst->linesize[1] = dst->linesize[2] = ls;
    dst->extended_data = dst->data;
    dst->color_range = AVCOL_RANGE_JPEG;
    dst->pts = src->pts;
    return 0;
}

// vm_frame_alpha_picture makes dst the picture a VP9 alpha encoder takes
// for the yuva420p frame src, as libavcodec's libvpx encoder builds it: the
// A plane as luma (a reference) over neutral chroma (vm_frame_mask_ref),
// with src's colour description and PTS, and its picture type, so that a
// keyframe forced on the picture is forced on its alpha.
int vm_frame_alpha_picture(AVFrame *dst, AVFrame *src, AVBufferRef *chroma, int ls) {
    int ret = vm_frame_mask_ref(dst, src, src->width, src->height, chroma, ls);
    if (ret < 0) {
        return ret;
    }
    dst->color_range = src->color_range;
    dst->colorspace = src->colorspace;
    dst->color_primaries = src->color_primaries;
    dst->color_trc = src->color_trc;
    dst->pict_type = src->pict_type;
    return 0;
}

// vm_frame_picture_ref makes dst a yuv420p reference to the Y, U and V
// planes of the yuva420p frame src, its alpha left out.
int vm_frame_picture_ref(AVFrame *dst, AVFrame *src) {
    if (src->format != AV_PIX_FMT_YUVA420P) {
        return AVERROR(EINVAL);
    }
    int ret = av_frame_ref(dst, src);
    if (ret < 0) {
        return ret;
    }
    dst->format = AV_PIX_FMT_YUV420P;
    dst->data[3] = NULL;
    dst->linesize[3] = 0;
    return 0;
}

// vm_packet_add_alpha gives the VP9 packet p the encoded alpha frame in
// alpha as its Matroska BlockAdditional 1 (an 8-byte big-endian BlockAddID,
// then the frame), the side data libavcodec's libvpx encoder gives a
// yuva420p frame's packet and the WebM muxer writes.
int vm_packet_add_alpha(AVPacket *p, const AVPacket *alpha) {
    uint8_t *side = av_packet_new_side_data(p, AV_PKT_DATA_MATROSKA_BLOCKADDITIONAL, (size_t)alpha->size + 8);
    if (!side) {
        return AVERROR(ENOMEM);
    }
    for (int i = 0; i < 7; i++) {
        side[i] = 0;
    }
    side[7] = 1;
    memcpy(side + 8, alpha->data, alpha->size);
    return 0;
}

// vm_release_free_memory gives the free memory of the C heap back to the
// system. glibc keeps what an encoder frees in the arena of the thread
// that freed it; encoders made and dropped one after another (a part
// every few seconds) from threads that change would otherwise leave every
// arena at its high-water mark.
void vm_release_free_memory(void) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

#include "ffmpeg.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

// A pool of alpha planes whose memory libavcodec references directly: each
// plane handed out is an AVBufferRef over a block of the pool, and the
// block comes back to the pool when the last reference to it is dropped,
// by Go or by whichever FFmpeg thread held it last. Blocks are whole pages
// (mmap), so that a plane passed to an encoder can be made read-only
// while FFmpeg holds it (vm_alpha_seal, when the guard is on): a write
// from Go to a passed plane then faults at once instead of corrupting a
// picture being encoded.

struct VMAlphaPool {
    pthread_mutex_t mu;
    size_t size;   // bytes of a plane (what the buffers span)
    size_t mapped; // bytes of a block: size rounded up to whole pages
    VMAlphaBlock *free;
    int outstanding; // blocks out of the pool
    int closed;
};

static atomic_long vm_alpha_live;   // planes out of every pool, process-wide
static atomic_long vm_alpha_mapped; // blocks mapped, process-wide
static atomic_int vm_alpha_guard;

void vm_alpha_set_guard(int on) { atomic_store(&vm_alpha_guard, on); }

long vm_alpha_live_planes(void) { return atomic_load(&vm_alpha_live); }

long vm_alpha_mapped_blocks(void) { return atomic_load(&vm_alpha_mapped); }

VMAlphaPool *vm_alpha_pool_new(size_t size) {
    VMAlphaPool *p = calloc(1, sizeof(*p));
    if (!p) {
        return NULL;
    }
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) {
        page = 4096;
    }
    p->size = size;
    p->mapped = (size + (size_t)page - 1) / (size_t)page * (size_t)page;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

static void unmap_block(VMAlphaBlock *b) {
    munmap(b->data, b->mapped);
    free(b);
    atomic_fetch_sub(&vm_alpha_mapped, 1);
}

static void destroy_pool(VMAlphaPool *p) {
    pthread_mutex_destroy(&p->mu);
    free(p);
}

// vm_alpha_release is the buffers' free callback: the plane's last
// reference is gone. It runs on whichever thread dropped that reference.
static void vm_alpha_release(void *opaque, uint8_t *data) {
    (void)data;
    VMAlphaBlock *b = opaque;
    VMAlphaPool *p = b->pool;
    if (b->sealed) {
        mprotect(b->data, b->mapped, PROT_READ | PROT_WRITE);
        b->sealed = 0;
    }
    b->passed = 0;
    atomic_fetch_sub(&vm_alpha_live, 1);
    pthread_mutex_lock(&p->mu);
    p->outstanding--;
    int last = p->closed && p->outstanding == 0;
    if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        unmap_block(b);
        if (last) {
            destroy_pool(p);
        }
        return;
    }
    b->next = p->free;
    p->free = b;
    pthread_mutex_unlock(&p->mu);
}

AVBufferRef *vm_alpha_get(VMAlphaPool *p, VMAlphaBlock **blk) {
    pthread_mutex_lock(&p->mu);
    if (p->closed) {
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    VMAlphaBlock *b = p->free;
    if (b) {
        p->free = b->next;
    }
    p->outstanding++;
    pthread_mutex_unlock(&p->mu);
    if (!b) {
        b = calloc(1, sizeof(*b));
        void *m = b ? mmap(NULL, p->mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) : MAP_FAILED;
        if (m == MAP_FAILED) {
            free(b);
            pthread_mutex_lock(&p->mu);
            p->outstanding--;
            pthread_mutex_unlock(&p->mu);
            return NULL;
        }
        b->pool = p;
        b->data = m;
        b->mapped = p->mapped;
        atomic_fetch_add(&vm_alpha_mapped, 1);
    }
    b->next = NULL;
    atomic_fetch_add(&vm_alpha_live, 1);
    // Read-only to FFmpeg: no filter or encoder writes into it in place
    // (av_frame_make_writable copies instead).
    AVBufferRef *ref = av_buffer_create(b->data, p->size, vm_alpha_release, b, AV_BUFFER_FLAG_READONLY);
    if (!ref) {
        vm_alpha_release(b, b->data);
        return NULL;
    }
    *blk = b;
    return ref;
}

// vm_alpha_pool_close gives the pool up: the blocks in it are unmapped now,
// those still out when they come back; the pool itself goes with the last.
void vm_alpha_pool_close(VMAlphaPool *p) {
    pthread_mutex_lock(&p->mu);
    p->closed = 1;
    VMAlphaBlock *b = p->free;
    p->free = NULL;
    int last = p->outstanding == 0;
    pthread_mutex_unlock(&p->mu);
    while (b) {
        VMAlphaBlock *next = b->next;
        unmap_block(b);
        b = next;
    }
    if (last) {
        destroy_pool(p);
    }
}

// vm_alpha_seal marks the plane passed to FFmpeg: the holder of the frame
// must not write it again. With the guard on, its pages become read-only
// until its last reference is dropped. The caller holds a reference.
int vm_alpha_seal(VMAlphaBlock *b) {
    b->passed = 1;
    if (!atomic_load(&vm_alpha_guard) || b->sealed) {
        return 0;
    }
    if (mprotect(b->data, b->mapped, PROT_READ) != 0) {
        return AVERROR(errno);
    }
    b->sealed = 1;
    return 0;
}

// vm_frame_set_alpha makes the yuv420p frame f a yuva420p frame whose A
// plane is the buffer a (linesize ls): f takes the reference over.
int vm_frame_set_alpha(AVFrame *f, AVBufferRef *a, int ls) {
    if (f->format != AV_PIX_FMT_YUV420P || f->nb_extended_buf) {
        return AVERROR(EINVAL);
    }
    for (int i = 0; i < AV_NUM_DATA_POINTERS; i++) {
        if (!f->buf[i]) {
            f->buf[i] = a;
            f->format = AV_PIX_FMT_YUVA420P;
            f->data[3] = a->data;
            f->linesize[3] = ls;
            return 0;
        }
    }
    return AVERROR(ENOMEM);
}

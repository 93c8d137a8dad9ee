/* fc_stream_copy(dst, src, n): n bytes to dst with non-temporal stores, which skip the
 * read-for-ownership of dst's cache lines that ordinary stores pay; for large outputs
 * written once and read later (im2col's col). On x86 (SSE2, 16-byte aligned dst) only;
 * elsewhere, and for a misaligned dst, memcpy. The stores are weakly ordered: a thread
 * calls fc_stream_fence() after its last copy, before other threads read the data. */
#ifndef FASTCONV_STREAM_H
#define FASTCONV_STREAM_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
static inline void fc_stream_copy(void* dst, const void* src, size_t n)
{
    if (((uintptr_t)dst & 15) != 0) {
        memcpy(dst, src, n);
        return;
    }
    char* d = (char*)dst;
    const char* s = (const char*)src;
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm_stream_si128((__m128i*)(d + i), _mm_loadu_si128((const __m128i*)(s + i)));
    memcpy(d + i, s + i, n - i);
}
static inline void fc_stream_fence(void)
{
    _mm_sfence();
}
#else
static inline void fc_stream_copy(void* dst, const void* src, size_t n)
{
    memcpy(dst, src, n);
}
static inline void fc_stream_fence(void)
{
}
#endif
#endif

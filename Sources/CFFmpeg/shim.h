#ifndef DENSECAP_CFFMPEG_SHIM_H
#define DENSECAP_CFFMPEG_SHIM_H
#include <libavformat/avformat.h>
#include <libavcodec/avcodec.h>
#include <libswscale/swscale.h>
#include <libavutil/imgutils.h>
#include <libavutil/display.h>
#include <libavutil/error.h>
#include <libavutil/pixdesc.h>
#include <errno.h>

// Function-like and cast macros are not imported by Swift; these expose them.
static inline int dc_averror_eagain(void) { return AVERROR(EAGAIN); }
static inline int dc_averror_eof(void) { return AVERROR_EOF; }
static inline int dc_averror_invaliddata(void) { return AVERROR_INVALIDDATA; }
static inline int dc_averror_decoder_not_found(void) { return AVERROR_DECODER_NOT_FOUND; }
static inline int dc_averror_enomem(void) { return AVERROR(ENOMEM); }
static inline int dc_averror_exit(void) { return AVERROR_EXIT; }
static inline int64_t dc_nopts_value(void) { return AV_NOPTS_VALUE; }
static inline int dc_frame_is_key(const AVFrame *f) { return f->key_frame; }
static inline int dc_frame_is_corrupt(const AVFrame *f) { return (f->flags & AV_FRAME_FLAG_CORRUPT) != 0 || f->decode_error_flags != 0; }
static inline int dc_packet_is_corrupt(const AVPacket *p) { return (p->flags & AV_PKT_FLAG_CORRUPT) != 0; }
static inline int dc_packet_is_key(const AVPacket *p) { return (p->flags & AV_PKT_FLAG_KEY) != 0; }

// Rotation in degrees (counter-clockwise, as av_display_rotation_get reports) of the stream's
// display matrix, or NAN when the stream has none. FFmpeg 5.1 keeps it in stream side data.
static inline double dc_stream_rotation(const AVStream *st) {
    size_t size = 0;
    const uint8_t *m = av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!m || size < 9 * sizeof(int32_t)) return NAN;
    return av_display_rotation_get((const int32_t *)m);
}
// 1 when the display matrix also mirrors the picture horizontally (negative determinant).
static inline int dc_stream_is_mirrored(const AVStream *st) {
    size_t size = 0;
    const int32_t *m = (const int32_t *)av_stream_get_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, &size);
    if (!m || size < 9 * sizeof(int32_t)) return 0;
    return ((int64_t)m[0] * m[4] - (int64_t)m[1] * m[3]) < 0;
}
#endif

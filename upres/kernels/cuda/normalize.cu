// HWC samples -> CHW float32 planes divided by the sample range (255, 65535 or 1).
//
// Reads the region (y0, x0, h, w) of an src_h x src_w image with src_c channels per pixel and
// keeps the first `channels`. Coordinates outside the image take the nearest edge sample
// (replicate), so a tile can be padded up to an engine profile's minimum shape. Division, not a
// reciprocal multiply: IEEE division matches numpy's `x.astype(float32) / float32(255)` exactly.

template <typename T>
__device__ void hwc_to_chw(const T* __restrict__ src, int src_h, int src_w, int src_c,
                           int y0, int x0, int h, int w, int channels, float denom,
                           float* __restrict__ dst) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    int sy = min(max(y0 + y, 0), src_h - 1);
    int sx = min(max(x0 + x, 0), src_w - 1);
    const T* px = src + ((size_t)sy * src_w + sx) * src_c;
    size_t plane = (size_t)h * w;
    size_t at = (size_t)y * w + x;
    for (int c = 0; c < channels; ++c) {
        dst[c * plane + at] = (float)px[c] / denom;
    }
}

extern "C" __global__ void normalize_u8(const unsigned char* src, int src_h, int src_w, int src_c,
                                        int y0, int x0, int h, int w, int channels, float denom,
                                        float* dst) {
    hwc_to_chw<unsigned char>(src, src_h, src_w, src_c, y0, x0, h, w, channels, denom, dst);
}

extern "C" __global__ void normalize_u16(const unsigned short* src, int src_h, int src_w, int src_c,
                                         int y0, int x0, int h, int w, int channels, float denom,
                                         float* dst) {
    hwc_to_chw<unsigned short>(src, src_h, src_w, src_c, y0, x0, h, w, channels, denom, dst);
}

extern "C" __global__ void normalize_f32(const float* src, int src_h, int src_w, int src_c,
                                         int y0, int x0, int h, int w, int channels, float denom,
                                         float* dst) {
    hwc_to_chw<float>(src, src_h, src_w, src_c, y0, x0, h, w, channels, denom, dst);
}

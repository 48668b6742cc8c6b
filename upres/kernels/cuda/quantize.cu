// CHW float32 planes -> HWC samples: the region (sy, sx, h, w) of a tile_h x tile_w tile, clipped
// to [0, 1]; for integer outputs scaled by 255 or 65535 and rounded half to even (rintf).
// Reference: upres.imageio.quantize (np.clip, *= float32(255), np.rint, astype).

__device__ __forceinline__ float unit(float v) { return fminf(fmaxf(v, 0.0f), 1.0f); }

template <typename T>
__device__ void chw_to_hwc(const float* __restrict__ src, int tile_h, int tile_w, int channels,
                           int sy, int sx, int h, int w, float range, T* __restrict__ dst) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    size_t plane = (size_t)tile_h * tile_w;
    size_t t = (size_t)(sy + y) * tile_w + (sx + x);
    size_t o = ((size_t)y * w + x) * channels;
    for (int c = 0; c < channels; ++c) {
        float v = unit(src[c * plane + t]);
        dst[o + c] = range == 1.0f ? (T)v : (T)rintf(v * range);
    }
}

extern "C" __global__ void quantize_u8(const float* src, int tile_h, int tile_w, int channels,
                                       int sy, int sx, int h, int w, float range, unsigned char* dst) {
    chw_to_hwc<unsigned char>(src, tile_h, tile_w, channels, sy, sx, h, w, range, dst);
}

extern "C" __global__ void quantize_u16(const float* src, int tile_h, int tile_w, int channels,
                                        int sy, int sx, int h, int w, float range, unsigned short* dst) {
    chw_to_hwc<unsigned short>(src, tile_h, tile_w, channels, sy, sx, h, w, range, dst);
}

extern "C" __global__ void quantize_f32(const float* src, int tile_h, int tile_w, int channels,
                                        int sy, int sx, int h, int w, float range, float* dst) {
    chw_to_hwc<float>(src, tile_h, tile_w, channels, sy, sx, h, w, range, dst);
}

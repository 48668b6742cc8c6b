// Feathered blending on a device canvas: fp32 weighted sum of overlapping tiles, then the
// normalisation. Reference: upres.runtime.blend.FeatherAccumulator (add / result).
//
// feather_accumulate adds the tile's rows sy..sy+h, columns sx..sx+w (CHW, tile_h x tile_w) with
// their weights to the canvas (HWC, canvas_w wide) at (dy, dx). One thread per pixel and tiles
// queued on one stream, so no two threads ever add to the same canvas pixel at once.

extern "C" __global__ void feather_accumulate(const float* __restrict__ tile, const float* __restrict__ weights,
                                              int tile_h, int tile_w, int channels,
                                              int sy, int sx, int h, int w,
                                              float* __restrict__ acc, float* __restrict__ wsum,
                                              int canvas_w, int dy, int dx) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    size_t plane = (size_t)tile_h * tile_w;
    size_t t = (size_t)(sy + y) * tile_w + (sx + x);
    size_t p = (size_t)(dy + y) * canvas_w + (dx + x);
    float wt = weights[t];
    for (int c = 0; c < channels; ++c) {
        acc[p * channels + c] += tile[c * plane + t] * wt;
    }
    wsum[p] += wt;
}

extern "C" __global__ void feather_normalize(const float* __restrict__ acc, const float* __restrict__ wsum,
                                             long long pixels, int channels, float* __restrict__ out) {
    long long p = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (p >= pixels) return;
    float wt = fmaxf(wsum[p], 1e-12f);
    for (int c = 0; c < channels; ++c) out[p * channels + c] = acc[p * channels + c] / wt;
}

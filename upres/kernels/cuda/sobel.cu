// The refine network's input from the coarse output: planes 0..2 = the coarse RGB clipped to
// [0, 1], plane 3 = normalised Sobel magnitude of its BT.601 luma (replicate borders).
//
// Reference: upres.kernels.edges.sobel_magnitude on the clipped coarse image. The luma sum keeps
// numpy's order ((r*R + g*G) + b*B); compiled with --fmad=false so no product is fused.

#define LUMA_R 0.299f
#define LUMA_G 0.587f
#define LUMA_B 0.114f
#define SOBEL_NORM 4.0f

__device__ __forceinline__ float unit(float v) { return fminf(fmaxf(v, 0.0f), 1.0f); }

__device__ __forceinline__ float luma_at(const float* __restrict__ rgb, int h, int w, int y, int x) {
    y = min(max(y, 0), h - 1);
    x = min(max(x, 0), w - 1);
    size_t plane = (size_t)h * w;
    size_t i = (size_t)y * w + x;
    return (LUMA_R * unit(rgb[i]) + LUMA_G * unit(rgb[plane + i])) + LUMA_B * unit(rgb[2 * plane + i]);
}

extern "C" __global__ void sobel_refine_input(const float* __restrict__ coarse, int h, int w,
                                              float* __restrict__ dst) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    size_t plane = (size_t)h * w;
    size_t i = (size_t)y * w + x;
    for (int c = 0; c < 3; ++c) dst[c * plane + i] = unit(coarse[c * plane + i]);
    float tl = luma_at(coarse, h, w, y - 1, x - 1), tc = luma_at(coarse, h, w, y - 1, x);
    float tr = luma_at(coarse, h, w, y - 1, x + 1), ml = luma_at(coarse, h, w, y, x - 1);
    float mr = luma_at(coarse, h, w, y, x + 1), bl = luma_at(coarse, h, w, y + 1, x - 1);
    float bc = luma_at(coarse, h, w, y + 1, x), br = luma_at(coarse, h, w, y + 1, x + 1);
    float gx = (tr - tl) + 2.0f * (mr - ml) + (br - bl);
    float gy = (bl - tl) + 2.0f * (bc - tc) + (br - tr);
    dst[3 * plane + i] = sqrtf(gx * gx + gy * gy) / SOBEL_NORM;
}

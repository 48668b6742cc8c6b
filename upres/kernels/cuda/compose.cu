// Hybrid compose: out = clip(coarse + texture * gate(edge) * residual, 0, 1), CHW planes.
//
// `refine_in` is the refine network's input (coarse RGB in planes 0..2, edge in plane 3), so the
// coarse image and edge map are read where the Sobel kernel left them. gate(e) = exp(-(e/knee)^2).
// Reference: upres.kernels.edges.compose; the product order (texture * gate) * residual is numpy's.

extern "C" __global__ void gated_compose(const float* __restrict__ refine_in,
                                         const float* __restrict__ residual, int h, int w,
                                         float texture, float knee, float* __restrict__ out) {
    int x = blockIdx.x * blockDim.x + threadIdx.x;
    int y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    size_t plane = (size_t)h * w;
    size_t i = (size_t)y * w + x;
    float e = refine_in[3 * plane + i] / knee;
    float gate = expf(-(e * e));
    float tg = texture * gate;
    for (int c = 0; c < 3; ++c) {
        float v = refine_in[c * plane + i] + tg * residual[c * plane + i];
        out[c * plane + i] = fminf(fmaxf(v, 0.0f), 1.0f);
    }
}

/* L2 normalisation of rows on the CPU, as torch.nn.functional.normalize(dim=1):
 * y = x / max(||x||, 1e-12). The rows are few and short (the projection head's output), so
 * this runs on the calling thread, in double per row. */
#include <math.h>

#include "cpu_backend.h"
#include "ops.h"

#define SC_L2_EPS 1e-12

supcon_status sc_cpu_l2norm_forward(void *state, float *y, float *norms, const float *x, int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x + i * d;
        double ss = 0.0;
        for (int64_t k = 0; k < d; k++) ss += (double)xr[k] * xr[k];
        const double norm = sqrt(ss), den = norm > SC_L2_EPS ? norm : SC_L2_EPS;
        norms[i] = (float)norm;
        float *yr = y + i * d;
        for (int64_t k = 0; k < d; k++) yr[k] = (float)(xr[k] / den);
    }
    return SUPCON_OK;
}

/* Above the clamp: dx = (dy - x (x . dy) / |x|^2) / |x|. At or below it the divisor is a
 * constant: dx = dy / 1e-12 (PyTorch's clamp_min passes no gradient to the norm there). */
supcon_status sc_cpu_l2norm_backward(void *state, float *dx, const float *dy, const float *x, const float *norms,
                                     int64_t n, int64_t d) {
    for (int64_t i = 0; i < n; i++) {
        const float *xr = x + i * d, *gr = dy + i * d;
        float *dr = dx + i * d;
        const double norm = norms[i];
        if (!(norm > SC_L2_EPS)) {
            for (int64_t k = 0; k < d; k++) dr[k] = (float)(gr[k] / SC_L2_EPS);
            continue;
        }
        double dot = 0.0;
        for (int64_t k = 0; k < d; k++) dot += (double)xr[k] * gr[k];
        const double c = dot / (norm * norm);
        for (int64_t k = 0; k < d; k++) dr[k] = (float)((gr[k] - xr[k] * c) / norm);
    }
    return SUPCON_OK;
}

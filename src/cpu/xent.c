/* Softmax cross-entropy on the CPU (mean over the batch, as torch.nn.CrossEntropyLoss) with
 * top-1/top-5 counts, as the reference's accuracy(). Rows are few: the calling thread, with
 * double sums. Leaves out label smoothing, class weights and ignore_index. */
#include <math.h>

#include "cpu_backend.h"
#include "ops.h"

static supcon_status sc_check_labels(sc_cpu *st, const int64_t *labels, int64_t n, int64_t classes) {
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= classes)
            return sc_cpu_fail(st, SUPCON_ERR_INVALID_ARGUMENT, "label %lld of row %lld is outside [0, %lld)",
                               (long long)labels[i], (long long)i, (long long)classes);
    return SUPCON_OK;
}

supcon_status sc_cpu_xent_forward(void *state, double *loss, int64_t *top1, int64_t *top5, float *probs,
                                  const float *logits, const int64_t *labels, int64_t n, int64_t classes) {
    sc_cpu *st = state;
    supcon_status s = sc_check_labels(st, labels, n, classes);
    if (s != SUPCON_OK) return s;
    double total = 0.0;
    int64_t c1 = 0, c5 = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *z = logits + i * classes;
        const float zl = z[labels[i]];
        float m = z[0];
        int64_t above = 0; /* logits strictly above the label's: its rank */
        for (int64_t k = 0; k < classes; k++) {
            m = z[k] > m ? z[k] : m;
            above += z[k] > zl;
        }
        double sum = 0.0;
        for (int64_t k = 0; k < classes; k++) sum += exp((double)z[k] - m);
        total += log(sum) - ((double)zl - m);
        c1 += above < 1;
        c5 += above < 5;
        if (probs) {
            float *p = probs + i * classes;
            for (int64_t k = 0; k < classes; k++) p[k] = (float)(exp((double)z[k] - m) / sum);
        }
    }
    *loss = n > 0 ? total / (double)n : 0.0;
    if (top1) *top1 = c1;
    if (top5) *top5 = c5;
    return SUPCON_OK;
}

supcon_status sc_cpu_xent_backward(void *state, float *dlogits, const float *probs, const int64_t *labels,
                                   int64_t n, int64_t classes, float dloss) {
    sc_cpu *st = state;
    supcon_status s = sc_check_labels(st, labels, n, classes);
    if (s != SUPCON_OK) return s;
    const double g = (double)dloss / (double)(n > 0 ? n : 1);
    for (int64_t i = 0; i < n; i++) {
        const float *p = probs + i * classes;
        float *d = dlogits + i * classes;
        for (int64_t k = 0; k < classes; k++) d[k] = (float)(g * ((double)p[k] - (k == labels[i])));
    }
    return SUPCON_OK;
}

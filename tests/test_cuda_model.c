/* A whole SupCon training step on CUDA against the same step on the CPU, through the public
 * API only: a small ResNet-18 with an MLP head, two views of each image as one batch, the
 * SupConLoss, backward, SGD. Same seed on both, so the weights start equal.
 *
 * float32: after each step the loss, every parameter's gradient and every parameter and
 * buffer must agree.
 *
 * SUPCON_PRECISION_BF16 (BN on its running statistics): the same roundings on both sides,
 * but float32 sums in another order move a convolution's result by one bfloat16 step now
 * and then, and the backward carries that on. Rounded gradients of the deep layers cancel
 * in their sums, so two correct implementations part by up to ~35 % there (measured with
 * the CUDA module's sources on the CPU emulation, tests/cuda_emu; a CPU run against itself
 * with 1/7 of the pixels moved by 1e-6 parts by 44 % after three steps), and a direct
 * comparison would test nothing. So the gradients and parameters of the first step are
 * judged by their error against float32 ones (a third side, the CPU in float32 on the same
 * weights and images): CUDA's bfloat16 error may be at most twice the CPU's. A wiring bug
 * (a copy missed, a wrong layout, an accumulation lost) makes it many times that. The
 * losses of every step must agree to 1e-3.
 * Exits 77 ("skipped") where no CUDA device is usable. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <supcon/supcon.h>

#include "test_util.h"

#define B 6      /* samples; two views each */
#define IMG 16   /* 3 x 16 x 16 images */
#define STEPS 3

typedef struct side {
    supcon_context *ctx;
    supcon_model *model;
    supcon_loss *loss;
    supcon_sgd *opt;
    supcon_tensor *input, *labels, *grad;
} side;

static int g_fail;

static void must(supcon_status s, supcon_context *ctx, const char *what) {
    if (s == SUPCON_OK) return;
    printf("FAIL %s: %s: %s\n", what, supcon_status_name(s), supcon_context_last_error(ctx));
    exit(1);
}

static supcon_status open_side(side *sd, supcon_backend_kind kind, supcon_precision precision, int training,
                               const float *img, const int64_t *lab) {
    memset(sd, 0, sizeof *sd);
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = kind;
    cc.precision = precision;
    cc.seed = 11;
    supcon_status s = supcon_context_create(&cc, &sd->ctx);
    if (s != SUPCON_OK) return s;
    supcon_model_config mc = supcon_model_config_default();
    mc.arch = SUPCON_RESNET18;
    mc.width = 8;
    mc.feat_dim = 32;
    must(supcon_model_create(sd->ctx, &mc, &sd->model), sd->ctx, "model_create");
    must(supcon_model_set_training(sd->model, training), sd->ctx, "set_training");
    supcon_loss_config lc = supcon_loss_config_default();
    lc.temperature = 0.1f;
    must(supcon_loss_create(sd->ctx, &lc, &sd->loss), sd->ctx, "loss_create");
    supcon_sgd_config oc = supcon_sgd_config_default();
    must(supcon_sgd_create(sd->ctx, &oc, &sd->opt), sd->ctx, "sgd_create");
    must(supcon_sgd_add_model(sd->opt, 0, sd->model, NULL, 0), sd->ctx, "sgd_add_model");
    const int64_t ishape[4] = {2 * B, 3, IMG, IMG}, lshape[1] = {B}, gshape[3] = {B, 2, 32};
    must(supcon_tensor_create(sd->ctx, SUPCON_FLOAT32, 4, ishape, &sd->input), sd->ctx, "input");
    must(supcon_tensor_upload(sd->input, img, sizeof(float) * 2 * B * 3 * IMG * IMG), sd->ctx, "upload input");
    must(supcon_tensor_create(sd->ctx, SUPCON_INT64, 1, lshape, &sd->labels), sd->ctx, "labels");
    must(supcon_tensor_upload(sd->labels, lab, sizeof(int64_t) * B), sd->ctx, "upload labels");
    must(supcon_tensor_create(sd->ctx, SUPCON_FLOAT32, 3, gshape, &sd->grad), sd->ctx, "grad");
    return SUPCON_OK;
}

/* One step; the batch is sample-major (rows 2i, 2i+1 are the views of sample i), so the head
 * output [2B, 32] is the loss's [B, 2, 32] as it stands. */
static float step(side *sd) {
    must(supcon_model_zero_grad(sd->model), sd->ctx, "zero_grad");
    must(supcon_model_forward(sd->model, sd->input), sd->ctx, "forward");
    supcon_tensor *head = (supcon_tensor *)supcon_model_head_output(sd->model), *view = NULL;
    const int64_t vshape[3] = {B, 2, 32};
    must(supcon_tensor_wrap(sd->ctx, SUPCON_FLOAT32, 3, vshape, supcon_tensor_data(head),
                            supcon_tensor_memory(head), &view),
         sd->ctx, "wrap head output");
    float value = NAN;
    must(supcon_loss_forward(sd->loss, view, sd->labels, NULL, &value), sd->ctx, "loss_forward");
    must(supcon_loss_backward(sd->loss, sd->grad), sd->ctx, "loss_backward");
    must(supcon_model_backward(sd->model, sd->grad, NULL, NULL), sd->ctx, "model_backward");
    must(supcon_sgd_step(sd->opt), sd->ctx, "sgd_step");
    supcon_tensor_free(view);
    return value;
}

/* Relative error in norm of tensor a (CUDA) against b (CPU); -1 on a shape mismatch. */
static double compare(const supcon_tensor *a, const supcon_tensor *b) {
    const int64_t n = supcon_tensor_numel(b);
    if (supcon_tensor_numel(a) != n) return -1;
    const size_t bytes = supcon_tensor_bytes(b);
    void *ha = malloc(bytes ? bytes : 1), *hb = malloc(bytes ? bytes : 1);
    supcon_tensor_download(a, ha, bytes);
    supcon_tensor_download(b, hb, bytes);
    double err = 0, norm = 0;
    for (int64_t i = 0; i < n; i++) {
        double x, y;
        if (supcon_tensor_dtype(b) == SUPCON_INT64) {
            x = (double)((int64_t *)ha)[i];
            y = (double)((int64_t *)hb)[i];
        } else {
            x = ((float *)ha)[i];
            y = ((float *)hb)[i];
        }
        err += (x - y) * (x - y);
        norm += y * y;
    }
    free(ha);
    free(hb);
    return norm > 0 ? sqrt(err / norm) : sqrt(err);
}

static void close_side(side *sd) {
    supcon_tensor_free(sd->input);
    supcon_tensor_free(sd->labels);
    supcon_tensor_free(sd->grad);
    supcon_sgd_free(sd->opt);
    supcon_loss_free(sd->loss);
    supcon_model_free(sd->model);
    supcon_context_free(sd->ctx);
}

/* Relative bounds of one precision: the loss, the gradients, the parameters and buffers.
 * against_fp32: gradients and parameters are judged after the first step only, by their
 * error against a float32 run (see the top of the file); grad and param then bound the
 * ratio of CUDA's error to the CPU's. */
typedef struct bounds {
    supcon_precision precision;
    int training; /* BN on batch statistics */
    const char *name;
    double loss, grad, param;
    int against_fp32;
} bounds;

/* One tensor's check: the error of the CUDA side e against the CPU's, or (against_fp32) the
 * ratio of both sides' errors against the float32 reference; returns what was compared. */
static double judge(const bounds *bd, const supcon_tensor *g, const supcon_tensor *c, const supcon_tensor *ref,
                    double bound, int step, const char *what, const char *name, int *passed) {
    double e = compare(g, c);
    if (bd->against_fp32) {
        const double eg = compare(g, ref), ec = compare(c, ref);
        /* 1e-4: a tensor that bfloat16 leaves (nearly) exact on the CPU side */
        e = eg < 0 || ec < 0 ? -1 : eg / (ec > 1e-4 ? ec : 1e-4);
        if (e >= 0 && e <= bound) {
            (*passed)++;
            return e;
        }
        printf("FAIL %s step %d: %s%s error against float32: cuda %.2e, cpu %.2e (ratio %.2f)\n", bd->name, step,
               what, name, eg, ec, e);
        g_fail++;
        return e;
    }
    if (e >= 0 && e <= bound) (*passed)++;
    else printf("FAIL %s step %d: %s%s rel %.2e\n", bd->name, step, what, name, e), g_fail++;
    return e;
}

/* STEPS steps on both sides; returns the checks passed (failures counted in g_fail). */
static int run_steps(const bounds *bd, const float *img, const int64_t *lab) {
    side cpu, gpu, ref;
    must(open_side(&gpu, SUPCON_BACKEND_CUDA, bd->precision, bd->training, img, lab), NULL, "cuda context");
    must(open_side(&cpu, SUPCON_BACKEND_CPU, bd->precision, bd->training, img, lab), NULL, "cpu context");
    if (bd->against_fp32)
        must(open_side(&ref, SUPCON_BACKEND_CPU, SUPCON_PRECISION_FP32, bd->training, img, lab), NULL, "fp32 context");
    int passed = 0;
    double worst_grad = 0, worst_param = 0;
    for (int k = 0; k < STEPS; k++) {
        const float lc = step(&cpu), lg = step(&gpu);
        const double el = fabs((double)lg - lc) / fabs((double)lc);
        if (el <= bd->loss) passed++;
        else printf("FAIL %s step %d: loss cuda %.7f cpu %.7f (rel %.2e)\n", bd->name, k, lg, lc, el), g_fail++;
        printf("%s step %d: loss cpu %.6f cuda %.6f\n", bd->name, k, lc, lg);
        if (bd->against_fp32 && k > 0) continue;
        if (bd->against_fp32) step(&ref);
        /* gradients of this step, then parameters and buffers after the update */
        const int64_t np = supcon_model_param_count(cpu.model);
        for (int64_t i = 0; i < np; i++) {
            const supcon_param_info *pc = supcon_model_param(cpu.model, i), *pg = supcon_model_param(gpu.model, i);
            const supcon_param_info *pr = bd->against_fp32 ? supcon_model_param(ref.model, i) : NULL;
            if (pc->grad) {
                const double e = judge(bd, pg->grad, pc->grad, pr ? pr->grad : NULL, bd->grad, k, "grad ", pc->name,
                                       &passed);
                worst_grad = e > worst_grad ? e : worst_grad;
            }
            const double e = judge(bd, pg->value, pc->value, pr ? pr->value : NULL, bd->param, k, "", pc->name,
                                   &passed);
            worst_param = e > worst_param ? e : worst_param;
        }
    }
    printf("%s: worst %s: gradients %.2e, parameters and buffers %.2e\n", bd->name,
           bd->against_fp32 ? "ratio of errors against float32 (cuda / cpu, first step)" : "relative error",
           worst_grad, worst_param);
    close_side(&cpu);
    close_side(&gpu);
    if (bd->against_fp32) close_side(&ref);
    return passed;
}

int main(void) {
    tu_rng r = tu_rng_seed(2024);
    float *img = malloc(sizeof(float) * 2 * B * 3 * IMG * IMG);
    for (int i = 0; i < 2 * B * 3 * IMG * IMG; i++) img[i] = (float)tu_normal(&r);
    const int64_t lab[B] = {0, 1, 2, 0, 1, 2};
    supcon_context_config cc = supcon_context_config_default();
    cc.backend = SUPCON_BACKEND_CUDA;
    supcon_context *probe = NULL;
    if (supcon_context_create(&cc, &probe) == SUPCON_ERR_BACKEND_UNAVAILABLE) {
        printf("skipped: %s\n", supcon_context_last_error(NULL));
        free(img);
        return 77;
    }
    supcon_context_free(probe);
    /* bf16: CUDA's error against float32 at most twice the CPU's, for the gradients and for
     * the parameters after the step (BN biases start at zero, so after a step they are -lr
     * times a gradient, with its error). */
    const bounds runs[] = {{SUPCON_PRECISION_FP32, 1, "fp32", 1e-4, 1e-3, 1e-4, 0},
                           {SUPCON_PRECISION_BF16, 0, "bf16", 1e-3, 2.0, 2.0, 1}};
    int passed = 0;
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) passed += run_steps(&runs[i], img, lab);
    free(img);
    printf("cuda_model: %d passed, %d failed\n", passed, g_fail);
    return g_fail ? 1 : 0;
}

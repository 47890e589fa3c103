/* A host program built against the *installed* libsupcon (tests/test_install.sh builds it
 * with CMake and with pkg-config). It checks the header and library versions agree and that
 * the loss of a case small enough to work out by hand comes out right. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <supcon/supcon.h>

/* Two samples, two views each, D = 2: both views of sample 0 are e1, both of sample 1 are
 * e2. SimCLR (no labels), tau = tau_b = 1. Every anchor sees its positive at logit 1 and two
 * negatives at logit 0, so the loss is log(2 + e) - 1. */
int main(void) {
    if (supcon_version_number() != SUPCON_VERSION_NUMBER) {
        fprintf(stderr, "consumer: header %d but library %u\n", SUPCON_VERSION_NUMBER,
                supcon_version_number());
        return 1;
    }
    supcon_context *ctx = NULL;
    supcon_status st = supcon_context_create(NULL, &ctx);
    if (st != SUPCON_OK) {
        fprintf(stderr, "consumer: context: %s: %s\n", supcon_status_string(st),
                supcon_context_last_error(NULL));
        return 1;
    }

    const float host[2 * 2 * 2] = {1, 0, 1, 0, 0, 1, 0, 1}; /* [B=2, V=2, D=2] */
    const int64_t shape[3] = {2, 2, 2};
    supcon_tensor *features = NULL, *grad = NULL;
    supcon_loss *loss = NULL;
    supcon_loss_config cfg = supcon_loss_config_default();
    cfg.temperature = 1.0f;
    cfg.base_temperature = 1.0f;
    float value = NAN, g[8];
    int rc = 1;

    if ((st = supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, shape, &features)) != SUPCON_OK ||
        (st = supcon_tensor_create(ctx, SUPCON_FLOAT32, 3, shape, &grad)) != SUPCON_OK ||
        (st = supcon_tensor_upload(features, host, sizeof host)) != SUPCON_OK ||
        (st = supcon_loss_create(ctx, &cfg, &loss)) != SUPCON_OK ||
        (st = supcon_loss_forward(loss, features, NULL, NULL, &value)) != SUPCON_OK ||
        (st = supcon_loss_backward(loss, grad)) != SUPCON_OK ||
        (st = supcon_tensor_download(grad, g, sizeof g)) != SUPCON_OK) {
        fprintf(stderr, "consumer: %s: %s\n", supcon_status_string(st),
                supcon_context_last_error(ctx));
        goto done;
    }
    const double expected = log(2.0 + exp(1.0)) - 1.0;
    double gsum = 0;
    for (int i = 0; i < 8; i++) gsum += (double)g[i] * g[i];
    if (!(fabs(value - expected) <= 1e-5) || !isfinite(gsum)) {
        fprintf(stderr, "consumer: loss %.6f, expected %.6f (grad norm^2 %g)\n", value,
                expected, gsum);
        goto done;
    }
    printf("consumer: OK libsupcon %s backend %s loss %.6f\n", supcon_version_string(),
           supcon_context_backend_name(ctx), value);
    rc = 0;
done:
    supcon_loss_free(loss);
    supcon_tensor_free(grad);
    supcon_tensor_free(features);
    supcon_context_free(ctx);
    return rc;
}

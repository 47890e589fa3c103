/* Plain double-precision reference of SupConLoss (SPEC section 1) and its variants, with
 * analytic gradients. Written for obviousness, not speed: the whole logit matrix and a
 * positive-weight matrix are held in memory. The library is tested against this. */
#ifndef SUPCON_TEST_LOSS_REF_H
#define SUPCON_TEST_LOSS_REF_H

#include <stdint.h>

typedef enum ref_denominator { REF_DEN_ALL = 0, REF_DEN_POSITIVE = 1, REF_DEN_NEGATIVES = 2 } ref_denominator;
typedef enum ref_aggregation { REF_AGG_OUT = 0, REF_AGG_IN = 1 } ref_aggregation;
typedef enum ref_mode { REF_MODE_ALL = 0, REF_MODE_ONE = 1 } ref_mode;

typedef struct loss_ref_config {
    double temperature;
    double base_temperature;
    int contrast_mode; /* ref_mode (batch form only) */
    int denominator;   /* ref_denominator */
    int aggregation;   /* ref_aggregation */
} loss_ref_config;

/* The general problem: anchors (na, d) against contrast (nc, d); weight[a * nc + c] >= 0 is
 * the positive weight of c for anchor a (0 = negative). With exclude_self, entry (a, a) is
 * left out (the weight there is ignored). Returns the loss; when grad_anchors /
 * grad_contrast are non-NULL they receive dL/danchors (na, d) and dL/dcontrast (nc, d).
 * Returns NAN on allocation failure. */
double loss_ref_problem(const loss_ref_config *cfg, const double *anchors, int64_t na,
                        const double *contrast, int64_t nc, int64_t d, int exclude_self,
                        const double *weight, double *grad_anchors, double *grad_contrast);

/* Batch form: features (b, v, d) in the caller's [B, V, D] order; labels (b) or mask (b, b)
 * or neither (SimCLR). grad (b, v, d) may be NULL. */
double loss_ref_batch(const loss_ref_config *cfg, const double *features, int64_t b,
                      int64_t v, int64_t d, const int64_t *labels, const double *mask,
                      double *grad);

/* Pair form: anchors (na, d) with labels against contrast (nc, d) with labels. With same,
 * anchors and contrast are one tensor (na == nc, same values, same labels): the self entry
 * is excluded and both gradient outputs receive the whole gradient of that tensor. */
double loss_ref_pair(const loss_ref_config *cfg, const double *anchors,
                     const int64_t *anchor_labels, int64_t na, const double *contrast,
                     const int64_t *contrast_labels, int64_t nc, int64_t d, int same,
                     double *grad_anchors, double *grad_contrast);

#endif

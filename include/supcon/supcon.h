/* libsupcon: supervised contrastive learning (SupCon) and SimCLR in C.
 * Include this one header; it pulls in the whole stable public API. */
#ifndef SUPCON_SUPCON_H
#define SUPCON_SUPCON_H

#include "core.h"
#include "tensor.h"
#include "loss.h"
#include "data.h"
#include "model.h"
#include "optim.h"
#include "checkpoint.h"
#include "analysis.h"

#endif /* SUPCON_SUPCON_H */

# The CPU layers (src/cpu/ops.h): each against a double reference, finite differences and
# PyTorch fixtures (tests/fixtures/gen_ops_fixtures.py). Hidden symbols: the static archive.
supcon_add_internal_test(test_ops_conv SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_conv.c LABELS ops)
# The conv2d slots under SUPCON_PRECISION_BF16: bfloat16 operands and results.
supcon_add_internal_test(test_ops_bf16 SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_bf16.c LABELS ops)
supcon_add_internal_test(test_ops_batchnorm SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_batchnorm.c LABELS ops)
supcon_add_internal_test(test_ops_misc SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_ops_misc.c LABELS ops)
# The model's lean inference layout and its switch to the full one (public API only).
supcon_add_test(test_cpu_model_plan SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cpu_model_plan.c LABELS model)

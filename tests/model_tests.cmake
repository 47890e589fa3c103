# The models (include/supcon/model.h): parity with PyTorch on the fixtures of
# tests/fixtures/gen_model_fixtures.py, and the API (names, init, planning, misuse).
supcon_add_test(test_model_parity SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_parity.c LABELS model)
supcon_add_test(test_model_api SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_api.c LABELS model)
# The fused batch norm of the backend table against the separate layers, bit for bit (reaches
# into the context to drop the fused slots: the internal headers and the static library).
supcon_add_internal_test(test_model_fused SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_fused.c LABELS model)

# The models (include/supcon/model.h): parity with PyTorch on the fixtures of
# tests/fixtures/gen_model_fixtures.py, and the API (names, init, planning, misuse).
supcon_add_test(test_model_parity SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_parity.c LABELS model)
supcon_add_test(test_model_api SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_model_api.c LABELS model)

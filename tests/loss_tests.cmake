# Tests of tensors and of SupConLoss: PyTorch fixtures, finite differences and a double
# reference (tests/ref), and the documented misuse paths.
supcon_add_test(test_tensor
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_tensor.c
  LABELS core)
supcon_add_test(test_loss_fixtures
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_loss_fixtures.c ${CMAKE_CURRENT_SOURCE_DIR}/ref/loss_ref.c
  LABELS loss)
supcon_add_test(test_loss_gradcheck
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_loss_gradcheck.c ${CMAKE_CURRENT_SOURCE_DIR}/ref/loss_ref.c
  LABELS loss)
supcon_add_test(test_loss_misuse
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_loss_misuse.c
  LABELS loss)

# Uploaders (two tensors filled in turn) on the CPU; the same test on CUDA is in cuda_tests.cmake.
supcon_add_test(test_uploader SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_uploader.c LABELS core)

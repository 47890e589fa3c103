# CUDA backend against the CPU backend (label gpu). Registered in every build: without a
# CUDA device or module the test prints "skipped: <reason>" and exits 77, which CTest
# reports as skipped. It runs on the GPU only through the public API.
supcon_add_test(test_cuda_parity
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_parity.c ${CMAKE_CURRENT_SOURCE_DIR}/ref/loss_ref.c
  LABELS gpu)
set_tests_properties(test_cuda_parity PROPERTIES TIMEOUT 300)
if(TARGET supcon_cuda)
  # The module is loaded at run time, not linked: build it before the test runs.
  add_dependencies(test_cuda_parity supcon_cuda)
endif()

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

# The CUDA layers (src/cuda/ops.h) against the CPU's, slot by slot through the backend tables:
# internal, so the static archive; the module is dlopened from where the build put it.
supcon_add_internal_test(test_cuda_ops
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_ops.c
  LABELS gpu LIBS ${CMAKE_DL_LIBS})
set_tests_properties(test_cuda_ops PROPERTIES TIMEOUT 300)
if(TARGET supcon_cuda)
  target_compile_definitions(test_cuda_ops PRIVATE SUPCON_TEST_CUDA_MODULE="$<TARGET_FILE:supcon_cuda>")
  add_dependencies(test_cuda_ops supcon_cuda)
endif()

# A whole SupCon training step (ResNet-18 + head + loss + SGD) on CUDA against the CPU, public
# API only.
supcon_add_test(test_cuda_model SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cuda_model.c LABELS gpu)
set_tests_properties(test_cuda_model PROPERTIES TIMEOUT 300)
if(TARGET supcon_cuda)
  add_dependencies(test_cuda_model supcon_cuda)
endif()

# Uploads through pinned memory on the copy stream: the CPU's uploader test, run on CUDA.
supcon_add_test(test_cuda_uploader SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_uploader.c LABELS gpu)
target_compile_definitions(test_cuda_uploader PRIVATE SUPCON_TEST_UPLOADER_CUDA)
set_tests_properties(test_cuda_uploader PROPERTIES TIMEOUT 300)
if(TARGET supcon_cuda)
  add_dependencies(test_cuda_uploader supcon_cuda)
endif()

# The GPU tests' harness, run where there is no GPU (label harness): the same programs load a
# module that hands out the CPU backend's table as the CUDA one (tests/cpu_as_cuda_module.c),
# so their own code runs end to end and cannot rot between the rare GPU runs. Both sides are
# the CPU there: this checks the tests, not CUDA (test_cuda_ops then leaves out what only CUDA
# does, such as TF32 and running without a workspace).
add_library(cpu_as_cuda_module MODULE ${CMAKE_CURRENT_SOURCE_DIR}/cpu_as_cuda_module.c)
target_include_directories(cpu_as_cuda_module PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/lib)
target_link_libraries(cpu_as_cuda_module PRIVATE supcon_static)
foreach(_t test_cuda_parity test_cuda_ops test_cuda_model test_cuda_uploader)
  string(REPLACE "test_" "harness_" _name ${_t})
  add_test(NAME ${_name} COMMAND ${_t})
  set_tests_properties(${_name} PROPERTIES LABELS harness TIMEOUT 600
    ENVIRONMENT "SUPCON_CUDA_MODULE=$<TARGET_FILE:cpu_as_cuda_module>")
  add_dependencies(${_t} cpu_as_cuda_module)
endforeach()

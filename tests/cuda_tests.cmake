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

# The same four programs where there is no GPU (label emu): the CUDA module's own sources,
# built against the emulation of tests/cuda_emu, run on the CPU, so the module's host logic
# and kernels are compared with the CPU backend in every CI run. SUPCON_TEST_EMU lets a test
# take smaller shapes where size serves only timing. What the emulation cannot show (speed,
# the real libraries' numerics and algorithms) still needs the GPU runs.
include(${CMAKE_CURRENT_SOURCE_DIR}/cuda_emu/cuda_emu.cmake)
if(TARGET supcon_cuda_emu)
  foreach(_t test_cuda_parity test_cuda_ops test_cuda_model test_cuda_uploader)
    string(REPLACE "test_" "emu_" _name ${_t})
    add_test(NAME ${_name} COMMAND ${_t})
    # two emulated devices: test_cuda_parity drives contexts on both in turn
    set_tests_properties(${_name} PROPERTIES LABELS emu TIMEOUT 900
      ENVIRONMENT "SUPCON_CUDA_MODULE=$<TARGET_FILE:supcon_cuda_emu>;SUPCON_TEST_EMU=1;OPENBLAS_NUM_THREADS=1;SUPCON_CUDA_EMU_DEVICES=2")
    add_dependencies(${_t} supcon_cuda_emu)
  endforeach()
  # The uploader once more with the copy stream running its work as soon as it is queued
  # (tests/cuda_emu/emu_queue.h): a copy that does not wait for the readers before it then
  # overwrites their input, as it could on a GPU.
  add_test(NAME emu_cuda_uploader_mixed COMMAND test_cuda_uploader)
  set_tests_properties(emu_cuda_uploader_mixed PROPERTIES LABELS emu TIMEOUT 900
    ENVIRONMENT "SUPCON_CUDA_MODULE=$<TARGET_FILE:supcon_cuda_emu>;SUPCON_TEST_EMU=1;OPENBLAS_NUM_THREADS=1;SUPCON_CUDA_EMU_SCHEDULE=mixed")
  # The supcon programs on CUDA against the CPU (pretrain fp32 and bf16, linear).
  if(TARGET supcon_cli)
    add_test(NAME emu_programs_cuda
             COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/test_programs_cuda.sh $<TARGET_FILE:supcon_cli>)
    set_tests_properties(emu_programs_cuda PROPERTIES LABELS emu TIMEOUT 900 SKIP_RETURN_CODE 77
      ENVIRONMENT "SUPCON_CUDA_MODULE=$<TARGET_FILE:supcon_cuda_emu>;OPENBLAS_NUM_THREADS=1")
    add_dependencies(supcon_cli supcon_cuda_emu)
  endif()
endif()

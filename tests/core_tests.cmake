# Core and CPU-backend internals: the GEMM and the worker pool are hidden symbols, so these
# tests link the static archive; the context test uses the public API only.
function(supcon_add_internal_test name)
  supcon_add_test(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE supcon_static)
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR}/src/cpu ${PROJECT_SOURCE_DIR}/lib)
endfunction()

supcon_add_internal_test(test_cpu_gemm SOURCES test_cpu_gemm.c LABELS core)
supcon_add_internal_test(test_cpu_pool SOURCES test_cpu_pool.c LABELS core)
supcon_add_test(test_context SOURCES test_context.c LABELS core LIBS Threads::Threads)
# Stand-ins for the CUDA module that the core must refuse (tests/fake_backend_module.c).
foreach(_fake wrong_abi partial_stages)
  add_library(fake_backend_${_fake} MODULE fake_backend_module.c)
  target_include_directories(fake_backend_${_fake} PRIVATE ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/lib)
  add_dependencies(test_context fake_backend_${_fake})
endforeach()
target_compile_definitions(fake_backend_wrong_abi PRIVATE FAKE_WRONG_ABI)
target_compile_definitions(test_context PRIVATE
  SUPCON_TEST_FAKE_WRONG_ABI="$<TARGET_FILE:fake_backend_wrong_abi>"
  SUPCON_TEST_FAKE_PARTIAL_STAGES="$<TARGET_FILE:fake_backend_partial_stages>")
supcon_add_test(test_profile SOURCES test_profile.c LABELS core)

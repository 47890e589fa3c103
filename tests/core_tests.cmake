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
supcon_add_test(test_profile SOURCES test_profile.c LABELS core)

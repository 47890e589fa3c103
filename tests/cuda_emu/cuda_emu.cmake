# The CUDA module's own sources, run on the CPU (tests/cuda_emu/emu.h): src/cuda/*.cu compiled
# by the host C++ compiler against stand-ins for the CUDA runtime, cuBLAS and cuDNN written
# here, with every kernel launch rewritten into a call of the emulated launcher
# (launches.pl). The module it makes (libsupcon_cuda_emu.so) is what the GPU tests load as
# the CUDA backend where there is no GPU (label emu, cuda_tests.cmake). It needs no CUDA
# toolkit, so it is built on every machine with a C++ compiler, CI's included.
option(SUPCON_CUDA_EMU "Build the CUDA emulation and run the GPU tests on it (needs a C++ compiler)" ON)
if(NOT SUPCON_CUDA_EMU)
  message(STATUS "  CUDA emulation    no (SUPCON_CUDA_EMU=OFF)")
  return()
endif()
include(CheckLanguage)
check_language(CXX)
if(NOT CMAKE_CXX_COMPILER)
  message(STATUS "  CUDA emulation    no (no C++ compiler): the GPU tests only skip")
  return()
endif()
enable_language(CXX)
find_program(SUPCON_PERL perl REQUIRED)

set(_emu ${CMAKE_CURRENT_LIST_DIR})
file(GLOB _emu_cuda_sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cuda/*.cu)
set(_emu_generated)
foreach(_cu ${_emu_cuda_sources})
  get_filename_component(_name ${_cu} NAME_WE)
  set(_cpp ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu/${_name}.cpp)
  add_custom_command(OUTPUT ${_cpp}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/cuda_emu
    COMMAND ${SUPCON_PERL} ${_emu}/launches.pl ${_cu} ${_cpp}
    DEPENDS ${_cu} ${_emu}/launches.pl
    COMMENT "Rewriting the kernel launches of src/cuda/${_name}.cu for the emulation")
  list(APPEND _emu_generated ${_cpp})
endforeach()

set(_emu_parts ${_emu}/emu_runtime.cpp ${_emu}/emu_runtime_memory.cpp ${_emu}/emu_runtime_streams.cpp
  ${_emu}/emu_stream.cpp ${_emu}/emu_launch.cpp ${_emu}/emu_cublas.cpp
  ${_emu}/emu_cudnn_objects.cpp ${_emu}/emu_cudnn_algos.cpp ${_emu}/emu_cudnn_run.cpp)
add_library(supcon_cuda_emu_parts STATIC ${_emu_parts})
target_include_directories(supcon_cuda_emu_parts PUBLIC ${_emu}/include ${_emu})
target_link_libraries(supcon_cuda_emu_parts PUBLIC PkgConfig::OPENBLAS Threads::Threads)
set_target_properties(supcon_cuda_emu_parts PROPERTIES POSITION_INDEPENDENT_CODE ON)

add_library(supcon_cuda_emu MODULE ${_emu_generated})
# The stand-in headers come first, so <cuda_runtime.h> is the emulation's even where a CUDA
# toolkit is installed.
target_include_directories(supcon_cuda_emu BEFORE PRIVATE ${_emu}/include)
target_include_directories(supcon_cuda_emu PRIVATE
  ${PROJECT_SOURCE_DIR}/include ${PROJECT_SOURCE_DIR}/lib ${PROJECT_SOURCE_DIR}/src/cuda)
target_link_libraries(supcon_cuda_emu PRIVATE supcon_cuda_emu_parts)
set_target_properties(supcon_cuda_emu PROPERTIES PREFIX "lib" CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON
  CXX_VISIBILITY_PRESET hidden VISIBILITY_INLINES_HIDDEN ON)
set_target_properties(supcon_cuda_emu_parts PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_link_options(supcon_cuda_emu PRIVATE
  "LINKER:--version-script=${PROJECT_SOURCE_DIR}/src/cuda/supcon_cuda.map" "LINKER:--no-undefined")

# The emulation's own tests: kernels' barriers and shuffles, the runtime's checks, the
# convolutions and GEMMs of the stand-ins against naive sums.
foreach(_t test_emu_launch test_emu_dnn)
  add_executable(${_t} ${_emu}/${_t}.cpp)
  target_link_libraries(${_t} PRIVATE supcon_cuda_emu_parts)
  set_target_properties(${_t} PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  add_test(NAME ${_t} COMMAND ${_t})
  # eager: the checks read device memory from the host right after each call
  set_tests_properties(${_t} PROPERTIES LABELS emu ENVIRONMENT "SUPCON_CUDA_EMU_SCHEDULE=eager")
endforeach()
add_test(NAME test_emu_streams COMMAND test_emu_launch)
set_tests_properties(test_emu_streams PROPERTIES LABELS emu ENVIRONMENT "SUPCON_CUDA_EMU_SCHEDULE=lazy")
# The C warning list of the top level is not valid for C++; the module's sources are held to
# the flags nvcc's host pass gets (src/cuda/CMakeLists.txt).
foreach(_t supcon_cuda_emu supcon_cuda_emu_parts test_emu_launch test_emu_dnn)
  set_property(TARGET ${_t} PROPERTY COMPILE_OPTIONS -Wall -Wextra -Wshadow -Wno-unused-parameter)
  if(SUPCON_WERROR)
    set_property(TARGET ${_t} APPEND PROPERTY COMPILE_OPTIONS -Werror)
  endif()
  # The sanitizers the C code gets (the top level's options are C-only): the kernels and the
  # stand-ins are checked for reads past an allocation and undefined behaviour too.
  if(SUPCON_SANITIZE)
    set_property(TARGET ${_t} APPEND PROPERTY COMPILE_OPTIONS -fsanitize=${SUPCON_SANITIZE}
                 -fno-omit-frame-pointer -fno-sanitize-recover=all)
  endif()
endforeach()
message(STATUS "  CUDA emulation    yes (src/cuda on the CPU for the GPU tests, label emu)")

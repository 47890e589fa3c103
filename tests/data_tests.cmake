# Data pipeline tests (lib/data, lib/rng.c). Readers and images write their own files into a
# temporary folder; the Fashion-MNIST check uses the Debian package's files and is skipped
# (visibly) when they are not installed. The RNG test needs hidden symbols: static archive.
set(SUPCON_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist" CACHE PATH
    "Folder holding Fashion-MNIST's IDX files (Debian package dataset-fashion-mnist)")

supcon_add_test(test_data_readers SOURCES test_data_readers.c LABELS data LIBS ZLIB::ZLIB)
target_compile_definitions(test_data_readers PRIVATE
  SUPCON_FASHION_MNIST_DIR="${SUPCON_FASHION_MNIST_DIR}")
supcon_add_test(test_data_images SOURCES test_data_images.c LABELS data
  LIBS PNG::PNG JPEG::JPEG)
supcon_add_test(test_data_transforms SOURCES test_data_transforms.c LABELS data)
supcon_add_test(test_data_loader SOURCES test_data_loader.c LABELS data LIBS Threads::Threads)
supcon_add_test(test_data_rng SOURCES test_data_rng.c LABELS data LIBS supcon_static)
target_include_directories(test_data_rng PRIVATE ${PROJECT_SOURCE_DIR}/lib)

# The transforms against torchvision itself (skipped when torch/torchvision are missing).
# Not in sanitizer builds: Python cannot load a library built with ASan.
find_program(SUPCON_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(SUPCON_SYSTEM_PYTHON AND NOT SUPCON_SANITIZE)
  add_test(NAME test_data_torchvision
    COMMAND ${SUPCON_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_data_torchvision.py
            $<TARGET_FILE:supcon>)
  set_tests_properties(test_data_torchvision PROPERTIES LABELS "data;python" SKIP_RETURN_CODE 77)
endif()

# Checkpoints (lib/checkpoint): safetensors round trips, a Python-layout reference file,
# malformed and mutated files, atomic replacement (child processes that fail or die while
# writing), models and resumed training. The format test serialises in memory through an internal call: static archive.
supcon_add_test(test_checkpoint_safetensors
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_safetensors.c LABELS checkpoint LIBS supcon_static)
target_include_directories(test_checkpoint_safetensors PRIVATE ${PROJECT_SOURCE_DIR}/lib)
supcon_add_test(test_checkpoint_atomic
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_atomic.c LABELS checkpoint)
# Models: save/load with strict names, the encoder alone, a run resumed bit for bit.
supcon_add_test(test_checkpoint_model
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_model.c LABELS checkpoint)

# Files written here read in Python with PyTorch, and tools/pth_to_safetensors.py both ways
# (skipped, exit 77, where /usr/bin/python3 has no torch). Not in sanitizer builds: Python
# cannot load a library built with ASan.
find_program(SUPCON_SYSTEM_PYTHON NAMES python3 PATHS /usr/bin NO_DEFAULT_PATH)
if(SUPCON_SYSTEM_PYTHON AND NOT SUPCON_SANITIZE)
  add_test(NAME test_checkpoint_python
    COMMAND ${SUPCON_SYSTEM_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/test_checkpoint_python.py
            $<TARGET_FILE:supcon> ${PROJECT_SOURCE_DIR}/tools/pth_to_safetensors.py)
  set_tests_properties(test_checkpoint_python PROPERTIES LABELS "checkpoint;python" SKIP_RETURN_CODE 77)
endif()

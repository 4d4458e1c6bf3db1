# One image for every CaptchaOCR process; docker-compose.yml picks the command and health check per
# service. The base image and every Python package are pinned to what the tests ran with
# (requirements.lock), so a rebuild months later runs the same code. After changing pyproject.toml and
# re-running the tests: `.venv/bin/python -m pip freeze --all --exclude-editable > requirements.lock`.
FROM python:3.11.13-slim-bookworm
ENV PYTHONUNBUFFERED=1 ORT_LOGGING_LEVEL=3 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY api ./api
COPY worker ./worker
COPY shared ./shared
COPY trainer ./trainer
COPY training ./training
# The trainer's torch: PyTorch's CPU build (PyPI's default torch is the CUDA build, several GB).
RUN pip install --constraint requirements.lock --extra-index-url https://download.pytorch.org/whl/cpu ".[trainer]"
USER nobody
# The default command is the API; the other services override this check in docker-compose.yml.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["python", "-m", "shared.healthcheck", "api"]
CMD ["python", "-m", "api"]

# One image for every CaptchaOCR process; docker-compose.yml picks the command per service.
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 ORT_LOGGING_LEVEL=3 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY worker ./worker
COPY shared ./shared
RUN pip install .
USER nobody
CMD ["python", "-m", "api"]

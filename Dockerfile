# CVSM: one image for the API (`cvsm serve`), the indexing job (`cvsm index`) and migrations.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /srv/cvsm

# CPU wheels of torch (the CUDA ones are gigabytes); PyAV and soundfile bundle FFmpeg/libsndfile.
COPY pyproject.toml README.md ./
COPY app ./app
COPY index ./index
COPY model ./model
COPY migrations ./migrations
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu .

RUN useradd --create-home --uid 1000 cvsm && mkdir -p /data && chown cvsm /data
USER cvsm
VOLUME ["/data"]
EXPOSE 8000
CMD ["cvsm", "serve", "--host", "0.0.0.0", "--port", "8000", "--data-dir", "/data", "--no-demo"]

# txstream worker / generator image (production runs talk to Apache Kafka, not the embedded broker)
FROM python:3.11-slim
WORKDIR /srv/txstream
COPY pyproject.toml setup.py README.md ./
COPY app ./app
COPY agents ./agents
COPY tables ./tables
COPY bench ./bench
# A C compiler for the compiled encoders (app/records/_speedups.pyx), removed again after the build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install --no-cache-dir . \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y \
    && rm -rf /var/lib/apt/lists/*
ENV TXSTREAM_WEB_HOST=0.0.0.0 \
    TXSTREAM_DATADIR=/var/lib/txstream
VOLUME ["/var/lib/txstream"]
EXPOSE 6066
ENTRYPOINT ["txstream"]
CMD ["worker", "-l", "info"]

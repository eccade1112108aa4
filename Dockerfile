# txstream worker / generator image (production runs talk to Apache Kafka, not the embedded broker)
FROM python:3.11-slim
WORKDIR /srv/txstream
COPY pyproject.toml README.md ./
COPY app ./app
COPY agents ./agents
COPY tables ./tables
COPY bench ./bench
RUN pip install --no-cache-dir .
ENV TXSTREAM_WEB_HOST=0.0.0.0 \
    TXSTREAM_DATADIR=/var/lib/txstream
VOLUME ["/var/lib/txstream"]
EXPOSE 6066
ENTRYPOINT ["txstream"]
CMD ["worker", "-l", "info"]

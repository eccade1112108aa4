"""TxApp: the Faust App with the batch seam transport, topic creation and a clean stop."""

from __future__ import annotations

import logging
from typing import Any

import faust
from faust.types import TransportT

from app.kafka.admin import ensure_topics, parse_broker_url
from app.kafka.transport import BatchingConsumer, BatchingTransport
from app.records.speedups import COMPILED
from tables.dedupe import TXIDS

from .gctuning import tune_gc
from .settings import Settings
from .topics import TopicNames
from .types import PipelineT

__all__ = ["ROCKSDB_OPTIONS", "TxApp", "build_app", "faust_app_id"]

#: Every table partition is its own RocksDB database. Faust's defaults (64 MB write
#: buffers, up to 3 of them, and a 2 GB block cache, per database) let a worker's memory
#: grow with the bytes it has written, up to gigabytes: the state is in the worker's own
#: memory and the databases are read only at start-up, so small buffers and caches do.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 * 1024**2,
    "max_write_buffer_number": 2,
    "block_cache_size": 4 * 1024**2,
    "block_cache_compressed_size": 1024**2,
}

logger = logging.getLogger(__name__)


def faust_app_id(settings: Settings, version: int | None = None) -> str:
    """Consumer group and changelog prefix of one state version (Kappa replay bumps it)."""
    return f"{settings.app_id}-v{settings.state_version if version is None else version}"


class TxApp(faust.App):
    """``faust.App`` with the batch seam transport and topic creation at start."""

    settings: Settings
    topic_names: TopicNames
    state_tables: dict[str, Any]
    #: Plugged in by the composition root (app/compose.py).
    pipeline: PipelineT

    def _new_transport(self) -> TransportT:
        # The one place the batch seam is plugged in; see app/kafka/transport.py.
        return BatchingTransport(self.conf.broker_consumer, self)

    def _new_consumer(self) -> Any:
        consumer: BatchingConsumer = super()._new_consumer()  # type: ignore[assignment]
        # Plugged in before the consumer can fetch, so no record ever takes Faust's
        # per-event path.
        consumer.set_batch_handler([self.topic_names.transactions],
                                   self.pipeline.on_batch, self.bootstrap)
        return consumer

    async def on_first_start(self) -> None:
        # Faust does not create source topics and the embedded broker would auto-create
        # them with the wrong partition count (BROKER.md fact 5): create them first.
        if not self.client_only:
            names = self.topic_names
            topics = names.all() if self.settings.outputs != "none" else [names.transactions]
            await ensure_topics(self.bootstrap, dict.fromkeys(topics, self.settings.partitions))
        # Faust creates only the last level of its data directory.
        self.conf.datadir.mkdir(parents=True, exist_ok=True)
        tune_gc()
        if self.settings.outputs != "live":
            logger.info("outputs (TXSTREAM_OUTPUTS=%s): %s", self.settings.outputs,
                        "none, state only" if self.settings.outputs == "none"
                        else ", ".join(self.topic_names.outputs()))
        logger.info("record encoders and parser: %s", "compiled" if COMPILED else
                    "Python (app/records/_speedups.pyx was not built: no C compiler at install?)")
        await super().on_first_start()

    async def on_stop(self) -> None:
        # Write what was processed and release its offsets before Faust stops the consumer,
        # which makes its final commit: a clean stop re-processes nothing.
        if self.pipeline.states:
            try:
                await self.pipeline.flush()
            except Exception:  # the producer may already be failing; at-least-once covers it
                logger.exception("could not flush state at shutdown")
        await super().on_stop()

    @property
    def bootstrap(self) -> str:
        """The aiokafka bootstrap string of the configured broker."""
        return parse_broker_url(self.settings.broker)


def build_app(settings: Settings) -> TxApp:
    """The configured app and its tables; the composition root plugs in the rest."""
    session_timeout = settings.session_timeout_ms / 1000
    app = TxApp(
        faust_app_id(settings),
        broker=settings.broker,
        store="rocksdb://",
        # Faust's own layout is {datadir}/v1/tables/... whatever the app id: one directory
        # per app id and state version keeps a replayed version off the current one's files.
        datadir=str(settings.datadir / faust_app_id(settings)),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=settings.standby_replicas,
        web_bind=settings.web_host,
        web_host=settings.web_host,
        web_port=settings.web_port,
        web_in_thread=False,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=session_timeout,
        broker_heartbeat_interval=max(session_timeout / 4, 0.5),
        broker_rebalance_timeout=max(session_timeout * 3, 30.0),
        broker_commit_interval=max(settings.flush_interval_ms / 1000, 0.5),
        broker_max_poll_records=5000,
        consumer_max_fetch_size=8 * 1024 * 1024,
        stream_wait_empty=False,
        logging_config=None,
        autodiscover=False,
    )
    app.settings = settings
    app.topic_names = TopicNames(settings.topic_prefix, settings.output_suffix)
    app.state_tables = {
        kind: app.Table(kind, partitions=settings.partitions, key_type=bytes, value_type=bytes,
                        help=f"{kind} state: one record per customer, plus ~partition",
                        options=dict(ROCKSDB_OPTIONS))
        for kind in settings.window_kind_list
    }
    app.state_tables[TXIDS] = app.Table(
        TXIDS, partitions=settings.partitions, key_type=bytes, value_type=bytes,
        help="duplicate check: one record per tx_id applied within the horizon, plus ~partition",
        options=dict(ROCKSDB_OPTIONS))
    return app

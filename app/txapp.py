"""TxApp: the Faust App with the batch seam transport, topic creation and a clean stop."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import faust
from faust.types import TransportT

from app.kafka.admin import ensure_topics
from app.kafka.connect import wait_for_brokers
from app.kafka.monitor import BrokerMonitor
from app.kafka.recovery import BulkTableManager
from app.kafka.security import KafkaConnection, kafka_connection
from app.kafka.transport import BatchingConsumer, BatchingTransport
from app.records.speedups import COMPILED
from tables.compiled import COMPILED as WINDOWS_COMPILED
from tables.dedupe import TXIDS

from .exceptions import SettingsError, TxstreamError
from .gctuning import tune_gc
from .settings import ENV_PREFIX, Settings
from .skipped import SkippedRecords
from .state_guard import StateGuard
from .table_store import TABLE_STORE_URL
from .tls import peer_client_class, web_client_context, web_server_context
from .topics import TopicNames
from .types import PipelineT
from .worker import TxWorker

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
    """Consumer group and changelog prefix of one state version (Kappa replay bumps it).

    The topic prefix is part of it: two deployments that share a broker and an app id but
    not a prefix must not share a consumer group or read each other's changelogs.
    """
    number = settings.state_version if version is None else version
    return f"{settings.topic_prefix}{settings.app_id}-v{number}"


class TxApp(faust.App):
    """``faust.App`` with the batch seam transport and topic creation at start."""

    settings: Settings
    #: The brokers and how to reach them, for every Kafka client txstream creates itself.
    kafka: KafkaConnection
    topic_names: TopicNames
    state_tables: dict[str, Any]
    #: Records of topics read back (outputs, changelogs) that were not ours, per topic.
    skipped_records: SkippedRecords
    #: Plugged in by the composition root (app/compose.py).
    pipeline: PipelineT
    #: Why the worker is stopping, when it stops because of a fatal error.
    fatal_error: TxstreamError | None = None
    #: Whether the broker answers (probed while the worker runs).
    broker_monitor: BrokerMonitor
    #: Checks that the broker still has what the local state was built from.
    guard: StateGuard

    def _new_transport(self) -> TransportT:
        # The one place the batch seam is plugged in; see app/kafka/transport.py.
        return BatchingTransport(self.conf.broker_consumer, self)

    def _new_consumer(self) -> Any:
        consumer: BatchingConsumer = super()._new_consumer()  # type: ignore[assignment]
        # Plugged in before the consumer can fetch, so no record ever takes Faust's
        # per-event path.
        consumer.set_batch_handler([self.topic_names.transactions],
                                   self.pipeline.on_batch, self.kafka)
        consumer.set_changelog_guard(self.guard.check_changelog_ends)
        return consumer

    async def on_first_start(self) -> None:
        try:
            self._make_datadir()
            # Faust does not create source topics and the embedded broker would auto-create
            # them with the wrong partition count (BROKER.md fact 5): create them first.
            if not self.client_only:
                # Bounded (TXSTREAM_KAFKA_CONNECT_TIMEOUT) and with the reason when it
                # fails: aiokafka's own clients would retry some failures without end.
                await wait_for_brokers(self.kafka)
                await ensure_topics(self.kafka, dict.fromkeys(
                    self.own_topics(), self.settings.partitions))
        except TxstreamError as exc:
            self.fail(exc)
            # mode's worker logs any exception from start with a stack trace, except a
            # cancellation: it then stops as on SIGTERM, and TxWorker reports the error.
            raise asyncio.CancelledError from None
        if not self.client_only:
            self.add_future(self.broker_monitor.run())
        tune_gc()
        if self.settings.outputs != "live":
            logger.info("outputs (TXSTREAM_OUTPUTS=%s): %s", self.settings.outputs,
                        "none, state only" if self.settings.outputs == "none"
                        else ", ".join(self.topic_names.outputs()))
        logger.info("record encoders and parser: %s", "compiled" if COMPILED else
                    "Python (app/records/_speedups.pyx was not built: no C compiler at install?)")
        logger.info("window kinds: %s", "compiled" if WINDOWS_COMPILED else
                    "Python (tables/_fixedcore.pyx and _eventcore.pyx were not built: no C++ "
                    "compiler at install?)")
        await super().on_first_start()

    def own_topics(self) -> list[str]:
        """The input and output topics this worker creates (outputs only when it sends any)."""
        names = self.topic_names
        return names.all() if self.settings.outputs != "none" else [names.transactions]

    def _make_datadir(self) -> None:
        # Faust creates only the last level of its data directory.
        path = Path(self.conf.datadir)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SettingsError(
                f"{ENV_PREFIX}DATADIR={str(self.settings.datadir)!r}: cannot create the state "
                f"directory {str(path)!r}: {exc.strerror or exc}") from None

    def fail(self, error: TxstreamError) -> None:
        """Stop the worker because of ``error`` (fatal: the operator must act).

        Logged once, without a stack trace; the state is not flushed (the cause may be
        that the broker lost what it depends on); the process exits 1 with the message.
        """
        if self.fatal_error is not None:
            return
        self.fatal_error = error
        logger.error("stopping: %s", error)
        worker = getattr(self, "tx_worker", None)
        if worker is not None and not worker.should_stop:
            self.add_future(worker.stop())

    async def _broker_returned(self, topics: set[str]) -> None:
        await self.guard.check_after_outage(topics, self.consumer.assignment())

    def _applied_offsets(self) -> dict[int, int]:
        """The highest source offset each loaded partition's state has applied."""
        return {partition: state.applied_offset
                for partition, state in self.pipeline.states.items()}

    async def on_stop(self) -> None:
        # Write what was processed and release its offsets before Faust stops the consumer,
        # which makes its final commit: a clean stop re-processes nothing.
        if self.fatal_error is None:
            try:
                if self.pipeline.states:
                    await self.pipeline.flush()
                else:  # every partition left: a flush's second half may still be writing
                    await self.pipeline.settle()
            except Exception:  # the producer may already be failing; at-least-once covers it
                logger.exception("could not flush state at shutdown")
        await super().on_stop()


def build_app(settings: Settings) -> TxApp:
    """The configured app and its tables; the composition root plugs in the rest."""
    session_timeout = settings.session_timeout_ms / 1000
    kafka = kafka_connection(settings)
    web_tls = web_server_context(settings)
    peer_tls = web_client_context(settings)
    web: dict[str, Any] = {}
    if web_tls is not None and peer_tls is not None:
        # HTTPS: the server's context, the URL other workers are told to use, and a
        # client that verifies them (requests routed between workers, view fan-out).
        web = {"web_ssl_context": web_tls, "HttpClient": peer_client_class(peer_tls),
               "canonical_url": f"https://{settings.web_public_host}:{settings.web_port}"}
    app = TxApp(
        faust_app_id(settings),
        broker=settings.broker,
        # Faust's own consumer and producer connect with the same TLS/SASL as ours.
        broker_credentials=kafka.faust_credentials(),
        Worker=TxWorker,
        # Faust's RocksDB store, staged writes without a write-ahead log (app/table_store.py).
        store=TABLE_STORE_URL,
        # Faust's own layout is {datadir}/v1/tables/... whatever the app id: one directory
        # per app id and state version keeps a replayed version off the current one's files.
        datadir=str(settings.datadir / faust_app_id(settings)),
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        table_standby_replicas=settings.standby_replicas,
        web_bind=settings.web_host,
        # What other workers are told to use (requests routed to the owner, fan-out).
        web_host=settings.web_public_host,
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
        # Changelog records are restored a fetch's batch at a time (app/kafka/recovery.py).
        TableManager=BulkTableManager,
        **web,
    )
    app.settings = settings
    app.kafka = kafka
    app.topic_names = TopicNames(settings.topic_prefix, settings.output_suffix)
    app.skipped_records = SkippedRecords()
    app.broker_monitor = BrokerMonitor(kafka, on_return=app._broker_returned)
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
    app.guard = StateGuard(
        kafka=kafka, source=app.topic_names.transactions,
        required=lambda: [*app.own_topics(), *app.tables.changelog_topics],
        tables=app.tables, applied=app._applied_offsets, fail=app.fail,
        datadir=Path(app.conf.datadir))
    return app

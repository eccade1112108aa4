"""Kappa replay: build a new state version from the start of ``transactions`` beside the live one.

A state version is a Faust app id, ``{app_id}-v{N}``: its own consumer group and its own
table changelogs. Replay starts an ordinary worker process with ``TXSTREAM_STATE_VERSION=N``;
its group has no committed offsets, so it reads ``transactions`` from the beginning
(``consumer_auto_offset_reset='earliest'``) through the same pipeline, while the workers
of the current version keep serving. "Caught up" is the new group's committed offsets
reaching the end offsets taken at the start: Faust commits an offset only after the
changelog records it depends on are acknowledged, so the new tables are then complete.
The progress shown between commits comes from the worker's ``/stats/``.
"""

from __future__ import annotations

import asyncio
import ssl
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, for_code
from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import Array, Int16, Int32, Schema, String
from pydantic import SecretStr

from app.exceptions import BrokerError, ReplayError
from app.kafka.admin import ensure_topics
from app.kafka.changelog import changelog_topic, end_offsets, topic_partitions
from app.kafka.connect import start_client
from app.kafka.security import KafkaConnection
from app.process import ManagedProcess
from tables.partition import TABLES

__all__ = [
    "DropResult",
    "ReplayError",
    "ReplayPlan",
    "ReplayResult",
    "VersionState",
    "committed_offsets",
    "drop_version",
    "group_members",
    "run_replay",
    "version_state",
    "version_topics",
]

#: How often the new group's committed offsets are read.
_POLL_INTERVAL = 0.5
#: Consumer group error codes (Kafka protocol).
_GROUP_ID_NOT_FOUND = 69


def version_topics(faust_app_id: str) -> list[str]:
    """Every topic Faust creates for one state version: table changelogs, leader topic."""
    return [*(changelog_topic(faust_app_id, table) for table in TABLES),
            f"{faust_app_id}-__assignor-__leader"]


async def _admin(kafka: KafkaConnection,
                 action: Callable[[AIOKafkaAdminClient], Any]) -> Any:
    admin = await start_client(lambda: AIOKafkaAdminClient(
        **kafka.client_kwargs(request_timeout_ms=10_000)), kafka)
    try:
        return await action(admin)
    except KafkaError as exc:
        raise BrokerError(f"admin request to {kafka} failed: {exc!r}") from exc
    finally:
        await admin.close()


async def committed_offsets(kafka: KafkaConnection, group: str, topic: str,
                            partitions: int) -> dict[int, int]:
    """The group's committed offset of each partition (-1: none)."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]

    async def fetch(admin: AIOKafkaAdminClient) -> Any:
        # Partitions named explicitly: the embedded broker's answer to "all partitions"
        # does not parse.
        return await admin.list_consumer_group_offsets(group, partitions=tps)

    offsets: Mapping[TopicPartition, Any] = await _admin(kafka, fetch)
    return {tp.partition: offsets[tp].offset if tp in offsets else -1 for tp in tps}


async def group_members(kafka: KafkaConnection, group: str) -> int:
    """How many members the consumer group has now (0 if it does not exist)."""

    async def describe(admin: AIOKafkaAdminClient) -> Any:
        return await admin.describe_consumer_groups([group])

    responses = await _admin(kafka, describe)
    return sum(len(g[5]) for response in responses for g in response.groups if g[1] == group)


@dataclass(frozen=True, slots=True)
class VersionState:
    """What a state version already has on the broker."""

    topics: list[str]
    committed: dict[int, int]

    @property
    def exists(self) -> bool:
        """True if the version has topics or committed offsets."""
        return bool(self.topics) or any(offset >= 0 for offset in self.committed.values())


async def version_state(kafka: KafkaConnection, faust_app_id: str, source: str,
                        partitions: int) -> VersionState:
    """The version's existing topics and its group's committed offsets on ``source``."""
    topics = sorted(await topic_partitions(kafka, version_topics(faust_app_id)))
    committed = await committed_offsets(kafka, faust_app_id, source, partitions)
    return VersionState(topics, committed)


# -- replay ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplayPlan:
    """What :func:`run_replay` builds, and how it runs the worker."""

    source: str
    new_id: str
    new_version: int
    #: Extra environment of the replay worker (state version, web port, data dir).
    env: dict[str, str]
    log_path: Path
    #: The replay worker's ``/stats/`` view, for progress between offset commits.
    stats_url: str | None = None
    cwd: Path | None = None
    #: The web token and the HTTPS trust the replay worker's views want (its settings').
    stats_token: SecretStr | None = None
    stats_tls: ssl.SSLContext | None = field(default=None, repr=False)
    #: Topics to create (name -> partitions) before the worker starts: its versioned
    #: output topics (the embedded broker would create them with 4 partitions).
    create_topics: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ReplayResult:
    """How the replay went: records in the source when it started, and how long it took."""

    events: int
    seconds: float


Progress = Callable[[int, int], None]


async def run_replay(kafka: KafkaConnection, plan: ReplayPlan, *, resume: bool,
                     timeout: float | None, on_progress: Progress,
                     say: Callable[[str], None]) -> ReplayResult:
    """Run a worker of the new version until its group has committed every record that
    was in the source topic when the replay started; then stop it.

    Without ``resume`` the new version must not exist yet (its tables would be reused).
    """
    partitions = (await topic_partitions(kafka, [plan.source])).get(plan.source)
    if partitions is None:
        raise ReplayError(f"nothing to replay: topic {plan.source!r} does not exist")
    state = await version_state(kafka, plan.new_id, plan.source, partitions)
    if state.exists and not resume:
        what = ", ".join(state.topics) if state.topics else "committed offsets"
        raise ReplayError(
            f"state version {plan.new_version} already exists ({what}); replay into another "
            f"version with --to-version, continue this one with --resume, or delete it "
            f"with --drop {plan.new_version}")
    ends = await end_offsets(kafka, plan.source, partitions)
    total = sum(ends.values())
    if total == 0:
        say(f"nothing to replay: {plan.source} is empty, so version {plan.new_version} "
            "starts empty")
        return ReplayResult(0, 0.0)
    if plan.create_topics:
        await ensure_topics(kafka, plan.create_topics)
    started = time.monotonic()
    worker = ManagedProcess([sys.executable, "-m", "app", "worker", "-l", "info"],
                            env=plan.env, cwd=plan.cwd, log_path=plan.log_path,
                            name=f"replay-v{plan.new_version}")
    worker.start()
    try:
        say(f"replaying {total:,} records of {plan.source} into state version "
            f"{plan.new_version} ({plan.new_id}): worker pid {worker.pid}, log {plan.log_path}")
        done = await _follow(kafka, plan, worker, ends, total, timeout, on_progress)
    finally:
        worker.terminate(timeout=20)
    return ReplayResult(done, time.monotonic() - started)


async def _follow(kafka: KafkaConnection, plan: ReplayPlan, worker: ManagedProcess,
                  ends: Mapping[int, int], total: int, timeout: float | None,
                  on_progress: Progress) -> int:
    """Poll the new group's committed offsets until they reach ``ends``.

    Committed offsets are what "caught up" means (state written, offsets committed), but
    Faust may commit rarely while records keep coming; so the progress shown is the larger
    of them and the records the worker's ``/stats/`` says it has applied.
    """
    deadline = None if timeout is None else time.monotonic() + timeout
    partitions = len(ends)
    while True:
        committed = await committed_offsets(kafka, plan.new_id, plan.source, partitions)
        done = sum(min(max(committed[p], 0), end) for p, end in ends.items())
        if all(committed[p] >= end for p, end in ends.items() if end > 0):
            on_progress(done, total)
            return done
        applied = await asyncio.to_thread(_applied, plan)
        on_progress(min(max(done, applied), total), total)
        if not worker.running:
            raise ReplayError(f"the replay worker exited with status {worker.returncode}; "
                              f"its log ({plan.log_path}) ends:\n{worker.log_tail(3000)}")
        if deadline is not None and time.monotonic() > deadline:
            raise ReplayError(f"replay not caught up within {timeout:g} s ({done:,} of "
                              f"{total:,} records committed); continue it with --to-version "
                              f"{plan.new_version} --resume; worker log: {plan.log_path}")
        await asyncio.sleep(_POLL_INTERVAL)


def _applied(plan: ReplayPlan) -> int:
    """Records the worker has applied (valid and invalid), from its ``/stats/``; 0 if unknown."""
    if plan.stats_url is None:
        return 0
    headers = {} if plan.stats_token is None else {
        "Authorization": f"Bearer {plan.stats_token.get_secret_value()}"}
    request = urllib.request.Request(plan.stats_url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=2, context=plan.stats_tls) as response:
            stats = orjson.loads(response.read())
        return (int(stats["events_in"]) + int(stats["dead_letters"])
                + int(stats.get("duplicates", 0)))
    except (OSError, ValueError, KeyError, TypeError):
        return 0  # not listening yet, or shutting down


# -- drop -----------------------------------------------------------------------------


class _DeleteGroupsResponse_v0(Response):  # type: ignore[misc]
    API_KEY = 42
    API_VERSION = 0
    SCHEMA = Schema(("throttle_time_ms", Int32),
                    ("results", Array(("group_id", String("utf-8")), ("error_code", Int16))))


class _DeleteGroupsRequest_v0(RequestStruct):  # type: ignore[misc]
    API_KEY = 42
    API_VERSION = 0
    RESPONSE_TYPE = _DeleteGroupsResponse_v0
    SCHEMA = Schema(("groups_names", Array(String("utf-8"))))


class _DeleteGroupsRequest(Request[_DeleteGroupsRequest_v0]):  # type: ignore[misc]
    """DeleteGroups (API 42), which aiokafka's admin client does not offer."""

    API_KEY = 42

    def __init__(self, groups: list[str]) -> None:
        self.groups = groups

    def build(self, request_struct_class: type[_DeleteGroupsRequest_v0]) -> _DeleteGroupsRequest_v0:
        return request_struct_class(self.groups)


@dataclass(frozen=True, slots=True)
class DropResult:
    """What :func:`drop_version` deleted."""

    topics: list[str]
    group_deleted: bool


async def drop_version(kafka: KafkaConnection, faust_app_id: str, *, force: bool,
                       output_topics: list[str] | None = None) -> DropResult:
    """Delete a state version's changelog (and leader) topics, its consumer group, and
    those of ``output_topics`` that exist (its versioned outputs).

    Refused while the group has members, unless ``force``: deleting the changelogs under
    running workers loses their state (and the embedded broker re-creates a topic that a
    worker still writes to, with 4 partitions, BROKER.md fact 5).
    """
    members = await group_members(kafka, faust_app_id)
    if members and not force:
        raise ReplayError(
            f"consumer group {faust_app_id!r} still has {members} member(s): workers of that "
            "version are running (on the embedded broker a stopped first-generation worker "
            "stays listed, BROKER.md fact 4); stop them first, or pass --force")
    topics = sorted(await topic_partitions(
        kafka, [*version_topics(faust_app_id), *(output_topics or [])]))

    async def delete(admin: AIOKafkaAdminClient) -> bool:
        if topics:
            response = await admin.delete_topics(topics)
            for name, code, *_ in response.topic_error_codes:
                if code:
                    raise ReplayError(f"cannot delete topic {name!r}: {for_code(code).__name__}")
        node = await admin.find_coordinator(faust_app_id)
        response = await admin._send_request(_DeleteGroupsRequest([faust_app_id]), node)
        for group, code in response.results:
            if code == _GROUP_ID_NOT_FOUND:
                return False
            if code:
                raise ReplayError(f"cannot delete consumer group {group!r}: "
                                  f"{for_code(code).__name__}")
        return True

    deleted: bool = await _admin(kafka, delete)
    return DropResult(topics, deleted)

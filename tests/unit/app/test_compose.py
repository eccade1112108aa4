"""The Faust app as built from the settings: tables and their RocksDB options."""

from app.compose import create_app
from app.settings import Settings
from app.txapp import ROCKSDB_OPTIONS


def test_every_table_uses_small_rocksdb_buffers_and_caches() -> None:
    app = create_app(Settings.load(window_kinds="tumbling,hopping,sliding,session"))
    assert sorted(app.state_tables) == ["hopping", "session", "sliding", "tumbling", "txids"]
    for table in app.state_tables.values():
        options = table.data.rocksdb_options
        assert (options.write_buffer_size, options.max_write_buffer_number,
                options.block_cache_size, options.block_cache_compressed_size) == (
            ROCKSDB_OPTIONS["write_buffer_size"], ROCKSDB_OPTIONS["max_write_buffer_number"],
            ROCKSDB_OPTIONS["block_cache_size"], ROCKSDB_OPTIONS["block_cache_compressed_size"])
        # Faust's defaults would be 64 MB buffers and a 2 GB cache per database.
        assert options.write_buffer_size <= 8 * 1024**2
        assert options.block_cache_size <= 8 * 1024**2


def test_a_topic_prefix_keeps_consumer_groups_changelogs_and_state_apart() -> None:
    # Two deployments sharing a broker and an app id but not a prefix once shared a
    # consumer group and changelogs: each loaded the other's state.
    first = create_app(Settings.load(app_id="shop", topic_prefix="p1-"))
    second = create_app(Settings.load(app_id="shop", topic_prefix="p2-"))
    assert (first.conf.id, second.conf.id) == ("p1-shop-v1", "p2-shop-v1")
    assert first.conf.datadir != second.conf.datadir
    changelogs = [{table.changelog_topic.get_topic_name() for table in app.state_tables.values()}
                  for app in (first, second)]
    assert "p1-shop-v1-tumbling-changelog" in changelogs[0]
    assert not changelogs[0] & changelogs[1]
    unprefixed = create_app(Settings.load(app_id="shop"))
    assert unprefixed.conf.id == "shop-v1"  # no prefix: the names of earlier versions


def test_a_worker_bound_to_every_interface_is_advertised_by_a_reachable_name() -> None:
    import socket

    # Bound to 0.0.0.0 (a container), Faust told the other workers to route requests to
    # http://0.0.0.0:6066, i.e. to themselves.
    bound = create_app(Settings.load(web_host="0.0.0.0", web_port=6070))
    assert str(bound.conf.canonical_url) == f"http://{socket.gethostname()}:6070"
    assert bound.conf.web_bind == "0.0.0.0"
    named = create_app(Settings.load(web_host="0.0.0.0", web_advertised_host="worker-1"))
    assert str(named.conf.canonical_url) == "http://worker-1:6066"
    local = create_app(Settings.load())
    assert str(local.conf.canonical_url) == "http://127.0.0.1:6066"

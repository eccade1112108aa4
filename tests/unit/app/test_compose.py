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

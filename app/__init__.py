"""txstream: real-time transaction monitoring, a Kappa pipeline on Faust, Kafka and RocksDB."""

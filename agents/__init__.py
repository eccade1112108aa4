"""Stream processors: the transaction pipeline that feeds every table, alert and output topic."""

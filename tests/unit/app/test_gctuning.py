"""The worker's garbage-collector policy."""

import gc

from app.gctuning import GEN0_THRESHOLD, tune_gc


def test_tune_gc_raises_the_thresholds_and_freezes_start_up_objects() -> None:
    before = gc.get_threshold()
    try:
        tune_gc()
        assert gc.get_threshold() == (GEN0_THRESHOLD, 50, 1000)
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)

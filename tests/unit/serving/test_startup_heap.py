"""After start-up a served process hides its long-lived objects from the garbage collector: a full collection
then walks only what requests allocate, so no request waits for a walk over the catalogue (issue 11, p99)."""

import gc


def test_start_up_objects_are_frozen_out_of_full_collections():
    from hyperrec.serving.server import freeze_startup_heap

    catalogue = [{"item": i} for i in range(50_000)]  # stands in for what a served process loads
    try:
        freeze_startup_heap()
        assert gc.get_freeze_count() >= len(catalogue)
        assert not any(entry is catalogue for entry in gc.get_objects(generation=2))
    finally:
        gc.unfreeze()

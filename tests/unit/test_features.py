"""History encoding shared by training and serving."""

import numpy as np
import pytest

from hyperrec.features import encode_histories, encode_segments


def test_histories_are_left_padded_shifted_by_one_and_truncated_to_the_most_recent():
    batch = encode_histories([np.array([4, 5, 6]), np.array([], dtype=np.int64), np.array([0])], max_len=2)
    assert batch.tolist() == [[6, 7], [0, 0], [0, 1]]
    assert batch.dtype == np.int64


def test_unknown_segment_is_zero_and_known_segments_shift_by_one():
    assert encode_segments([None, 0, 3]).tolist() == [0, 1, 4]


def test_max_len_must_be_positive():
    with pytest.raises(ValueError):
        encode_histories([np.array([1])], max_len=0)

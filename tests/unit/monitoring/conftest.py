"""Fixtures of the monitoring tests: the compiled retraining pipeline and a fake KFP client that checks runs on it."""

import pytest
from monitoring_helpers import KFP_UPLOADED, FakeKfpClient, compile_retraining


@pytest.fixture(scope="session")
def retraining_package(tmp_path_factory):
    """The real hyperrec-retraining pipeline compiled once, as ``hyperrec pipeline compile`` writes it."""
    return compile_retraining(tmp_path_factory.mktemp("kfp") / "hyperrec-retraining.yaml")


@pytest.fixture
def kfp_client(retraining_package):
    """``kfp_client(**options)``: a FakeKfpClient with that pipeline uploaded as KFP_UPLOADED's version."""
    return lambda **options: FakeKfpClient(uploaded={KFP_UPLOADED["pipeline_version_id"]: retraining_package},
                                           **options)

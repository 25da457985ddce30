"""Fixtures of the monitoring tests: the compiled retraining pipeline and a fake KFP client that checks runs on it."""

import pytest
from fake_kfp import FakeKfpClient
from monitoring_helpers import KFP_UPLOADED, compile_retraining


@pytest.fixture(scope="session")
def retraining_package(tmp_path_factory):
    """The real hyperrec-retraining pipeline compiled once, as ``hyperrec pipeline compile`` writes it."""
    return compile_retraining(tmp_path_factory.mktemp("kfp") / "hyperrec-retraining.yaml")


@pytest.fixture
def kfp_client(retraining_package):
    """``kfp_client(**options)``: a FakeKfpClient on which that pipeline is uploaded with KFP_UPLOADED's ids."""

    def make(**options) -> FakeKfpClient:
        client = FakeKfpClient(**options)
        client.add_uploaded(retraining_package, KFP_UPLOADED["pipeline_id"], KFP_UPLOADED["pipeline_version_id"])
        return client

    return make

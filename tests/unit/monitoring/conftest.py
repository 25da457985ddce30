"""Fixtures of the monitoring tests: the compiled retraining pipeline, a fake KFP client that checks runs on
it, and a real S3 API (moto) holding the bucket of KFP_UPLOADED's URIs."""

import pytest
from fake_kfp import FakeKfpClient
from monitoring_helpers import DATA_BUCKET, KFP_UPLOADED, compile_retraining
from moto_s3 import moto_s3


@pytest.fixture(scope="session")
def retraining_package(tmp_path_factory):
    """The real hyperrec-retraining pipeline compiled once, as ``hyperrec pipeline compile`` writes it."""
    return compile_retraining(tmp_path_factory.mktemp("kfp") / "hyperrec-retraining.yaml")


@pytest.fixture
def kfp_client(retraining_package):
    """``kfp_client(**options)``: a FakeKfpClient on which that pipeline is uploaded with KFP_UPLOADED's
    ids."""

    def make(**options) -> FakeKfpClient:
        client = FakeKfpClient(**options)
        client.add_uploaded(
            retraining_package, KFP_UPLOADED["pipeline_id"], KFP_UPLOADED["pipeline_version_id"]
        )
        return client

    return make


@pytest.fixture(scope="module")
def s3():
    """A moto S3 server on 127.0.0.1 with the bucket of KFP_UPLOADED's URIs; yields the AWS variables it
    set."""
    with moto_s3([DATA_BUCKET]) as env:
        yield env

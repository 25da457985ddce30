"""``hyperrec bench serve`` pieces: the wrk script and its parsed summary, the markdown report."""

from __future__ import annotations

import pytest

from hyperrec.serving.bench import format_report
from hyperrec.serving.bench_load import parse_wrk_output, wrk_script


def test_the_wrk_script_posts_every_body_to_the_path_and_reports_json():
    bodies = [{"user_id": "u1", "history": ["1", "2"], "k": 10}, {"user_id": "u2", "history": ["3"], "k": 10}]
    script = wrk_script("http://127.0.0.1:9/v1/models/ranker:predict", bodies)
    assert '{"user_id":"u1","history":["1","2"],"k":10}' in script and '"u2"' in script
    assert 'wrk.format(nil, "/v1/models/ranker:predict", nil, bodies[(counter % n) + 1])' in script
    assert 'wrk.headers["Content-Type"] = "application/json"' in script


def test_wrk_output_is_parsed_with_errors_summed():
    line = (
        'HYPERREC_WRK_JSON {"requests":1000,"duration_us":2000000,"socket_errors":2,"timeouts":1,"non200":3,'
        '"degraded":4,"p50_us":1500,"p95_us":4000,"p99_us":9100}'
    )
    result = parse_wrk_output("Running 2s test\n" + line + "\n")
    assert (result.requests, result.errors, result.degraded, result.wall_s) == (1000, 6, 4, 2.0)
    assert (result.p50_ms, result.p95_ms, result.p99_ms, result.generator) == (1.5, 4.0, 9.1, "wrk")
    with pytest.raises(RuntimeError, match="wrk failed"):
        parse_wrk_output("", "unable to connect", 1)


def test_the_markdown_report_has_a_cpu_column_per_process():
    row = {"concurrency": 8, "requests": 100, "errors": 0, "degraded": 1, "p50_ms": 1.0, "p95_ms": 2.0,
           "p99_ms": 3.0, "throughput_rps": 500.0, "generator": "wrk", "load_avg_1m": 0.5,
           "cpu_ms_per_request": {"predictor": 1.25, "transformer": 2.5, "client (wrk)": 0.1}}
    text = format_report({"label": "x", "k": 10, "n_items": 9742, "generator": "wrk", "served": [row],
                          "naive": [], "ratios": [], "naive_model": None})
    assert "| CPU ms/req predictor | CPU ms/req transformer | CPU ms/req client (wrk) |" in text
    assert "| 8 | 100 | 0 | 1 | 1.00 | 2.00 | 3.00 | 500.0 | 1.25 | 2.50 | 0.10 | 0.5 |" in text

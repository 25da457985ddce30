"""`hyperrec serve | recommend | bench serve` registration and output."""

import argparse

import pytest

from hyperrec.cli import build_parser
from hyperrec.serving.cli import add_serving_commands, format_answer


def parser():
    root = argparse.ArgumentParser(prog="hyperrec")
    add_serving_commands(root.add_subparsers(dest="command", required=True))
    return root


def test_commands_are_registered_with_their_options():
    args = parser().parse_args(["serve", "--demo", "--port", "9000", "--predictor-protocol", "http"])
    assert (args.demo, args.port, args.predictor_protocol) == (True, 9000, "http") and callable(args.handler)
    args = parser().parse_args(["recommend", "--user-id", "u1", "--history", "a", "b", "--k", "5"])
    assert (args.user_id, args.history, args.k, args.explain) == ("u1", ["a", "b"], 5, True)
    args = build_parser().parse_args(
        ["bench", "serve", "--demo", "--concurrency", "1", "4", "--requests", "10"]
    )
    assert (args.concurrency, args.requests) == ([1, 4], 10)
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--demo", "--bundle", "x"])  # one source of bundle only


def test_answers_print_with_explanations_and_degraded_flag():
    text = format_answer(
        {
            "request_id": "r1",
            "model": {"name": "ranker", "version": "7"},
            "source": "popular",
            "degraded": True,
            "degraded_reason": "predictor_unavailable",
            "unknown_items": ["zz"],
            "explanation_method": "embedding_cosine",
            "recommendations": [
                {
                    "rank": 1,
                    "item_id": "a",
                    "title": "A",
                    "categories": ["x"],
                    "score": 0.5,
                    "because": [{"item_id": "b", "title": "B", "similarity": 0.9}],
                }
            ],
        }
    )
    assert "DEGRADED (predictor_unavailable)" in text and "ignored unknown items: zz" in text
    assert "1. A [a] (x) score 0.5000" in text and "because of: B (0.90)" in text


def test_serve_with_a_challenger_sets_the_split_and_refuses_a_bad_share(tmp_path):
    from hyperrec.errors import HyperrecError
    from hyperrec.serving.cli import _serve_settings

    bundle, challenger = tmp_path / "champion", tmp_path / "challenger"
    args = parser().parse_args(["serve", "--bundle", str(bundle), "--challenger-bundle", str(challenger),
                                "--challenger-percent", "25", "--sticky"])
    settings, served, other = _serve_settings(args, tmp_path)
    assert (served, other) == (bundle, challenger)
    assert (settings.split.challenger_percent, settings.split.sticky) == (25, True)
    args = parser().parse_args(["serve", "--bundle", str(bundle), "--challenger-percent", "150"])
    with pytest.raises(HyperrecError, match="challenger_percent"):
        _serve_settings(args, tmp_path)
    with pytest.raises(SystemExit):  # one challenger source only
        parser().parse_args(
            ["serve", "--bundle", "b", "--challenger-bundle", "c", "--challenger-registered", "n@a"]
        )

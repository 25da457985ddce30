"""`hyperrec serve | recommend | bench serve` registration and output."""

import argparse

import pytest

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
    args = parser().parse_args(["bench", "serve", "--demo", "--concurrency", "1", "4", "--requests", "10"])
    assert (args.concurrency, args.requests) == ([1, 4], 10)
    with pytest.raises(SystemExit):
        parser().parse_args(["serve", "--demo", "--bundle", "x"])  # one source of bundle only


def test_answers_print_with_explanations_and_degraded_flag():
    text = format_answer({
        "request_id": "r1", "model": {"name": "ranker", "version": "7"}, "source": "popular", "degraded": True,
        "degraded_reason": "predictor_unavailable", "unknown_items": ["zz"], "explanation_method": "embedding_cosine",
        "recommendations": [{"rank": 1, "item_id": "a", "title": "A", "categories": ["x"], "score": 0.5,
                             "because": [{"item_id": "b", "title": "B", "similarity": 0.9}]}],
    })
    assert "DEGRADED (predictor_unavailable)" in text and "ignored unknown items: zz" in text
    assert "1. A [a] (x) score 0.5000" in text and "because of: B (0.90)" in text

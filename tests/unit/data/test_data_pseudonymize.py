"""User ids become keyed, stable pseudonyms; the key never leaves its secret place."""

import logging
import stat

import pandas as pd
import pytest

from hyperrec.config import PrivacyConfig
from hyperrec.data.pseudonymize import Pseudonymizer, mark_pseudonym
from hyperrec.errors import ConfigError


def test_pseudonyms_are_stable_keyed_and_32_hex_characters():
    first, again, other = Pseudonymizer(b"k1"), Pseudonymizer(b"k1"), Pseudonymizer(b"k2")
    assert first.pseudonymize("42") == again.pseudonymize("42")
    assert first.pseudonymize("42") != other.pseudonymize("42")
    assert first.pseudonymize("42") != first.pseudonymize("43")
    assert len(first.pseudonymize("42")) == 32
    int(first.pseudonymize("42"), 16)


def test_a_column_maps_like_single_calls_and_keeps_missing_ids_missing():
    pseudonymizer = Pseudonymizer(b"k")
    mapped = pseudonymizer.pseudonymize_series(pd.Series(["a", None, "a"]))
    assert mapped.tolist() == [pseudonymizer.pseudonymize("a"), None, pseudonymizer.pseudonymize("a")]


def test_the_env_var_key_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "from-env")
    privacy = PrivacyConfig(pseudonym_key_env="MY_KEY", pseudonym_key_file=tmp_path / "key")
    assert Pseudonymizer.from_config(privacy).pseudonymize("u") == Pseudonymizer(b"from-env").pseudonymize(
        "u"
    )
    assert not (tmp_path / "key").exists()


def test_an_empty_env_var_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("MY_KEY", "  ")
    with pytest.raises(ConfigError, match="MY_KEY"):
        Pseudonymizer.from_config(
            PrivacyConfig(pseudonym_key_env="MY_KEY", pseudonym_key_file=tmp_path / "k")
        )


def test_a_key_file_is_created_once_with_mode_0600_and_reused(tmp_path, monkeypatch, caplog):
    monkeypatch.delenv("MY_KEY", raising=False)
    privacy = PrivacyConfig(pseudonym_key_env="MY_KEY", pseudonym_key_file=tmp_path / "secrets" / "key")
    caplog.set_level(logging.DEBUG)
    first = Pseudonymizer.from_config(privacy)
    key = (tmp_path / "secrets" / "key").read_text().strip()
    assert stat.S_IMODE((tmp_path / "secrets" / "key").stat().st_mode) == 0o600
    assert Pseudonymizer.from_config(privacy).pseudonymize("u") == first.pseudonymize("u")
    assert "created a new pseudonym key file" in caplog.text
    assert key not in caplog.text and key not in repr(first)


def test_an_empty_key_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv("MY_KEY", raising=False)
    (tmp_path / "key").write_text("\n")
    with pytest.raises(ConfigError, match="empty"):
        Pseudonymizer.from_config(
            PrivacyConfig(pseudonym_key_env="MY_KEY", pseudonym_key_file=tmp_path / "key")
        )


def test_a_home_relative_key_file_lands_in_the_home_folder(tmp_path, monkeypatch):
    from hyperrec.config import PrivacyConfig
    from hyperrec.data.pseudonymize import Pseudonymizer

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("HYPERREC_PSEUDONYM_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    Pseudonymizer.from_config(PrivacyConfig(pseudonym_key_file="~/.config/hyperrec/pseudonym.key"))
    assert (tmp_path / "home" / ".config" / "hyperrec" / "pseudonym.key").is_file()
    assert not (tmp_path / "~").exists()


def test_ids_marked_as_pseudonyms_are_kept_and_every_other_id_is_hashed():
    pseudonymizer = Pseudonymizer(b"k")
    known = pseudonymizer.pseudonymize("bob")
    ids = pd.Series([mark_pseudonym(known), "bob", "pseudonym:not-hex", None], dtype=object)
    result = pseudonymizer.pseudonymize_or_keep(ids).tolist()
    assert result[:2] == [known, known]
    assert result[2] == pseudonymizer.pseudonymize("pseudonym:not-hex")  # a malformed mark is just an id
    assert result[3] is None

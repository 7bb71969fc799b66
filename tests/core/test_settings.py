"""Settings an operator gives in the environment."""

from __future__ import annotations

from core.settings import int_setting


def test_a_setting_from_the_environment_is_a_whole_number_in_its_range_or_the_default(monkeypatch):
    for configured, expected in (("7", 7), (" 7 ", 7), ("0", 5), ("21", 5), ("-1", 5), ("2.5", 5), ("", 5)):
        monkeypatch.setenv("CONVLAB_SOMETHING", configured)
        assert int_setting("CONVLAB_SOMETHING", 5, 1, 20) == expected
    monkeypatch.delenv("CONVLAB_SOMETHING")
    assert int_setting("CONVLAB_SOMETHING", 5, 1, 20) == 5

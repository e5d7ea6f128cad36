"""The start-up steps `serve` and `serve-openai` share."""

from __future__ import annotations

import click
import pytest

from forenscope.service.launch import service_extra_required, token_from_env
from forenscope.service.settings import TOKEN_ENV


def test_a_missing_web_dependency_names_the_extra() -> None:
    with pytest.raises(click.ClickException, match=r"forenscope\[service\]") as info:
        with service_extra_required():
            raise ImportError("No module named 'uvicorn'")
    assert "uvicorn" in info.value.message


def test_other_errors_pass_through() -> None:
    with pytest.raises(KeyError), service_extra_required():
        raise KeyError("x")


def test_token_comes_from_the_environment_and_empty_means_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "s3cret")
    assert token_from_env() == "s3cret"
    monkeypatch.setenv(TOKEN_ENV, "")
    assert token_from_env() is None
    monkeypatch.delenv(TOKEN_ENV)
    assert token_from_env() is None

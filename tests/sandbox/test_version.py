"""The sandbox refuses to run against a moto its patches were not written for."""

from __future__ import annotations

import moto
import pytest

from deployments.sandbox import MOTO_VERSION, SandboxVersionError, check_moto_version


def test_the_installed_moto_is_the_pinned_one() -> None:
    assert moto.__version__ == MOTO_VERSION == "5.2.5"
    check_moto_version()


def test_another_moto_version_is_refused_with_a_clear_message() -> None:
    with pytest.raises(SandboxVersionError, match=r"moto 5\.2\.5 but moto 5\.3\.0 is installed"):
        check_moto_version("5.3.0")

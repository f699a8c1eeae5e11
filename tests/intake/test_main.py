"""`python -m services.intake` refuses bad configuration with a message naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PETITIONS_INTAKE_DATABASE_URL", "mysql://db/intake"),
        ("PETITIONS_INTAKE_PORT", "eighty"),
        ("PETITIONS_INTAKE_PUBLIC_URL", "intake.example"),
        ("PETITIONS_INTAKE_CATALOG_FILE", "/no/such/catalog.yaml"),
    ],
)
def test_bad_configuration_is_refused_with_exit_2(variable: str, value: str) -> None:
    env = {**os.environ, variable: value}
    result = subprocess.run(
        [sys.executable, "-m", "services.intake"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert variable in result.stderr
    assert "cấu hình không hợp lệ / invalid configuration" in result.stderr


def test_the_test_clock_is_refused_in_production() -> None:
    from pydantic import ValidationError

    from services.intake.settings import Settings

    with pytest.raises(ValidationError, match="PETITIONS_CLOCK_FILE"):
        Settings(env="production", secret_key="x" * 40, clock_file="/tmp/clock")

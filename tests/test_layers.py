"""The layers import one way: down. Read from the source, so a violation fails here first."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SDKS = ("boto3", "botocore", "moto", "google", "azure", "grpc")


def imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def top(name: str) -> str:
    return name.split(".")[0]


@pytest.mark.parametrize("package", ["recommenders", "reports"])
def test_pure_layers_import_no_cloud_sdk_and_no_provider_adapter(package):
    for path in modules(package):
        for name in imports(path):
            assert top(name) not in SDKS, f"{path.relative_to(ROOT)} imports {name}"
            assert not name.startswith(("providers.aws", "providers.gcp", "providers.azure", "providers.sandbox")), \
                f"{path.relative_to(ROOT)} imports {name}"
            assert top(name) != "agent", f"{path.relative_to(ROOT)} imports the agent layer ({name})"


def test_recommenders_do_not_import_reports():
    for path in modules("recommenders"):
        assert not any(top(n) == "reports" for n in imports(path)), path


def test_providers_never_import_upper_layers():
    for path in modules("providers"):
        assert not any(top(n) in ("agent", "recommenders", "reports") for n in imports(path)), path


def test_model_is_the_ground_floor():
    allowed = {"__future__", "enum", "collections", "dataclasses", "datetime", "decimal", "types", "typing", "numpy", "pandas"}
    assert {top(n) for n in imports(ROOT / "providers" / "model.py")} <= allowed


def test_only_client_modules_import_the_sdk():
    """Per cloud, client.py is the only module importing the SDK (sandbox is the demo cloud itself)."""
    for path in modules("providers"):
        rel = path.relative_to(ROOT).as_posix()
        if rel.endswith("/client.py") or rel.startswith("providers/sandbox/"):
            continue
        assert not any(top(n) in SDKS for n in imports(path)), f"{rel} imports a cloud SDK"

"""The house rules that hold for the whole code base: one-way layers and modules small enough to read."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 600


def test_layers_contract_is_kept():
    """`lint-imports` with the layers contract in .importlinter (docs/architecture.md draws it)."""
    linter = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(linter), "--config", str(ROOT / ".importlinter"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_no_module_is_longer_than_600_lines():
    too_long = {str(path.relative_to(ROOT)): lines for path in (ROOT / "ki_post").rglob("*.py")
                if "migrations" not in path.parts and (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert too_long == {}


def test_every_rule_id_a_comment_cites_is_explained_in_docs():
    """Comments may cite rules like RPLY-06; docs/standards.md must say what each one means."""
    import re

    cited = {match for path in (ROOT / "ki_post").rglob("*.py")
             for match in re.findall(r"\b[A-Z]{2,5}-\d{2}\b", path.read_text(encoding="utf-8"))}
    explained = set(re.findall(r"\*\*([A-Z]{2,5}-\d{2})\*\*", (ROOT / "docs" / "standards.md").read_text(encoding="utf-8")))
    assert cited <= explained, sorted(cited - explained)


def test_no_import_cycle_inside_a_package():
    """Inside a package, imports go one way too: a views module registers its routes on the package's
    blueprint module (``blueprint.py``) and ``routes.py`` loads them all, instead of views importing
    each other both ways. Lazy imports inside functions count as well (grimp sees them)."""
    import grimp

    graph = grimp.build_graph("ki_post")
    cycles = sorted({tuple(sorted((module, imported)))
                     for module in graph.modules if module.count(".") >= 2
                     for imported in graph.find_modules_directly_imported_by(module)
                     if imported.rpartition(".")[0] == module.rpartition(".")[0]
                     and graph.chain_exists(importer=imported, imported=module)})
    assert cycles == []
